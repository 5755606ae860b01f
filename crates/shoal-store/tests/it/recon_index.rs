//! The store's reconciliation index: fingerprints kept up to date on every
//! write and applied change equal those rebuilt from the file; a commit by
//! another connection is noticed (its records listed too); schema-2 and
//! schema-3 files are migrated with digests identical to those of a fresh
//! store; a reopened store takes its saved trees back instead of reading
//! every record, unless they went stale; the key table's copy of each
//! record's state follows every change made after it was filled; reading
//! for a walk leaves no transaction open; the scans kept between a walk's
//! views are dropped when the collection changes.

use shoal_core::gc::GcPolicy;
use shoal_core::recon::{Fingerprint, Node, ReconKey, ReconView, ShortDigest};
use shoal_core::{CollectionName, Intent, RecordId, SyncCursor};
use shoal_store::{Store, StoreConfig, WriteOp};
use std::path::Path;

fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).expect("open store")
}

fn notes() -> CollectionName {
    CollectionName::new("notes").expect("name")
}

fn put(store: &mut Store, id: &str, n: i64) {
    let body = serde_json::json!({ "n": n, "tag": format!("t{}", n % 7) });
    store
        .write([WriteOp {
            collection: notes(),
            id: RecordId::new(id).expect("id"),
            intent: Intent::Put(body.as_object().expect("object").clone()),
        }])
        .expect("write");
}

/// Puts records `r{i}` (field `n` = i) for every i of `range`.
fn put_all(store: &mut Store, range: std::ops::Range<i64>) {
    for i in range {
        put(store, &format!("r{i}"), i);
    }
}

fn delete(store: &mut Store, id: &str) {
    store
        .write([WriteOp {
            collection: notes(),
            id: RecordId::new(id).expect("id"),
            intent: Intent::Delete,
        }])
        .expect("delete");
}

/// The root and every node of the first two levels.
fn fingerprints(store: &mut Store) -> Vec<Fingerprint> {
    let mut view = store.recon_view(&notes()).expect("view");
    let mut out = vec![view.fingerprint(Node::ROOT).expect("root")];
    for i in 0..16 {
        let child = Node::ROOT.child(i).expect("child");
        out.extend(view.children(child).expect("children"));
    }
    out
}

/// The ids listed under the 16 level-1 nodes (read through the key table),
/// sorted.
fn listed_ids(store: &mut Store) -> Vec<String> {
    let mut view = store.recon_view(&notes()).expect("view");
    let mut ids = Vec::new();
    for i in 0..16 {
        let child = Node::ROOT.child(i).expect("child");
        ids.extend(
            view.items(child)
                .expect("items")
                .into_iter()
                .map(|item| item.id.to_string()),
        );
    }
    ids.sort();
    ids
}

/// Every change `store` holds, as a peer would receive them.
fn all_changes(store: &Store) -> Vec<shoal_core::Change> {
    store
        .changes_since(Default::default())
        .collect::<Result<_, _>>()
        .expect("changes")
}

fn sorted_ids(range: std::ops::Range<i64>) -> Vec<String> {
    let mut ids: Vec<String> = range.map(|i| format!("r{i}")).collect();
    ids.sort();
    ids
}

/// Record `id`'s digest as a new view lists it, read under its level-3
/// node (below the memory tree here), whose scan the store keeps when the
/// view is dropped.
fn listed_digest(store: &mut Store, id: &str) -> ShortDigest {
    let key = ReconKey::of(&RecordId::new(id).expect("id"));
    let mut view = store.recon_view(&notes()).expect("view");
    let items = view.items(Node::at(3, key)).expect("items");
    let found: Vec<_> = items.iter().filter(|i| i.id.as_str() == id).collect();
    assert_eq!(found.len(), 1, "{id} listed once");
    found[0].digest
}

