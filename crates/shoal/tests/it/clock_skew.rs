//! A clock from the future never stops sync, over real nodes on loopback.
//! Two drift bounds stand in for skewed machines: A accepts a clock two
//! minutes ahead (its bound is the default five), B's bound is ten seconds.
//! What B cannot take yet is held back and shown in its peer table while
//! everything else keeps syncing, both ways; raising B's bound (as
//! `--max-clock-drift` does) merges it.

use crate::common;

use common::{connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{Change, Hlc, PeerState, Store, StoreConfig, StoreOptions};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64
}

fn has(store: &Store, collection: &str, id: &str) -> bool {
    store
        .collection(collection)
        .and_then(|c| c.get(id))
        .is_ok_and(|r| r.is_some())
}

/// A record written elsewhere with a clock `ahead` ms in the future.
fn future_record(dir: &std::path::Path, id: &str, ahead: u64) -> Vec<Change> {
    let writer = Store::open(dir.join("writer.db")).expect("open writer");
    writer
        .collection("notes")
        .expect("notes")
        .put(id, json!({"from": "the future"}))
        .expect("put");
    let mut changes: Vec<Change> = writer
        .changes_since(shoal::DbVersion(0))
        .map(|c| c.expect("read"))
        .collect();
    let hlc = Hlc::new(now_ms() + ahead, 0);
    for change in &mut changes {
        change.clock.hlc = hlc;
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_past_the_bound_is_held_and_shown_while_the_rest_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    a_store
        .collection("notes")
        .expect("notes")
        .put("before", json!({"v": 1}))
        .expect("put");
    // A takes a clock 2 minutes ahead (within its 5-minute bound) and
    // raises its own clock to it.
    a_store
        .apply(&future_record(dir.path(), "future", 120_000))
        .expect("A accepts a clock 2 min ahead");
    let options = StoreOptions {
        config: StoreConfig {
            max_drift_ms: 10_000,
            ..StoreConfig::default()
        },
        ..StoreOptions::default()
    };
    let b_store = Store::open_with(dir.path().join("b.db"), options).expect("open b");
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;
    let pa = a.node.peer_id();

    // The record beside it in the same catch-up arrives; the future one waits.
    wait_for("A's ordinary record at B", WAIT, || {
        has(&b.store, "notes", "before")
    })
    .await;
    wait_for("B to show what it holds back", WAIT, || {
        b.node.peer(&pa).is_some_and(|s| s.held.changes > 0)
    })
    .await;
    assert!(!has(&b.store, "notes", "future"));
    let status = b.node.peer(&pa).expect("status");
    let ahead = status.held.ahead_ms(now_ms());
    assert!(
        (60_000..=120_000).contains(&ahead),
        "clock ahead by {ahead} ms"
    );
    assert_eq!(status.state, PeerState::Connected, "{status:?}");
    let held = b.store.held_back().expect("held");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].peer, pa.to_string());

    // Sync goes on both ways: B's writes reach A, and the session stays up.
    b.store
        .collection("notes")
        .expect("notes")
        .put("from-b", json!({"v": 2}))
        .expect("put");
    wait_for("B's write at A", WAIT, || has(&a.store, "notes", "from-b")).await;
    assert_eq!(
        b.node.peer(&pa).expect("status").state,
        PeerState::Connected
    );

    // Raising B's bound lets it in, and nothing is held any more.
    b.store.set_max_clock_drift(Duration::from_secs(600));
    wait_for("the held record merged at B", WAIT, || {
        has(&b.store, "notes", "future")
    })
    .await;
    wait_for("nothing held", WAIT, || {
        b.node.peer(&pa).is_some_and(|s| s.held.changes == 0)
    })
    .await;
    assert!(b.store.held_back().expect("held").is_empty());
}
