//! End-to-end tests of `shoal blob`: each runs the built executable against a
//! fresh temporary data directory and checks stdout, stderr and exit codes.

use crate::common;

use common::{Node, content};
use serde_json::json;
use std::path::PathBuf;

/// What `shoal --json blob ls` prints when there is nothing to list.
fn no_blobs() -> serde_json::Value {
    json!({"blobs": [], "next": null})
}

fn scratch(node: &Node, name: &str) -> PathBuf {
    node.data.parent().unwrap().join(name)
}

fn arg(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn add_ls_get_round_trip() {
    let node = Node::init();
    let bytes = content(3 << 20);
    let input = scratch(&node, "input.bin");
    std::fs::write(&input, &bytes).unwrap();
    let expected = blake3::hash(&bytes).to_hex().to_string();

    let added = node.run(&["blob", "add", arg(&input)]).ok();
    assert_eq!(added.stdout, format!("{expected}\n"));

    // Adding the same bytes again, with --json and a type: the reference object.
    let added = node
        .run(&[
            "--json",
            "blob",
            "add",
            arg(&input),
            "--type",
            "application/x-test",
        ])
        .ok();
    assert_eq!(
        added.json(),
        json!({"$blob": expected, "size": bytes.len(), "type": "application/x-test"})
    );
    let plain = node.run(&["--json", "blob", "add", arg(&input)]).ok();
    assert_eq!(
        plain.json(),
        json!({"$blob": expected, "size": bytes.len()})
    );

    let listed = node.run(&["blob", "ls"]).ok();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "header and one blob:\n{}", listed.stdout);
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[0], expected);
    assert_eq!(cells[1], bytes.len().to_string());
    assert_eq!(cells[2], "0");
    let listed = node.run(&["--json", "blob", "ls"]).ok().json();
    assert_eq!(listed["blobs"][0]["hash"], json!(expected));
    assert_eq!(listed["blobs"][0]["size"], json!(bytes.len()));
    assert_eq!(listed["blobs"][0]["references"], json!(0));
    assert_eq!(listed["blobs"].as_array().unwrap().len(), 1);
    assert_eq!(listed["next"], json!(null));

    let output = scratch(&node, "output.bin");
    node.run(&["blob", "get", &expected, arg(&output)]).ok();
    assert!(std::fs::read(&output).unwrap() == bytes, "copy differs");
    assert!(!scratch(&node, "output.bin.tmp-partial").exists());

    // `-` is stdout.
    let out = node
        .command()
        .args(["blob", "get", &expected, "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == bytes, "stdout copy differs");
}

#[test]
fn paging_gives_the_next_after() {
    let node = Node::init();
    let mut hashes = Vec::new();
    for i in 0..3u8 {
        let path = scratch(&node, &format!("f{i}"));
        std::fs::write(&path, [i; 10]).unwrap();
        let run = node.run(&["blob", "add", arg(&path)]).ok();
        hashes.push(run.stdout.trim().to_string());
    }
    hashes.sort();
    let page = node.run(&["--json", "blob", "ls", "--limit", "2"]).ok();
    // The list shape of the HTTP API: {"blobs", "next"}.
    assert_eq!(page.json()["next"], json!(hashes[1]));
    let listed: Vec<String> = page.json()["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, &hashes[..2]);
    assert!(
        page.stderr
            .contains(&format!("shoal blob ls --limit 2 --after {}", hashes[1])),
        "{}",
        page.stderr
    );
    let last = node
        .run(&[
            "--json", "blob", "ls", "--limit", "2", "--after", &hashes[1],
        ])
        .ok();
    assert_eq!(last.json()["blobs"][0]["hash"], json!(hashes[2]));
    assert_eq!(last.json()["next"], json!(null));
    assert!(!last.stderr.contains("--after"), "{}", last.stderr);
}

#[test]
fn referenced_but_missing_blob() {
    let node = Node::init();
    let hash = blake3::hash(b"somewhere else").to_hex().to_string();
    let body = json!({"title": "cat", "photo": {"$blob": hash, "size": 14}}).to_string();
    node.run(&["put", "notes", "n1", &body]).ok();

    let missing = node.run(&["blob", "ls", "--missing"]).ok();
    let row = missing.stdout.lines().nth(1).expect("one row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, [hash.as_str(), "14", "notes"]);
    let missing = node.run(&["--json", "blob", "ls", "--missing"]).ok();
    assert_eq!(
        missing.json(),
        json!({"blobs": [{"hash": hash, "size": 14, "collections": ["notes"]}], "next": null})
    );
    // Not among the blobs held here.
    assert_eq!(node.run(&["--json", "blob", "ls"]).ok().json(), no_blobs());

    let out = scratch(&node, "out.bin");
    let got = node.run(&["blob", "get", &hash, arg(&out)]).code(1);
    assert!(
        got.stderr.contains(&format!(
            "blob {hash} is not here (referenced; the daemon fetches it from peers that have it)"
        )),
        "{}",
        got.stderr
    );
    assert!(!out.exists());

    // An unreferenced unknown blob: no hint.
    let other = blake3::hash(b"nowhere").to_hex().to_string();
    let got = node.run(&["blob", "get", &other, arg(&out)]).code(1);
    assert!(got.stderr.contains(&format!("blob {other} is not here")));
    assert!(!got.stderr.contains("referenced"), "{}", got.stderr);
}

#[test]
fn bad_input_exits_2() {
    let node = Node::init();
    let out = scratch(&node, "out.bin");
    let bad = node.run(&["blob", "get", "not-a-hash", arg(&out)]).code(2);
    assert!(bad.stderr.contains("invalid blob hash"), "{}", bad.stderr);
    let upper = "A".repeat(64);
    node.run(&["blob", "get", &upper, arg(&out)]).code(2);
    node.run(&["blob", "ls", "--after", "xyz"]).code(2);
    node.run(&["blob", "ls", "--limit", "1001"]).code(2);

    let absent = scratch(&node, "absent.bin");
    let missing = node.run(&["blob", "add", arg(&absent)]).code(2);
    assert!(
        missing.stderr.contains("cannot read") && missing.stderr.contains("absent.bin"),
        "{}",
        missing.stderr
    );
    let dir = node
        .run(&["blob", "add", arg(node.data.parent().unwrap())])
        .code(2);
    assert!(dir.stderr.contains("directory"), "{}", dir.stderr);
    assert_eq!(node.run(&["--json", "blob", "ls"]).ok().json(), no_blobs());
}

#[test]
fn gc_removes_unreferenced_blobs() {
    let node = Node::init();
    let input = scratch(&node, "photo.bin");
    std::fs::write(&input, content(1000)).unwrap();
    let reference = node
        .run(&["--json", "blob", "add", arg(&input)])
        .ok()
        .json();
    let hash = reference["$blob"].as_str().unwrap().to_string();
    let body = json!({"photo": reference}).to_string();
    node.run(&["put", "notes", "n1", &body]).ok();

    // Referenced: kept whatever the grace.
    let kept = node
        .run(&["--json", "blob", "gc", "--grace-secs", "0"])
        .ok();
    assert_eq!(kept.json(), json!({"removed": [], "count": 0}));
    assert_eq!(
        node.run(&["--json", "blob", "ls"]).ok().json()["blobs"][0]["references"],
        json!(1)
    );

    node.run(&["del", "notes", "n1"]).ok();
    // The default grace of an hour keeps it (this run marks it).
    let marked = node.run(&["blob", "gc"]).ok();
    assert_eq!(marked.stdout, "");
    assert!(
        marked.stderr.contains("removed 0 blobs"),
        "{}",
        marked.stderr
    );
    // With grace 0, one run removes it: it was marked at or before now.
    let removed = node.run(&["blob", "gc", "--grace-secs", "0"]).ok();
    assert_eq!(removed.stdout, format!("{hash}\n"));
    assert!(
        removed.stderr.contains("removed 1 blob"),
        "{}",
        removed.stderr
    );
    let again = node
        .run(&["--json", "blob", "gc", "--grace-secs", "0"])
        .ok();
    assert_eq!(again.json()["count"], json!(0));
    assert_eq!(node.run(&["--json", "blob", "ls"]).ok().json(), no_blobs());
    node.run(&["blob", "get", &hash, arg(&scratch(&node, "out"))])
        .code(1);
}

#[test]
fn gc_with_grace_0_removes_in_one_run() {
    let node = Node::init();
    let input = scratch(&node, "loose.bin");
    std::fs::write(&input, b"never referenced").unwrap();
    let hash = node.run(&["blob", "add", arg(&input)]).ok().stdout;
    let removed = node.run(&["blob", "gc", "--grace-secs", "0"]).ok();
    assert_eq!(removed.stdout, hash);
}

#[test]
fn every_blob_command_has_help() {
    let node = Node::init();
    for (sub, needle) in [
        ("add", "reference object"),
        ("get", "tmp-partial"),
        ("ls", "--missing"),
        ("gc", "--grace-secs"),
    ] {
        let help = node.run(&["blob", sub, "--help"]).ok();
        assert!(help.stdout.contains(needle), "{sub}: {}", help.stdout);
    }
    let help = node.run(&["blob", "--help"]).ok();
    assert!(help.stdout.contains("$blob"), "{}", help.stdout);
}

#[test]
fn verify_sets_a_rotten_blob_aside_and_exits_3() {
    let node = Node::init();
    let bytes = content(2 << 20);
    let input = scratch(&node, "input.bin");
    std::fs::write(&input, &bytes).unwrap();
    let reference = node
        .run(&["--json", "blob", "add", arg(&input)])
        .ok()
        .json();
    let hash = reference["$blob"].as_str().unwrap().to_string();
    let body = json!({"file": reference}).to_string();
    node.run(&["put", "photos", "p1", &body]).ok();

    // All good: exit 0 and a summary.
    let clean = node.run(&["blob", "verify"]).ok();
    assert_eq!(clean.stdout, "");
    assert!(clean.stderr.contains("checked 1 blob"), "{}", clean.stderr);
    assert!(clean.stderr.contains("0 bad"), "{}", clean.stderr);

    // One bit flips on disk.
    let path = node.data.join("shoal.blobs").join(&hash[..2]).join(&hash);
    let mut raw = std::fs::read(&path).unwrap();
    raw[12_345] ^= 0x10;
    std::fs::write(&path, &raw).unwrap();
    // Before the scrub it is still listed as held.
    assert_eq!(
        node.run(&["--json", "blob", "ls", "--missing"]).ok().json()["blobs"],
        json!([])
    );
    let found = node.run(&["blob", "verify"]).code(3);
    assert!(
        found.stdout.starts_with(&format!("{hash}  bad:")),
        "{}",
        found.stdout
    );
    assert!(found.stdout.contains("corrupt"), "{}", found.stdout);
    assert!(found.stderr.contains("1 bad"), "{}", found.stderr);
    let missing = node.run(&["--json", "blob", "ls", "--missing"]).ok().json();
    assert_eq!(missing["blobs"][0]["hash"], json!(hash));
    let aside: Vec<_> = std::fs::read_dir(node.data.join("shoal.blobs").join("corrupt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(&aside[0]).unwrap(), raw);
    // Nothing bad is left: the next run is clean (nothing held to check).
    let json = node.run(&["--json", "blob", "verify"]).ok().json();
    assert_eq!(json, json!({"checked": 0, "bytes": 0, "bad": []}));
}