/// A walk's scans are kept from one view to the next, but only while the
/// collection does not change: a local write, a peer's change applied and
/// another process's commit are each seen by the next view.
#[test]
fn kept_scans_are_dropped_when_the_collection_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = open(&path);
    put_all(&mut store, 0..2_000);
    let first = listed_digest(&mut store, "r7");
    assert_eq!(listed_digest(&mut store, "r7"), first, "nothing changed");

    put(&mut store, "r7", -7);
    let written = listed_digest(&mut store, "r7");
    assert_ne!(written, first, "a local write");

    let mut peer = open(&dir.path().join("b.db"));
    put(&mut peer, "r7", 70);
    let changes = all_changes(&peer);
    store.apply(&changes).expect("apply");
    let applied = listed_digest(&mut store, "r7");
    assert_ne!(applied, written, "a peer's change applied");

    let mut cli = open(&path);
    put(&mut cli, "r7", 700);
    assert_ne!(
        listed_digest(&mut store, "r7"),
        applied,
        "another process's commit"
    );
}

/// A store that sees another process's commit while dropping records
/// (narrowing its own partial filter) forgets what it read before even if
/// the drop then fails: here the other process collected tombstones (which
/// leaves the head where it was), and a trigger refuses the drop's deletes.
/// The store's next view must not list the collected records from trees or
/// scans kept from before.
#[test]
fn a_drop_that_fails_after_seeing_another_commit_leaves_nothing_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut full = open(&dir.path().join("full.db"));
    for i in 0..40 {
        let owner = if i % 2 == 0 { "al" } else { "bo" };
        let body = serde_json::json!({ "owner": owner });
        full.write([WriteOp {
            collection: notes(),
            id: RecordId::new(format!("r{i}")).expect("id"),
            intent: Intent::Put(body.as_object().expect("object").clone()),
        }])
        .expect("write");
    }
    let path = dir.path().join("device.db");
    let mut device = open(&path);
    let changes = all_changes(&full);
    device
        .apply_from("full", &changes, SyncCursor::complete(full.db_version()))
        .expect("apply");
    for i in 0..5 {
        delete(&mut device, &format!("r{i}"));
    }
    // Every record listed, tombstones too; the scans are kept.
    assert_eq!(listed_ids(&mut device), sorted_ids(0..40));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut other = open(&path);
    let report = other
        .collect_tombstones(GcPolicy { horizon_ms: 1 }, &mut |_| {})
        .expect("collect");
    assert_eq!(report.rows_reclaimed, 5);
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.execute_batch(
        "CREATE TRIGGER refuse_drops BEFORE DELETE ON records
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .expect("trigger");
    assert!(
        device
            .set_own_filter(&notes(), Some(r#"owner = "bo""#))
            .is_err(),
        "the drop's delete is refused"
    );
    assert_eq!(listed_ids(&mut device), sorted_ids(5..40));
}

#[test]
fn incremental_fingerprints_match_a_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = open(&path);
    // Build the tree first, so every later change is applied incrementally.
    assert_eq!(fingerprints(&mut store)[0].count, 0);
    put_all(&mut store, 0..500);
    for i in (0..500).step_by(3) {
        put(&mut store, &format!("r{i}"), -i);
    }
    for i in (0..500).step_by(5) {
        delete(&mut store, &format!("r{i}"));
    }
    // Remote changes take the apply path.
    let mut other = open(&dir.path().join("b.db"));
    for i in 400..600 {
        put(&mut other, &format!("r{i}"), i * 2);
    }
    let changes = all_changes(&other);
    store.apply(&changes).expect("apply");
    let incremental = fingerprints(&mut store);
    assert_eq!(incremental[0].count, 600);
    drop(store);
    forget_saved_trees(&path);
    let mut reopened = open(&path);
    let rebuilt = fingerprints(&mut reopened);
    assert_eq!(reopened.recon_index_builds(), 1, "rebuilt from the records");
    assert_eq!(incremental, rebuilt);
}

/// Below the memory tree nodes are read from the key table alone: its copy
/// of each record's digest and life must follow rewrites, deletes and
/// merges made after it was first filled, so every level-1 node's children
/// (read from the table) add up to the node's fingerprint in the memory
/// tree (kept by every write).
#[test]
fn the_key_table_follows_every_change_after_it_was_filled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    put_all(&mut store, 0..500);
    // Fills the key table and builds the tree (one memory level here).
    assert_eq!(fingerprints(&mut store)[0].count, 500);
    for i in (0..500).step_by(3) {
        put(&mut store, &format!("r{i}"), -i);
    }
    for i in (0..500).step_by(5) {
        delete(&mut store, &format!("r{i}"));
    }
    let mut other = open(&dir.path().join("b.db"));
    for i in 400..600 {
        put(&mut other, &format!("r{i}"), i * 2);
    }
    let changes = all_changes(&other);
    store.apply(&changes).expect("apply");
    let mut view = store.recon_view(&notes()).expect("view");
    let mut total = 0;
    for i in 0..16 {
        let node = Node::ROOT.child(i).expect("child");
        let kept = view.fingerprint(node).expect("fingerprint");
        let mut summed = Fingerprint::default();
        for child in view.children(node).expect("children") {
            summed.merge(child);
        }
        assert_eq!(
            summed, kept,
            "node {i}: the key table is behind the records"
        );
        total += view.items(node).expect("items").len();
    }
    assert_eq!(total, 600);
}

