//! The write-ahead log under many writes: checkpointed off the write path
//! (`checkpointer.rs`) it still stays bounded, nothing written is lost, and
//! closing the store stops the checkpoint thread so that the last
//! connection removes the log. The commit count the commit hook keeps
//! counts the store's own commits, not another connection's.

use shoal_core::{CollectionName, Intent, RecordId};
use shoal_store::{Store, StoreConfig, WriteOp};
use std::path::Path;

fn notes() -> CollectionName {
    CollectionName::new("notes").expect("name")
}

/// One transaction of `n` records of ~2 KiB each, ids `b{batch}-{i}`.
fn write_batch(store: &mut Store, batch: usize, n: usize) {
    let text = "x".repeat(2_000);
    let ops = (0..n).map(|i| WriteOp {
        collection: notes(),
        id: RecordId::new(format!("b{batch}-{i}")).expect("id"),
        intent: Intent::Put(
            serde_json::json!({ "i": i, "text": text })
                .as_object()
                .expect("object")
                .clone(),
        ),
    });
    store.write(ops).expect("write");
}

fn wal_len(db: &Path) -> Option<u64> {
    std::fs::metadata(db.with_extension("db-wal"))
        .ok()
        .map(|m| m.len())
}

#[test]
fn a_long_run_of_writes_keeps_the_log_bounded_and_closing_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shoal.db");
    let mut store = Store::open(&db, StoreConfig::default()).expect("open");
    // ~20,000 pages written in 100 transactions: past the checkpoint
    // thread's step many times, and past the inline limit without it.
    for batch in 0..100 {
        write_batch(&mut store, batch, 200);
    }
    let len = wal_len(&db).expect("a log while open");
    // The inline limit (16,000 frames of 4 KiB + 24 B) plus one transaction.
    assert!(len < 17_000 * 4_120, "the log grew to {len} bytes");
    drop(store);
    assert_eq!(
        wal_len(&db),
        None,
        "the log outlived the store: a connection is still open"
    );
    let store = Store::open(&db, StoreConfig::default()).expect("reopen");
    let last = RecordId::new("b99-199").expect("id");
    let record = store.get(&notes(), &last).expect("get").expect("kept");
    assert_eq!(record["i"], 199);
}

#[test]
fn the_commit_count_counts_this_stores_commits_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shoal.db");
    let mut mine = Store::open(&db, StoreConfig::default()).expect("open");
    let mut other = Store::open(&db, StoreConfig::default()).expect("open again");
    let count = mine.commit_count();
    let before = count.get();
    for batch in 0..3 {
        write_batch(&mut mine, batch, 2);
    }
    assert_eq!(count.get(), before + 3, "one per transaction written here");
    write_batch(&mut other, 9, 2);
    assert_eq!(
        count.get(),
        before + 3,
        "another connection's commit is not ours"
    );
    assert!(
        mine.refresh_head().expect("refresh").is_some(),
        "the other commit is seen by a look at the log"
    );
    assert_eq!(count.get(), before + 3, "looking commits nothing");
}
