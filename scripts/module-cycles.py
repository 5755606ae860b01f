#!/usr/bin/env python3
"""Fails when files of a crate import each other in a circle.

The project's rule: when two files need each other, the piece they share
gets its own file. This reads every crate's `src/` (comments left out),
takes each file's references to other modules of its crate
(`crate::a::b`, `crate::{a, b::{c, d}}`, `super::sibling`,
`super::super::x`, with `use` groups expanded), and reports every
group of modules that reach each other through them, as strongly
connected components of that graph. A module and its own submodules
(`http/mod.rs` and `http/error.rs`) are not a circle: a parent declares its
children; an inline `mod tests` at a file's end is left out. It reads
text, not Rust's name resolution: a path written in a string or a macro
counts as well (erring on the side of reporting), and an item reached
through a parent's `pub use` re-export counts as the parent's (a circle
only through re-exports goes unseen).

Usage: scripts/module-cycles.py [CRATES_DIR]   (default: crates)
"""

import os
import re
import sys


def modules_of(src):
    """Module path (`a::b`, `crate` for the root) -> the file's code without comments."""
    mods = {}
    for folder, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, src)[: -len(".rs")]
            parts = rel.split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            module = "::".join(parts)
            if module in ("lib", "main", ""):
                module = "crate"
            with open(path, encoding="utf-8") as f:
                code = [line for line in f if not line.lstrip().startswith("//")]
            code = "".join(code)
            # An inline `mod tests` (by convention the file's end) is the
            # module's own test code, where `super::` means the module.
            tests = re.search(r"#\[cfg\(test\)\]\s*mod tests\s*\{", code)
            mods[module] = code[: tests.start()] if tests else code
    return mods


# A segment of a path, the opening of a `use` group, or a glob.
TOKEN = re.compile(r"[A-Za-z_0-9]+|\{|\*")


def use_tree(text, at):
    """The paths of the use tree starting at `text[at]` (after `crate::` or
    `super::`): `a::b`, or `a::{b, c::{d}}` expanded, as lists of segments."""
    segments = []
    while True:
        match = TOKEN.match(text, at)
        if not match:
            return [segments] if segments else []
        if match.group(0) == "*":
            return [segments] if segments else []
        if match.group(0) != "{":
            segments.append(match.group(0))
            at = match.end()
            if text.startswith("::", at):
                at += 2
                continue
            return [segments]
        # A group: split at its top-level commas, expand each branch.
        depth, start, paths, i = 0, match.end(), [], match.end()
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}" and depth > 0:
                depth -= 1
            elif c in ",}" and depth == 0:
                branch = text[start:i].strip()
                if branch and branch != "self":
                    paths += [segments + p for p in use_tree(branch, 0)]
                elif branch == "self" and segments:
                    paths.append(list(segments))
                if c == "}":
                    break
                start = i + 1
            i += 1
        return paths or ([segments] if segments else [])


def referenced_paths(module, code):
    """The crate-relative paths `code` names, as `a::b::Item`."""
    paths = []
    for match in re.finditer(r"\bcrate::", code):
        paths += ["::".join(p) for p in use_tree(code, match.end())]
    for match in re.finditer(r"\b((?:super::)+)", code):
        ups = match.group(1).count("super::")
        base = module.split("::")[: -ups] if module != "crate" else []
        if len(module.split("::")) < ups:
            continue
        for p in use_tree(code, match.end()):
            paths.append("::".join(base + p))
    return paths


def edges_of(mods):
    """Module -> the other modules of the crate it names (not its ancestors or descendants)."""
    edges = {m: set() for m in mods}
    for module, code in mods.items():
        for path in referenced_paths(module, code):
            parts = path.split("::")
            for k in range(len(parts), 0, -1):
                target = "::".join(parts[:k])
                if target in mods:
                    related = (
                        target == module
                        or module.startswith(target + "::")
                        or target.startswith(module + "::")
                        or module == "crate"
                    )
                    if not related:
                        edges[module].add(target)
                    break
    return edges


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    crates = sys.argv[1] if len(sys.argv) > 1 else "crates"
    failed = False
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        if not os.path.isdir(src):
            continue
        edges = edges_of(modules_of(src))
        for component in cycles(edges):
            failed = True
            links = [
                f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component
            ]
            print(f"{crate}: these files import each other in a circle: {', '.join(links)}")
    if failed:
        print("give the piece they share a file of its own (see the README's code standards)")
        sys.exit(1)
    print("no module imports another in a circle")


if __name__ == "__main__":
    main()