/// Deletes the trees the store saved when it closed, so the next open
/// rebuilds them from the records.
fn forget_saved_trees(path: &Path) {
    let raw = rusqlite::Connection::open(path).expect("raw");
    raw.execute("DELETE FROM recon_saved", []).expect("forget");
}

#[test]
fn a_reopened_store_takes_its_saved_tree_back_without_reading_the_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = open(&path);
    put_all(&mut store, 0..3000);
    let built = fingerprints(&mut store);
    assert_eq!(store.recon_index_builds(), 1);
    // Changes after the build move the tree in memory; the close saves it.
    put(&mut store, "r1", -1);
    delete(&mut store, "r2");
    let moved = fingerprints(&mut store);
    assert_ne!(built, moved);
    drop(store);

    let mut reopened = open(&path);
    assert_eq!(fingerprints(&mut reopened), moved);
    assert_eq!(reopened.recon_index_builds(), 0, "no record read again");
    // And it stays true as the reopened store writes.
    put(&mut reopened, "r3000", 3000);
    let grown = fingerprints(&mut reopened);
    assert_eq!(grown[0].count, 3001);
    drop(reopened);
    forget_saved_trees(&path);
    let mut rebuilt = open(&path);
    assert_eq!(fingerprints(&mut rebuilt), grown);
    assert_eq!(rebuilt.recon_index_builds(), 1);
}

#[test]
fn a_saved_tree_gone_stale_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = open(&path);
    put_all(&mut store, 0..200);
    let saved = fingerprints(&mut store);
    drop(store);
    // Another process writes without ever building a tree.
    let mut cli = open(&path);
    put(&mut cli, "r7", -7);
    drop(cli);
    let mut reopened = open(&path);
    let now = fingerprints(&mut reopened);
    assert_eq!(
        reopened.recon_index_builds(),
        1,
        "the stale tree was not used"
    );
    assert_ne!(now, saved);
    assert_eq!(now[0].count, 200);

    // A tree saved while another connection's commit went unseen is not saved.
    let mut daemon = reopened;
    put(&mut daemon, "r8", -8);
    let before = fingerprints(&mut daemon);
    let mut cli = open(&path);
    put(&mut cli, "r9", -9);
    drop(cli);
    drop(daemon);
    let mut fresh = open(&path);
    let after = fingerprints(&mut fresh);
    assert_ne!(after, before);
    assert_eq!(fresh.recon_index_builds(), 1);
}

