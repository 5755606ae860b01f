//! What a store merged from a sync peer is not read back for that peer: the
//! log read for it leaves out the slot versions its own batches wrote (a
//! catch-up is not echoed to where it came from), while every other peer
//! still gets them, and a later local write to the same records still goes
//! back to it.

use shoal_core::{Change, CollectionName, DbVersion, Intent, RecordId, SyncCursor};
use shoal_store::{Store, StoreConfig, WriteOp};
use std::path::Path;

fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).expect("open")
}

fn put(store: &mut Store, id: &str, body: serde_json::Value) {
    let op = WriteOp {
        collection: CollectionName::new("notes").expect("name"),
        id: RecordId::new(id).expect("id"),
        intent: Intent::Put(body.as_object().expect("object").clone()),
    };
    store.write(vec![op]).expect("write");
}

/// Everything `store` sends `peer` from `cursor` on, read in reads of at
/// most 3 changes (so reads stop part-way), and the cursor it ends at.
fn read_all(store: &Store, peer: &str, mut cursor: SyncCursor) -> (Vec<Change>, SyncCursor) {
    let mut changes = Vec::new();
    loop {
        let read = store.read_for_peer(peer, cursor, 3, 1 << 20).expect("read");
        changes.extend(read.changes);
        cursor = cursor.advance_within(read.upto, read.partial, read.more);
        if !read.more {
            return (changes, cursor);
        }
    }
}

#[test]
fn what_a_peer_sent_is_not_read_back_for_it() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = open(&dir.path().join("a.db"));
    for i in 0..5 {
        put(
            &mut a,
            &format!("n{i}"),
            serde_json::json!({"i": i, "text": "from a"}),
        );
    }
    let (from_a, _) = read_all(&a, "b", SyncCursor::default());
    assert_eq!(from_a.len(), 15, "life and two fields of five records");

    let mut b = open(&dir.path().join("b.db"));
    // B writes one record of its own first, then merges A's in two batches.
    put(&mut b, "mine", serde_json::json!({"text": "from b"}));
    let (first, rest) = from_a.split_at(6);
    let mut cursor_in_a = SyncCursor::default();
    for batch in [first, rest] {
        cursor_in_a = cursor_in_a.advance(batch.last().expect("change").position, true);
        b.apply_from("a", batch, cursor_in_a).expect("apply");
    }

    // A gets back only B's own record; a third peer gets everything.
    let (to_a, a_cursor) = read_all(&b, "a", SyncCursor::default());
    assert_eq!(to_a.len(), 2, "{to_a:?}");
    assert!(to_a.iter().all(|c| c.id.as_str() == "mine"));
    let (to_c, _) = read_all(&b, "c", SyncCursor::default());
    assert_eq!(to_c.len(), 17);
    assert_eq!(a_cursor, SyncCursor::complete(b.db_version()));

    // From a cursor past B's own write, A's batches read as nothing at once.
    let after_mine = SyncCursor::complete(DbVersion(1));
    let read = b
        .read_for_peer("a", after_mine, 100, 1 << 20)
        .expect("read");
    assert!(read.changes.is_empty() && !read.more);
    assert_eq!(
        after_mine.advance_within(read.upto, read.partial, read.more),
        SyncCursor::complete(b.db_version())
    );

    // A local edit of a record A sent goes back to A (only what changed).
    put(
        &mut b,
        "n3",
        serde_json::json!({"i": 3, "text": "edited on b"}),
    );
    let (edit, _) = read_all(&b, "a", a_cursor);
    assert_eq!(edit.len(), 1, "{edit:?}");
    assert_eq!(edit[0].id.as_str(), "n3");
    assert_eq!(
        edit[0].value.as_ref().map(|v| v.as_str()),
        Some("\"edited on b\"")
    );
}

#[test]
fn a_merge_without_a_peer_is_read_back_to_everyone() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = open(&dir.path().join("a.db"));
    put(&mut a, "n1", serde_json::json!({"text": "from a"}));
    let (from_a, _) = read_all(&a, "b", SyncCursor::default());
    let mut b = open(&dir.path().join("b.db"));
    b.apply(&from_a).expect("apply");
    let (to_a, _) = read_all(&b, "a", SyncCursor::default());
    assert_eq!(to_a.len(), from_a.len());
}

/// A new session forgets what the peer sent before: a node restored from a
/// backup under the same identity no longer holds what the lost machine
/// sent, so the next session must carry it back.
#[test]
fn a_new_session_reads_back_what_the_peer_sent_in_an_earlier_one() {
    let dir = tempfile::tempdir().expect("dir");
    let mut a = open(&dir.path().join("a.db"));
    put(&mut a, "n1", serde_json::json!({"text": "from a"}));
    let (from_a, _) = read_all(&a, "b", SyncCursor::default());
    let mut b = open(&dir.path().join("b.db"));
    let cursor = SyncCursor::default().advance(from_a.last().expect("change").position, true);
    b.apply_from("a", &from_a, cursor).expect("apply");
    let (same_session, _) = read_all(&b, "a", SyncCursor::default());
    assert!(same_session.is_empty(), "{same_session:?}");

    b.session_started("a");
    let (next_session, _) = read_all(&b, "a", SyncCursor::default());
    assert_eq!(next_session.len(), from_a.len(), "{next_session:?}");
}
