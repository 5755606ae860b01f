//! Restarts over real loopback sockets: a node that was away receives exactly
//! the changes it missed (counted per session in the peer table), never the
//! full history again, and its persisted cursor advances; a node killed with
//! SIGKILL in the middle of a chunked catch-up (run as a child process: this
//! test binary re-executed into the ignored `catch_up_child` test) resumes
//! from the cursor it persisted with the last applied chunk, and converges.

use crate::common;

use common::*;
use serde_json::json;
use shoal::{DbVersion, PeerId, PeerStatus, Store, SyncCursor};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// Set (to the database path) in the child process only.
const CHILD_DB: &str = "SHOAL_SYNC_CHILD_DB";
/// The address the child dials.
const CHILD_PEER: &str = "SHOAL_SYNC_CHILD_PEER";
/// A child never outlives this, even if its parent vanished without killing it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// The small chunk size of the catch-up that gets killed.
const CHUNK: u32 = 200;

/// `peer`'s entry once a catch-up with it has completed up to `head` and
/// at least `changes` changes came in (the session reports its counters
/// right after the action that completed the catch-up), after a moment more
/// in which any excess would show.
async fn caught_up(node: &shoal::Node, peer: &PeerId, head: DbVersion, changes: u64) -> PeerStatus {
    wait_for("a completed catch-up", LIMIT, || {
        node.peer(peer).is_some_and(|s| {
            s.last_sync_ms.is_some()
                && s.cursor == SyncCursor::complete(head)
                && s.changes_in >= changes
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.peer(peer).unwrap()
}

/// B syncs everything from A, goes away (its node shut down, its store kept),
/// A writes M records, B comes back: the new session transfers exactly the
/// changes A's log holds after B's persisted cursor (the M records), not the
/// history, and the cursor B persisted for A advances to A's head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_receives_exactly_the_missed_changes() {
    const HISTORY: usize = 300;
    const MISSED: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let items = a.store.collection("items").unwrap();
    items
        .put_many((0..HISTORY).map(|i| (format!("old-{i:04}"), json!({"n": i}))))
        .unwrap();
    let a_id = a.node.peer_id();
    let b_store = Store::open(dir.path().join("b.db")).unwrap();
    let b = start_with(
        b_store.clone(),
        group_key(),
        vec![a.address.clone()],
        |_| {},
    )
    .await;
    let history = a.store.changes_since(DbVersion(0)).count() as u64;
    let first = caught_up(&b.node, &a_id, a.store.db_version(), history).await;
    assert_eq!(first.changes_in, history, "a new peer gets the full state");
    let before = b_store.peer_cursor(&a_id.to_string()).unwrap();
    assert_eq!(before, SyncCursor::complete(a.store.db_version()));

    b.node.shutdown().await;
    for i in 0..MISSED {
        items.put(&format!("new-{i:04}"), json!({"n": i})).unwrap();
    }
    let missed: Vec<_> = a.store.changes_after(before).map(|c| c.unwrap()).collect();
    assert!(missed.iter().all(|c| c.id.as_str().starts_with("new-")));
    assert!(!missed.is_empty() && (missed.len() as u64) < history);

    let b = start_with(
        b_store.clone(),
        group_key(),
        vec![a.address.clone()],
        |_| {},
    )
    .await;
    let second = caught_up(&b.node, &a_id, a.store.db_version(), missed.len() as u64).await;
    assert_eq!(
        second.changes_in,
        missed.len() as u64,
        "the restarted session transfers only the missed changes"
    );
    let after = b_store.peer_cursor(&a_id.to_string()).unwrap();
    assert!(after.base > before.base, "{before} -> {after}");
    assert_eq!(after, SyncCursor::complete(a.store.db_version()));
    assert_eq!(state(&a.store), state(&b_store));
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A holds 20,000 records; B (a child process) starts empty and catches up in
/// chunks of 200 changes. Once B's persisted cursor has advanced past a few
/// chunks, B is killed with SIGKILL. Its cursor is then part-way (neither
/// empty nor complete), and after a restart the new session asks from it: it
/// transfers exactly the changes after that cursor — fewer than the whole log
/// — and the replicas converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_catch_up_resumes_from_its_cursor() {
    const RECORDS: usize = 20_000;
    const BATCH: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let items = a.store.collection("items").unwrap();
    for batch in 0..RECORDS / BATCH {
        items
            .put_many((0..BATCH).map(|i| {
                let n = batch * BATCH + i;
                (
                    format!("r{n:05}"),
                    json!({"n": n, "text": "some words to carry"}),
                )
            }))
            .unwrap();
    }
    let a_id = a.node.peer_id();
    let a_head = a.store.db_version();
    let total = a.store.changes_since(DbVersion(0)).count() as u64;

    // Create B's store (and identity) here, then let the child run its node.
    let b_path = dir.path().join("b.db");
    drop(Store::open(&b_path).unwrap());
    let started = Instant::now();
    let child = ChildGuard(
        // This test binary again, running only the child test (by its path
        // in the binary: tests/it/main.rs holds every file as a module).
        Command::new(std::env::current_exe().unwrap())
            .args([
                "sync_restart::catch_up_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_DB, &b_path)
            .env(CHILD_PEER, a.address.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child node"),
    );
    let watcher = Store::open(&b_path).unwrap();
    let cursor = || watcher.peer_cursor(&a_id.to_string()).unwrap();
    // A few chunks in (records of the third of A's twenty transactions).
    wait_for("the child's cursor to advance", LIMIT, || {
        cursor().position.version >= DbVersion(3)
    })
    .await;
    let mut child = child;
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().unwrap();
    eprintln!("child killed after {:?}", started.elapsed());
    drop(watcher);

    let b_store = Store::open(&b_path).unwrap();
    let at_kill = b_store.peer_cursor(&a_id.to_string()).unwrap();
    assert_ne!(at_kill, SyncCursor::default(), "the cursor had advanced");
    assert_ne!(
        at_kill,
        SyncCursor::complete(a_head),
        "killed before the catch-up completed"
    );
    let remaining = a.store.changes_after(at_kill).count() as u64;
    assert!(0 < remaining && remaining < total, "{remaining} of {total}");

    let b = start_with(b_store.clone(), group_key(), vec![a.address.clone()], |c| {
        c.sync.max_changes = CHUNK;
    })
    .await;
    let resumed = caught_up(&b.node, &a_id, a_head, remaining).await;
    assert_eq!(
        resumed.changes_in, remaining,
        "the restarted catch-up resumes at the persisted cursor"
    );
    assert_eq!(state(&a.store), state(&b_store));
    eprintln!(
        "resumed with {remaining} of {total} changes after {:?}",
        started.elapsed()
    );
}

/// The node killed by `killed_mid_catch_up_resumes_from_its_cursor` (which
/// sets `SHOAL_SYNC_CHILD_DB`); a no-op when run any other way.
#[test]
#[ignore = "child process of killed_mid_catch_up_resumes_from_its_cursor"]
fn catch_up_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let peer = std::env::var(CHILD_PEER)
        .expect("the peer address")
        .parse()
        .expect("a multiaddr");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&path).expect("open the store");
        let _node = start_with(store, group_key(), vec![peer], |c| {
            c.sync.max_changes = CHUNK;
        })
        .await;
        tokio::time::sleep(CHILD_LIFETIME).await;
    });
}
