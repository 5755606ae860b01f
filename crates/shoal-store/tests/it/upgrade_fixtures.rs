//! Upgrades never lose data: every committed fixture (a database made by
//! an earlier build, `tests/fixtures/schema-N/`, see
//! `examples/make_fixture.rs`) opens with today's code, is migrated to this
//! build's schema version and holds exactly what its own build dumped when
//! it made it — every change with its clock, life and log position, every
//! record, cursor, blob, sharing rule and index. A file from a newer Shoal,
//! or from before the format settled, is refused and left byte for byte.

use crate::script;

use serde_json::Value;
use shoal_core::{CollectionName, Intent, RecordId};
use shoal_store::{SCHEMA_VERSION, Store, StoreConfig, StoreError, WriteOp};
use std::path::{Path, PathBuf};

fn fixtures_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture directories and their schema versions, oldest first.
fn fixtures() -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(fixtures_root())
        .expect("fixtures directory")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let version = name.strip_prefix("schema-")?.parse().ok()?;
            Some((version, p))
        })
        .collect();
    found.sort();
    found
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .expect("raw open")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version")
}

/// Compares `got` with `want` key by key, naming the first difference.
fn assert_same(got: &Value, want: &Value, at: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let mut keys: Vec<&String> = g.keys().chain(w.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (g, w) = (g.get(key), w.get(key));
                assert!(
                    g.is_some() && w.is_some(),
                    "{at}.{key}: got {g:?}, want {w:?}"
                );
                assert_same(g.unwrap(), w.unwrap(), &format!("{at}.{key}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{at}: length");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_same(g, w, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

#[test]
fn a_fixture_of_this_builds_schema_version_is_committed() {
    let versions: Vec<i64> = fixtures().iter().map(|(v, _)| *v).collect();
    assert!(
        versions.contains(&SCHEMA_VERSION),
        "no fixture of schema version {SCHEMA_VERSION} (have {versions:?}): \
         run `cargo run -p shoal-store --example make_fixture` and commit it"
    );
    assert!(
        versions.contains(&4),
        "the schema-4 fixture (made by the first release) is gone"
    );
}

#[test]
fn every_fixture_opens_with_every_record_clock_and_cursor_kept() {
    for (version, dir) in fixtures() {
        let tmp = tempfile::tempdir().expect("tempdir");
        copy_dir(&dir, tmp.path());
        let path = tmp.path().join(script::DB_FILE);
        assert_eq!(user_version(&path), version, "{}", dir.display());
        let mut want: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(script::EXPECTED_FILE)).expect("expected.json"),
        )
        .expect("expected.json parses");
        // Files from before changes carried `pred` (schema 7) dumped none:
        // their changes read with no predecessor.
        for change in want["changes"].as_array_mut().expect("changes") {
            let change = change.as_object_mut().expect("a change");
            change.entry("pred").or_insert(Value::Null);
        }
        let peer_id = std::fs::read_to_string(dir.join("peer_id")).expect("peer_id");

        let mut store = Store::open(&path, StoreConfig::default())
            .unwrap_or_else(|e| panic!("schema {version} fixture refused: {e}"));
        let got = script::dump(&store, &peer_id);
        assert_same(&got, &want, &format!("schema-{version}"));
        assert_same(
            &got["records"],
            &script::expected_records(),
            &format!("schema-{version} records"),
        );
        store.verify().expect("verify");
        assert!(
            store.blob_files().has(
                &"1a172c97151628300faa17db381adb43f0d40a57c5ddf5bcf865f2039a1c2047"
                    .parse()
                    .expect("hash")
            )
        );

        // The upgraded file takes writes, and reopens as this build's version.
        let notes = CollectionName::new("notes").expect("name");
        let id = RecordId::new("after-upgrade").expect("id");
        let body = serde_json::json!({"title": "written after the upgrade"});
        store
            .write(vec![WriteOp {
                collection: notes.clone(),
                id: id.clone(),
                intent: Intent::Put(body.as_object().expect("object").clone()),
            }])
            .expect("write after upgrade");
        drop(store);
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let store = Store::open(&path, StoreConfig::default()).expect("reopen");
        assert_eq!(
            store.get(&notes, &id).expect("get").expect("alive")["title"],
            "written after the upgrade"
        );
        let again = script::dump(&store, &peer_id);
        assert_same(&again["cursors"], &want["cursors"], "cursors after reopen");
        assert_eq!(
            again["changes"].as_array().expect("changes").len(),
            want["changes"].as_array().expect("changes").len() + 2
        );
    }
}

/// The files in `dir` and their bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The newest fixture, copied to `tmp`, with its `user_version` set to `version`.
fn fixture_at_version(tmp: &Path, version: i64) -> PathBuf {
    let (_, newest) = fixtures().pop().expect("a fixture");
    copy_dir(&newest, tmp);
    let path = tmp.join(script::DB_FILE);
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.pragma_update(None, "user_version", version)
        .expect("set version");
    drop(raw);
    path
}

/// A restore that keeps the node's identity moves the copy's log on before
/// anything opens it: a backup made by an older build is upgraded first
/// (without, the log head was read through this build's layout and the
/// restore failed: "no such column: pos").
#[test]
fn every_fixture_s_log_can_be_skipped_for_a_same_identity_restore() {
    for (version, dir) in fixtures() {
        let (opened, tmp) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        copy_dir(&dir, opened.path());
        let head = Store::open(opened.path().join(script::DB_FILE), StoreConfig::default())
            .map(|s| s.db_version())
            .expect("open a copy");
        copy_dir(&dir, tmp.path());
        let path = tmp.path().join(script::DB_FILE);
        assert_eq!(user_version(&path), version);
        let floor = shoal_store::backup::skip_log(&path)
            .unwrap_or_else(|e| panic!("schema-{version}: skip_log failed: {e}"));
        assert_eq!(
            floor.0,
            head.0 + shoal_store::backup::LOG_SKIP,
            "schema-{version}"
        );
        let store = Store::open(&path, StoreConfig::default()).expect("open after the skip");
        assert_eq!(store.db_version(), floor, "schema-{version}");
    }
}

#[test]
fn a_file_from_a_newer_shoal_is_refused_and_left_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = fixture_at_version(tmp.path(), SCHEMA_VERSION + 1);
    let before = snapshot(tmp.path());
    let err = Store::open(&path, StoreConfig::default()).expect_err("a newer file opened");
    assert!(
        matches!(&err, StoreError::NewerSchema { found, supported, .. }
            if *found == SCHEMA_VERSION + 1 && *supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("newer Shoal") && text.contains("upgrade Shoal"),
        "{text}"
    );
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "the refused file (or a file beside it) changed"
    );
    // Twice: a refused open leaves nothing behind that changes the next one.
    Store::open(&path, StoreConfig::default()).expect_err("opened the second time");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_file_from_before_the_format_settled_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = fixture_at_version(tmp.path(), 1);
    let before = snapshot(tmp.path());
    let err = Store::open(&path, StoreConfig::default()).expect_err("a version-1 file opened");
    assert!(
        matches!(
            &err,
            StoreError::ObsoleteSchema {
                found: 1,
                oldest: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(tmp.path()), before);
}

/// What an open would upgrade is told before it, and only then.
#[test]
fn the_pending_upgrade_is_told_before_the_open_and_not_after() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing.db");
    assert_eq!(
        shoal_store::pending_upgrade(&missing).expect("missing"),
        None
    );
    let dir = fixtures_root().join("schema-12");
    copy_dir(&dir, tmp.path());
    let path = tmp.path().join(script::DB_FILE);
    let records: u64 = rusqlite::Connection::open(&path)
        .expect("raw open")
        .query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))
        .expect("count") as u64;
    assert_eq!(
        shoal_store::pending_upgrade(&path).expect("schema 12"),
        Some(shoal_store::PendingUpgrade {
            from: 12,
            to: SCHEMA_VERSION,
            records
        })
    );
    drop(Store::open(&path, StoreConfig::default()).expect("open"));
    assert_eq!(shoal_store::pending_upgrade(&path).expect("upgraded"), None);
    let foreign = tmp.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .expect("foreign")
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .expect("table");
    assert_eq!(
        shoal_store::pending_upgrade(&foreign).expect("foreign"),
        None
    );
}
