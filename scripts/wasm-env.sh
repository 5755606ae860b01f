# Sourced by scripts/wasm-build.sh and scripts/wasm-test.sh: makes a
# wasm32-unknown-unknown toolchain available without rustup downloads and
# exports what cargo needs to use it. On Debian, run as root, it installs
# what is missing:
#   - rustc-web, libstd-rust-web-dev, rust-web-src (Debian's rustc with the
#     standard library's source), lld (wasm-ld): the standard library is
#     built for wasm32 from that source by cargo's -Zbuild-std (allowed on
#     stable cargo by RUSTC_BOOTSTRAP=1), with Debian's rustc, so compiler
#     and source are the same version;
#   - wasm-bindgen-cli from crates.io at exactly the version of the
#     wasm-bindgen crate in Cargo.lock (the two must match).
# The wasm build has its own target dir (target/wasm unless
# SHOAL_WASM_TARGET_DIR is set): its host tools are built by a different
# rustc than the native build's and must not share fingerprints with it.
# See docs/web.md.

wasm_apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $* missing; install it (Debian: apt-get install $*)" >&2
    exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

WASM_RUSTC=/usr/bin/rustc
if [ ! -x "$WASM_RUSTC" ] || [ ! -d /usr/lib/rustlib/src/rust/library ] || ! command -v wasm-ld >/dev/null 2>&1; then
  echo "== installing Debian's wasm-capable Rust (rustc-web, rust-web-src, lld)"
  wasm_apt_install rustc-web libstd-rust-web-dev rust-web-src lld
fi

wasm_bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wasm_bindgen_version" ]; then
  echo "== installing wasm-bindgen-cli $wasm_bindgen_version (crates.io)"
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" --locked
fi

export RUSTC="$WASM_RUSTC"
export RUSTDOC=/usr/bin/rustdoc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
export CARGO_TARGET_DIR="${SHOAL_WASM_TARGET_DIR:-$PWD/target/wasm}"
WASM_CARGO_FLAGS=(--locked --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort)