/// A walk's scans share one read transaction; it must end with the view, or
/// the next write could not begin (and the file would stay pinned at that
/// snapshot).
#[test]
fn a_reconciliation_read_leaves_no_transaction_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("shoal.db"));
    put_all(&mut store, 0..50);
    assert_eq!(listed_ids(&mut store), sorted_ids(0..50));
    put(&mut store, "r50", 50);
    assert_eq!(listed_ids(&mut store), sorted_ids(0..51));
}

#[test]
fn another_connections_commit_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut daemon = open(&path);
    put(&mut daemon, "r1", 1);
    let before = fingerprints(&mut daemon);
    let mut cli = open(&path);
    put(&mut cli, "r2", 2);
    let after = fingerprints(&mut daemon);
    assert_ne!(before[0], after[0]);
    assert_eq!(after[0].count, 2);
    assert_eq!(after, fingerprints(&mut cli));
    assert_eq!(listed_ids(&mut daemon), vec!["r1", "r2"]);
    put(&mut cli, "r3", 3);
    assert_eq!(listed_ids(&mut daemon), vec!["r1", "r2", "r3"]);
}

#[test]
fn a_schema_2_file_is_migrated_with_the_same_digests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let mut store = open(&path);
    put_all(&mut store, 0..1500);
    delete(&mut store, "r7");
    let fresh = fingerprints(&mut store);
    drop(store);
    // Turn the file back into what schema version 2 wrote (but for the
    // `records` table's key, which step 13 finds made; the committed
    // fixtures, `upgrade_fixtures.rs`, hold the layouts before it).
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.execute_batch(
        "DROP TABLE recon_keys; DROP TABLE sharing; DROP TABLE local_only;
         DROP TABLE blob_refs; DROP TABLE blobs;
         ALTER TABLE records DROP COLUMN refs; ALTER TABLE records DROP COLUMN missing;
         ALTER TABLE records DROP COLUMN digest; DELETE FROM meta WHERE key = 'recon_indexed';
         PRAGMA user_version = 2;",
    )
    .expect("downgrade");
    drop(raw);
    let mut migrated = open(&path);
    assert_eq!(fingerprints(&mut migrated), fresh);
    assert_eq!(listed_ids(&mut migrated), sorted_ids(0..1500));
    assert_eq!(
        migrated
            .get(&notes(), &RecordId::new("r3").expect("id"))
            .expect("get")
            .expect("alive")["n"],
        3
    );
    drop(migrated);
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, shoal_store::SCHEMA_VERSION);
}

#[test]
fn a_schema_3_file_is_migrated_and_lists_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v3.db");
    let mut store = open(&path);
    put_all(&mut store, 0..1200);
    let fresh = fingerprints(&mut store);
    drop(store);
    // Turn the file back into what schema version 3 wrote: the key as a
    // column of `records`, with its own index.
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.execute_batch(
        "DROP TABLE recon_keys; DELETE FROM meta WHERE key = 'recon_indexed';
         DROP TABLE blob_refs; DROP TABLE blobs;
         ALTER TABLE records DROP COLUMN refs; ALTER TABLE records DROP COLUMN missing;
         ALTER TABLE records ADD COLUMN rkey INTEGER NOT NULL DEFAULT 0;
         CREATE INDEX records_recon ON records (cid, rkey);
         PRAGMA user_version = 3;",
    )
    .expect("downgrade");
    drop(raw);
    let mut migrated = open(&path);
    assert_eq!(fingerprints(&mut migrated), fresh);
    assert_eq!(listed_ids(&mut migrated), sorted_ids(0..1200));
    put(&mut migrated, "r1200", 1200);
    assert_eq!(listed_ids(&mut migrated), sorted_ids(0..1201));
    drop(migrated);
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let columns: Vec<String> = raw
        .prepare("SELECT name FROM pragma_table_info('records')")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("columns")
        .collect::<Result<_, _>>()
        .expect("columns");
    assert!(!columns.iter().any(|c| c == "rkey"), "{columns:?}");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, shoal_store::SCHEMA_VERSION);
}
