//! Records that age out of a time-relative partial filter leave the device
//! (issue 19 §2), over real nodes on loopback: a device filtering
//! `date >= now-5s` takes records dated "now" from a full peer; once the
//! window passes, with no change to the records anywhere, the node's own
//! periodic sweep drops them — locally, so the full peer still holds every
//! one, alive — while a record still inside the window stays. A device
//! whose sweep is off still holds them past the window (what happened
//! before the sweep) until the library call does the same.

use crate::common;

use common::{connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{Query, Store};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(5);
const FILTER: &str = "date >= now-5s";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn ids(store: &Store) -> BTreeSet<String> {
    store
        .collection("events")
        .expect("events")
        .query(&Query::new().limit(shoal::MAX_QUERY_LIMIT))
        .expect("query")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_age_out_of_a_now_filter_leave_the_device_and_stay_on_the_full_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let c_store = Store::open(dir.path().join("c.db")).expect("open c");
    for device in [&b_store, &c_store] {
        device
            .set_partial_filter("events", Some(FILTER))
            .expect("filter");
    }
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    // B sweeps on the node's own timer (short for the test); C never does.
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |c| {
        c.age_out = Some(Duration::from_millis(300))
    })
    .await;
    let c = start_with(c_store, group_key(), vec![a.address.clone()], |c| {
        c.age_out = None
    })
    .await;
    connected(&a, &b, WAIT).await;
    connected(&a, &c, WAIT).await;
    // Written once the sessions run, so live pushes carry them well inside
    // the window even on a loaded machine.
    let events = a.store.collection("events").expect("events");
    let written = now_ms();
    for n in 0..20 {
        events
            .put(&format!("e{n:02}"), json!({"date": written, "n": n}))
            .expect("put");
    }
    // Dated an hour ahead: inside the window for the whole test.
    events
        .put("later", json!({"date": written + 3_600_000}))
        .expect("put");
    let all = ids(&a.store);
    assert_eq!(all.len(), 21);
    wait_for("both devices to take every record", WAIT, || {
        ids(&b.store) == all && ids(&c.store) == all
    })
    .await;
    assert!(
        now_ms() < written + WINDOW.as_millis() as u64,
        "caught up inside the window (else the test proves nothing)"
    );

    // Nothing changes anywhere; the window passes.
    let later: BTreeSet<String> = ["later".to_string()].into();
    wait_for("B's sweep to drop the aged-out records", WAIT, || {
        ids(&b.store) == later
    })
    .await;
    assert!(
        now_ms() >= written + WINDOW.as_millis() as u64,
        "nothing left before the window passed"
    );
    // The full peer still holds every record, alive (a drop is no delete).
    assert_eq!(ids(&a.store), all);
    assert_eq!(a.store.tombstones().expect("tombstones").held, 0);
    // Without a sweep the device keeps them (no peer names them in a Leave:
    // they never changed) ...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ids(&c.store), all, "C's sweep is off");
    // ... until the library call sweeps.
    assert_eq!(c.store.age_out_partial().expect("sweep"), 20);
    assert_eq!(ids(&c.store), later);
    // Nothing comes back, and the full peer is unchanged.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ids(&b.store), later);
    assert_eq!(ids(&c.store), later);
    assert_eq!(ids(&a.store), all);
    b.node.shutdown().await;
    c.node.shutdown().await;
    a.node.shutdown().await;
}
