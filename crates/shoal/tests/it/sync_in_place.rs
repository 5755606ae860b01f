//! Where a session's hot store calls run (shoal-net's `quick_call.rs`), seen
//! through real nodes on loopback: a small live push is read in place; a
//! bulk one, found bigger than an in-place read may take, is read again
//! with the session's own budget (it keeps its large frames); and a peer
//! whose database file another process holds locked does not stall its
//! runtime waiting in place — it takes the write once the lock goes.

use crate::common;
use crate::spy;

use common::{group_key, is_connected, start, wait_for};
use serde_json::json;
use shoal::{Store, StoreOptions};
use std::time::{Duration, Instant};

fn has(store: &Store, id: &str) -> bool {
    store
        .collection("notes")
        .and_then(|c| c.get(id))
        .is_ok_and(|r| r.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_push_is_read_in_place_and_a_bulk_one_in_the_sessions_own_frames() {
    let dir = tempfile::tempdir().unwrap();
    let a_store = Store::open(dir.path().join("a.db")).unwrap();
    let (spy, _) = spy::Spy::new(a_store.clone());
    let reads = spy.reads.clone();
    let (a_node, a_address) = spy::start(spy, vec![], |_| {}).await;
    let b = start(dir.path(), "b", group_key(), vec![a_address]).await;
    wait_for("connected", Duration::from_secs(20), || {
        is_connected(&a_node, b.node.peer_id()) && is_connected(&b.node, a_node.peer_id())
    })
    .await;
    let notes = a_store.collection("notes").unwrap();

    notes.put("warm-up", json!({"title": "caught up"})).unwrap();
    wait_for("the warm-up at B", Duration::from_secs(10), || {
        has(&b.store, "warm-up")
    })
    .await;

    // A read may still go to a thread when the store is busy at that
    // instant (an acknowledgement being saved): over five writes, some is
    // read in place, and none is cut to the in-place budget.
    reads.lock().unwrap().clear();
    let mut events = b.store.collection("notes").unwrap().subscribe();
    for i in 0..5 {
        let id = format!("one-{i}");
        notes.put(&id, json!({"title": "one"})).unwrap();
        wait_for("the write at B", Duration::from_secs(10), || {
            has(&b.store, &id)
        })
        .await;
    }
    let seen = reads.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.in_place) && seen.iter().all(|r| !r.more),
        "small writes are read in place, whole: {seen:?}"
    );
    // B announced each applied record once (applied in place or not).
    let mut announced = Vec::new();
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await
    {
        announced.push(event.id.to_string());
    }
    assert_eq!(announced, ["one-0", "one-1", "one-2", "one-3", "one-4"]);

    // 500 records, 1,000 changes: an in-place read may take 64. Cut to
    // that, the push would be some sixteen reads; read again with the
    // session's budget, it is one (after the try, if the store was free).
    reads.lock().unwrap().clear();
    let many: Vec<(String, serde_json::Value)> = (0..500)
        .map(|i| (format!("bulk-{i:03}"), json!({"title": "bulk", "n": i})))
        .collect();
    notes.put_many(many).unwrap();
    wait_for("the bulk write at B", Duration::from_secs(20), || {
        has(&b.store, "bulk-000") && has(&b.store, "bulk-499")
    })
    .await;
    let seen = reads.lock().unwrap().clone();
    let blocking: Vec<_> = seen.iter().filter(|r| !r.in_place).collect();
    assert!(
        seen.len() <= 2 && blocking.len() == 1 && !blocking[0].more,
        "the bulk push is one read with the session's budget: {seen:?}"
    );
    assert!(
        seen.iter()
            .filter(|r| r.in_place)
            .all(|r| r.more && r.max_changes < blocking[0].max_changes),
        "{seen:?}"
    );
    a_node.shutdown().await;
    b.node.shutdown().await;
}

/// One thread runs both nodes and this test: an apply that waited in place
/// for the lock would stop all of them (the lock's release included) until
/// the store gave up waiting.
#[tokio::test(flavor = "current_thread")]
async fn a_peer_whose_file_another_process_locked_takes_the_write_once_the_lock_goes() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b_path = dir.path().join("b.db");
    let mut options = StoreOptions::default();
    options.config.busy_timeout = Duration::from_secs(30);
    let b_store = Store::open_with(&b_path, options).unwrap();
    let (spy, _) = spy::Spy::new(b_store.clone());
    let applies = spy.applies.clone();
    let (b_node, _) = spy::start(spy, vec![a.address.clone()], |_| {}).await;
    wait_for("connected", Duration::from_secs(20), || {
        is_connected(&a.node, b_node.peer_id()) && is_connected(&b_node, a.node.peer_id())
    })
    .await;

    // B's first catch-up done (else its apply is the one that waits).
    let notes = a.store.collection("notes").unwrap();
    notes.put("warm-up", json!({"title": "caught up"})).unwrap();
    wait_for("the warm-up at B", Duration::from_secs(10), || {
        has(&b_store, "warm-up")
    })
    .await;

    // Another connection — another process would do the same — takes B's
    // write lock and keeps it.
    let locker = rusqlite::Connection::open(&b_path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    applies.lock().unwrap().clear();
    notes.put("locked-out", json!({"title": "waits"})).unwrap();
    // The push arrives, its apply is tried in place, refused, and handed
    // to a thread, which waits for the lock.
    wait_for("the apply handed on", Duration::from_secs(10), || {
        let applies = applies.lock().unwrap();
        applies.ends_with(&[spy::Apply::WouldWait, spy::Apply::Blocking])
    })
    .await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let tick = Instant::now();
        tokio::time::sleep(Duration::from_millis(25)).await;
        slowest = slowest.max(tick.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(2),
        "the runtime stalled for {slowest:?} while B's file was locked"
    );

    locker.execute_batch("ROLLBACK").unwrap();
    wait_for("the write at B", Duration::from_secs(20), || {
        has(&b_store, "locked-out")
    })
    .await;
    a.node.shutdown().await;
    b_node.shutdown().await;
}

/// A commit that flushes to disk (`Durability::Full`) is never waited for
/// in place; with the default durability the same apply is made, whole.
#[test]
fn an_apply_that_would_flush_to_disk_is_never_made_in_place() {
    use shoal::{Durability, SyncCursor};
    use shoal_net::{Attempt, Replica};
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(dir.path().join("source.db")).unwrap();
    source
        .collection("notes")
        .unwrap()
        .put("n", json!({"title": "to apply"}))
        .unwrap();
    let peer: shoal::PeerId = source.peer_id().parse().unwrap();
    let read = Replica::read_for_peer(&source, &peer, SyncCursor::default(), 100, 1 << 20).unwrap();
    let cursor = SyncCursor::complete(read.upto.version);
    assert!(!read.changes.is_empty());

    let mut options = StoreOptions::default();
    options.config.durability = Durability::Full;
    let full = Store::open_with(dir.path().join("full.db"), options).unwrap();
    assert!(matches!(
        Replica::try_apply_from(&full, &peer, &read.changes, cursor),
        Attempt::WouldWait
    ));
    assert!(!has(&full, "n"), "nothing applied");

    let normal = Store::open(dir.path().join("normal.db")).unwrap();
    assert!(matches!(
        Replica::try_apply_from(&normal, &peer, &read.changes, cursor),
        Attempt::Done(Ok(()))
    ));
    assert!(has(&normal, "n"));
    assert_eq!(
        Replica::peer_cursor(&normal, &peer).unwrap(),
        cursor.durable()
    );
}
