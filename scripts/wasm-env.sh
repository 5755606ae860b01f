# Sourced by scripts/wasm-build.sh and scripts/wasm-test.sh: makes a
# wasm32-unknown-unknown toolchain available without rustup downloads and
# exports what cargo needs to use it. On Debian, run as root, it installs
# what is missing:
#   - rustc-web, libstd-rust-web-dev, rust-web-src (Debian's rustc with the
#     standard library's source), lld (wasm-ld): the standard library is
#     built for wasm32 from that source by cargo's -Zbuild-std (allowed on
#     stable cargo by RUSTC_BOOTSTRAP=1), with Debian's rustc, so compiler
#     and source are the same version;
#   - clang, which compiles SQLite for wasm32 (the OPFS storage);
#   - wasm-bindgen-cli from crates.io at exactly the version of the
#     wasm-bindgen crate in Cargo.lock (the two must match), without its
#     default TLS feature (rustls and ring: the test runner talks plain
#     HTTP to chromedriver on loopback) and at opt-level 1 (it only
#     rewrites our small .wasm files), which cuts its cold install by a
#     third; it runs in the background while the wasm build compiles.
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

# clang compiles the SQLite that the OPFS storage links (sqlite-wasm-rs's
# build script, for wasm32).
if ! command -v clang >/dev/null 2>&1; then
  echo "== installing clang (compiles SQLite for wasm32)"
  wasm_apt_install clang
fi

wasm_bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
# When wasm-bindgen-cli must be installed, that runs in the background
# while the wasm build compiles (the two take about as long; together they
# take little more wall time than either); wasm_bindgen_ready waits for it.
# It is started before the exports below: it is a native build, with the
# usual rustc and cargo's own temporary target dir.
WASM_BINDGEN_INSTALL_PID=
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wasm_bindgen_version" ]; then
  echo "== installing wasm-bindgen-cli $wasm_bindgen_version (crates.io, in the background)"
  WASM_BINDGEN_INSTALL_LOG="$(mktemp "${TMPDIR:-/tmp}/wasm-bindgen-install.XXXXXX")"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" --locked \
    --no-default-features >"$WASM_BINDGEN_INSTALL_LOG" 2>&1 &
  WASM_BINDGEN_INSTALL_PID=$!
fi

# Waits for the background install of wasm-bindgen-cli, if one was started;
# on failure prints its log and exits.
wasm_bindgen_ready() {
  [ -n "$WASM_BINDGEN_INSTALL_PID" ] || return 0
  echo "== waiting for the wasm-bindgen-cli install"
  if ! wait "$WASM_BINDGEN_INSTALL_PID"; then
    echo "error: installing wasm-bindgen-cli $wasm_bindgen_version failed:" >&2
    cat "$WASM_BINDGEN_INSTALL_LOG" >&2
    exit 1
  fi
  WASM_BINDGEN_INSTALL_PID=
  rm -f "$WASM_BINDGEN_INSTALL_LOG"
}

export RUSTC="$WASM_RUSTC"
export RUSTDOC=/usr/bin/rustdoc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
export CARGO_TARGET_DIR="${SHOAL_WASM_TARGET_DIR:-$PWD/target/wasm}"
# SQLite for the OPFS storage (sqlite-wasm-rs) without the extensions it
# enables by default and Shoal never uses (full-text search, R-trees,
# sessions, the virtual tables, math functions, ...), compiled for size:
# 0.3 MB less gzipped .wasm. The flags come after sqlite-wasm-rs's own, so
# -U undoes its -D.
export SQLITE_WASM_RS_FLAGS="-USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_SESSION
  -USQLITE_ENABLE_PREUPDATE_HOOK -USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_DBPAGE_VTAB
  -USQLITE_ENABLE_BYTECODE_VTAB -USQLITE_ENABLE_STMTVTAB -USQLITE_ENABLE_MATH_FUNCTIONS
  -USQLITE_ENABLE_COLUMN_METADATA -USQLITE_ENABLE_UNKNOWN_SQL_FUNCTION
  -USQLITE_ENABLE_OFFSET_SQL_FUNC -USQLITE_ENABLE_UNLOCK_NOTIFY -USQLITE_ENABLE_API_ARMOR"
export CFLAGS_wasm32_unknown_unknown=-Os
# One profile (Cargo.toml's [profile.wasm]) and one target set for the
# package build and the tests: `--lib --tests` in both scripts, so cargo
# resolves the same features (the tests' dev-dependencies included) and the
# test run finds everything the build compiled, shoal-web too, up to date.
WASM_CARGO_FLAGS=(--locked --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
  --profile wasm -p shoal-web --lib --tests)
WASM_PROFILE_DIR="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm"
