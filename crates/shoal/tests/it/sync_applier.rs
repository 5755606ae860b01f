//! A session's merges of the peer's batches (shoal-net's `applier.rs`),
//! seen through real nodes on loopback: while a catch-up chunk is being
//! merged the session takes in the next ones (and asks for more), up to a
//! bounded queue; and a batch the store refuses stops the merges queued
//! behind it, so the cursor never skips it and nothing is lost. A batch the
//! store could not write (its fault, not the batch's) ends the session
//! without the peer being refused.

use crate::common;
use crate::spy;

use common::wait_for;
use serde_json::json;
use shoal::{PeerState, Store};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// Changes per catch-up chunk B asks for: 2,000 one-field records make
/// some twenty chunks, each above what a session merges in place.
const CHUNK: u32 = 100;
/// How long the two stay apart after a session ended on a refusal.
const BACKOFF: Duration = Duration::from_millis(200);

/// A holding `n` records, started as a spy node; B an empty spy node asking
/// for small chunks, with `prepare` run on B's spy before it starts. Both
/// keep away from a peer they refused for `backoff`.
async fn pair(
    dir: &std::path::Path,
    n: usize,
    backoff: Duration,
    prepare: impl FnOnce(&spy::Spy),
) -> (Arc<spy::Spy>, Arc<spy::Spy>, Vec<shoal::Node>) {
    let a_store = Store::open(dir.join("a.db")).unwrap();
    a_store
        .collection("notes")
        .unwrap()
        .put_many((0..n).map(|i| (format!("n-{i:05}"), json!({"n": i}))))
        .unwrap();
    let (a, _) = spy::Spy::new(a_store);
    // A refused batch ends the session as a misbehaving peer would; both
    // sides may meet again soon.
    let (a_node, a_address) = spy::start(a.clone(), vec![], |c| {
        c.rejected_backoff = backoff;
    })
    .await;
    let (b, _) = spy::Spy::new(Store::open(dir.join("b.db")).unwrap());
    prepare(&b);
    let (b_node, _) = spy::start(b.clone(), vec![a_address], |c| {
        c.sync.max_changes = CHUNK;
        c.rejected_backoff = backoff;
    })
    .await;
    (a, b, vec![a_node, b_node])
}

/// Releases a spy's held merges when dropped, also when a check fails
/// (else the runtime would wait for the held thread forever).
struct Released<'a>(&'a spy::Spy);

impl Drop for Released<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

fn reads(spy: &spy::Spy) -> usize {
    spy.reads.lock().unwrap().len()
}

fn count(store: &Store) -> usize {
    store
        .status()
        .unwrap()
        .collections
        .iter()
        .map(|c| c.live as usize)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_chunks_are_taken_in_while_one_is_merged_up_to_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, nodes) = pair(dir.path(), 2_000, BACKOFF, |b| b.hold_applies()).await;
    let released = Released(&b);
    // B's first merge is held. Merged where the session runs, B would ask
    // for one chunk more and then wait; beside it, B takes in the chunks
    // that arrive and asks for the next while the first is merged.
    wait_for("A to read a third chunk for B", WAIT, || reads(&a) >= 3).await;
    // ... but only as far as its queue: one merging, one queued, one
    // taken in and waiting for room, and the one that one asked for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read_while_held = reads(&a);
    assert!(
        read_while_held <= 4,
        "A read {read_while_held} chunks while B merged none"
    );
    assert_eq!(count(&b.store), 0, "nothing is merged while held");
    drop(released);
    wait_for("B to hold every record", WAIT, || count(&b.store) == 2_000).await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_stops_the_merges_queued_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, nodes) = pair(dir.path(), 2_000, BACKOFF, |b| {
        b.hold_applies();
        // The second chunk is refused, with the third queued behind it.
        *b.refuse.lock().unwrap() = Some((1, spy::Fault::Batch));
    })
    .await;
    let released = Released(&b);
    wait_for("B to queue chunks behind the first", WAIT, || {
        reads(&a) >= 4
    })
    .await;
    drop(released);
    // The session ends on the refusal; the next one asks again from the
    // first chunk's cursor. Had the third chunk been merged after the
    // refusal, its cursor would skip the second's records for good (no
    // anti-entropy here): B would never hold them.
    wait_for("B to hold every record", WAIT, || count(&b.store) == 2_000).await;
    let refused = b
        .applies
        .lock()
        .unwrap()
        .iter()
        .filter(|a| **a == spy::Apply::Blocking)
        .count();
    assert!(
        refused > 2,
        "the refused chunk was asked again: {refused} merges"
    );
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_store_could_not_write_does_not_get_the_peer_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A refusal keeps the two apart for a minute, as by default: longer
    // than this test waits.
    let (_a, b, nodes) = pair(dir.path(), 2_000, Duration::from_secs(60), |b| {
        // B's store cannot write the second chunk (its file busy, say).
        *b.refuse.lock().unwrap() = Some((1, spy::Fault::Local));
    })
    .await;
    let (a_node, b_node) = (&nodes[0], &nodes[1]);
    let (a_id, b_id) = (a_node.peer_id(), b_node.peer_id());
    wait_for("B to fail to write a chunk", WAIT, || {
        b_node
            .peer(&a_id)
            .and_then(|s| s.last_error)
            .is_some_and(|e| e.contains("could not merge"))
    })
    .await;
    // After a short pause B asks again from the chunk it could not write.
    wait_for("B to hold every record", WAIT, || count(&b.store) == 2_000).await;
    let refused = |node: &shoal::Node, peer| {
        node.peer(peer)
            .is_some_and(|s| matches!(s.state, PeerState::Rejected { .. }))
    };
    assert!(!refused(a_node, &b_id), "A was told it misbehaved");
    assert!(!refused(b_node, &a_id), "B refused A for its own failure");
    for node in nodes {
        node.shutdown().await;
    }
}
