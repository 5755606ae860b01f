//! Records bigger than a frame, over real nodes on loopback: written with
//! ordinary writes — a map whose entries were added and removed nine times
//! over (a tiny record carrying ~63,000 tombstones), and a live map of
//! 120,000 short keys — each alone makes more than a frame (8 MiB) of
//! changes. They cross by catch-up, by pull, by push and by anti-entropy, in
//! parts, and sync goes on: a record written after them arrives too.

use crate::common;

use common::*;
use serde_json::{Map, Value, json};
use shoal::{RecordId, Store, Transfer};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(300);

/// A map field whose 7,000 entries of ~120-byte keys are added then removed,
/// nine rounds over: ~10 MB of changes for a record that shows `{"m":{}}`.
fn write_tombstones(store: &Store, collection: &str, id: &str) {
    let c = store.collection(collection).unwrap();
    c.map_set(id, "m", "seed", json!(1)).unwrap();
    for round in 0..9 {
        let entries: Map<String, Value> = (0..7000)
            .map(|i| (format!("{round}-{i:05}-{}", "k".repeat(112)), json!(1)))
            .collect();
        c.put(id, json!({ "m": entries })).unwrap();
        c.put(id, json!({ "m": {} })).unwrap();
    }
}

/// A live map of 120,000 three-character keys (960 KB of JSON, under the
/// 1 MiB record cap), in a record whose collection and id names are long.
fn write_wide_map(store: &Store, collection: &str, id: &str) {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let key = |n: usize| {
        let d = |k: usize| DIGITS[k % 62] as char;
        [d(n / 3844), d(n / 62), d(n)].iter().collect::<String>()
    };
    let entries: Map<String, Value> = (0..120_000).map(|n| (key(n), json!(1))).collect();
    let c = store.collection(collection).unwrap();
    c.map_set(id, "m", "000", json!(1)).unwrap();
    c.put(id, json!({ "m": entries })).unwrap();
}

const WIDE: &str = "inventory-of-every-single-thing-in-the-house";
const WIDE_ID: &str = "map-record-with-a-rather-long-identifier-0001";

/// Every slot of a record, as a comparable list (positions left out).
fn slots(store: &Store, collection: &str, id: &str) -> Option<Vec<String>> {
    store
        .record_changes(collection, id)
        .unwrap()
        .map(|changes| {
            changes
                .iter()
                .map(|c| format!("{:?} {:?} {} {}", c.slot, c.value, c.clock, c.life))
                .collect()
        })
}

/// Waits until `b` holds exactly `a`'s record (polled gently: reading a
/// record this big is not free, and it shares the store with the sync).
async fn same_record(a: &Store, b: &Store, collection: &str, id: &str) {
    let want = slots(a, collection, id).expect("the record is on the writer");
    let start = std::time::Instant::now();
    loop {
        let held = slots(b, collection, id);
        if held.as_ref() == Some(&want) {
            return;
        }
        let count = held.map_or(0, |h| h.len());
        assert!(
            start.elapsed() < LIMIT,
            "{collection}/{id}: {count} of {} slots arrived in {LIMIT:?}",
            want.len()
        );
        eprintln!("{collection}/{id}: {count} of {} slots", want.len());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_bigger_than_a_frame_cross_by_catch_up_and_sync_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    write_tombstones(&a.store, "lists", "churned");
    write_wide_map(&a.store, WIDE, WIDE_ID);
    assert_eq!(
        a.store.collection("lists").unwrap().get("churned").unwrap(),
        Some(json!({"m": {}}).as_object().unwrap().clone())
    );
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    same_record(&a.store, &b.store, "lists", "churned").await;
    same_record(&a.store, &b.store, WIDE, WIDE_ID).await;
    // Sync goes on: an unrelated record written afterwards arrives.
    a.store
        .collection("notes")
        .unwrap()
        .put("after", json!({"n": 1}))
        .unwrap();
    wait_for("the record written afterwards", LIMIT, || {
        b.store
            .collection("notes")
            .unwrap()
            .get("after")
            .unwrap()
            .is_some()
    })
    .await;
}

/// Two nodes with `auto_sync` off: records move only when asked.
async fn manual_pair(dir: &Path) -> (Peer, Peer) {
    let manual = |c: &mut shoal::NodeConfig| {
        c.auto_sync = false;
        c.anti_entropy = None;
    };
    let a = start_with(
        Store::open(dir.join("a.db")).unwrap(),
        group_key(),
        vec![],
        manual,
    )
    .await;
    let b = start_with(
        Store::open(dir.join("b.db")).unwrap(),
        group_key(),
        vec![a.address.clone()],
        manual,
    )
    .await;
    connected(&a, &b, LIMIT).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_bigger_than_a_frame_cross_by_pull_push_and_anti_entropy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = manual_pair(dir.path()).await;
    write_tombstones(&a.store, "lists", "churned");
    write_wide_map(&b.store, WIDE, WIDE_ID);
    let a_id = a.node.peer_id();
    let (lists, churned) = (shoal::CollectionName::new("lists").unwrap(), rid("churned"));
    let (wide, wide_id) = (shoal::CollectionName::new(WIDE).unwrap(), rid(WIDE_ID));

    // Pull: B fetches A's record in parts and merges each.
    assert_eq!(
        b.node.pull_record(a_id, &lists, &churned).await,
        Transfer::Merged
    );
    assert_eq!(
        slots(&b.store, "lists", "churned"),
        slots(&a.store, "lists", "churned")
    );
    assert_eq!(
        b.node.pull_record(a_id, &lists, &churned).await,
        Transfer::AlreadyInSync
    );
    // The peer's state as the sync details view reads it, whole.
    let theirs = b.node.peer_record(a_id, &lists, &churned).await.unwrap();
    assert_eq!(
        theirs.map(|c| c.len()),
        a.store
            .record_changes("lists", "churned")
            .unwrap()
            .map(|c| c.len())
    );

    // Push: B offers its wide map to A in parts.
    assert_eq!(
        b.node.push_record(a_id, &wide, &wide_id).await,
        Transfer::Merged
    );
    assert_eq!(
        slots(&a.store, WIDE, WIDE_ID),
        slots(&b.store, WIDE, WIDE_ID)
    );
    assert_eq!(
        b.node.push_record(a_id, &wide, &wide_id).await,
        Transfer::AlreadyInSync
    );

    // Anti-entropy: A's next big record reaches B by a reconciliation walk
    // and a fetch answered in parts.
    write_tombstones(&a.store, "lists", "churned-again");
    let levelled = b.node.level_with(a_id).await.expect("level");
    assert!(levelled.merged >= 1, "{levelled:?}");
    assert_eq!(
        slots(&b.store, "lists", "churned-again"),
        slots(&a.store, "lists", "churned-again")
    );
}

fn rid(s: &str) -> RecordId {
    RecordId::new(s).unwrap()
}
