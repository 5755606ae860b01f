//! Writes the committed database fixture of this build's schema version:
//! `cargo run -p shoal-store --example make_fixture` makes
//! `crates/shoal-store/tests/fixtures/schema-N/` (N = this build's
//! `SCHEMA_VERSION`) with the database (`shoal.db`, its blobs in
//! `shoal.blobs/`), the merged peer's id (`peer_id`) and the golden dump
//! (`expected.json`). It refuses to overwrite a fixture: fixtures are frozen
//! records of what a released version wrote. Run it once for each new
//! schema version and commit the directory; `tests/it/upgrade_fixtures.rs`
//! then opens every fixture with the current code.
//!
//! An optional argument names another fixtures directory.

#[path = "../tests/fixtures/script.rs"]
mod script;

use shoal_store::{SCHEMA_VERSION, Store, StoreConfig};
use std::path::PathBuf;

fn main() {
    let root = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        PathBuf::from,
    );
    let dir = root.join(format!("schema-{SCHEMA_VERSION}"));
    if dir.exists() {
        eprintln!(
            "{} exists already: a fixture is never remade (delete it by hand only if it was never committed)",
            dir.display()
        );
        std::process::exit(1);
    }
    std::fs::create_dir_all(&dir).expect("create fixture directory");
    let path = script::make(&dir);
    let peer_id = std::fs::read_to_string(dir.join("peer_id")).expect("peer id");
    let store = Store::open(&path, StoreConfig::default()).expect("reopen");
    let dump = script::dump(&store, &peer_id);
    drop(store);
    assert_eq!(
        dump["records"],
        script::expected_records(),
        "the script's records"
    );
    let text = serde_json::to_string_pretty(&dump).expect("json") + "\n";
    std::fs::write(dir.join(script::EXPECTED_FILE), text).expect("write expected.json");
    for leftover in ["shoal.db-wal", "shoal.db-shm"] {
        assert!(
            !dir.join(leftover).exists(),
            "{leftover} left beside the fixture"
        );
    }
    println!("wrote {}", dir.display());
}
