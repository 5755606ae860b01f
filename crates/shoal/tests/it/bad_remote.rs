//! Remote batches with one bad change — a clock too far ahead, a field written
//! in a deleted life, a life change carrying a value, life 0, an oversized
//! value, a life past the bound — are refused whole, with a named error, and
//! change nothing; a life at the bound is taken, but no local write goes past it.

use crate::refusal;

use refusal::*;
use serde_json::json;
use shoal::{Change, DbVersion, Store};
use shoal_core::{CanonicalJson, CoreError, Hlc, Life, Slot};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Changes written on another replica: two records, one with a map field.
fn remote_changes(dir: &Path) -> Vec<Change> {
    let other = Store::open(dir.join("other.db")).unwrap();
    let tasks = other.collection("tasks").unwrap();
    tasks.put("r1", json!({"title": "remote", "n": 7})).unwrap();
    tasks.put("r2", json!({"title": "second"})).unwrap();
    tasks.map_set("r2", "tags", "blue", json!(true)).unwrap();
    other
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn field_change(changes: &[Change]) -> Change {
    changes
        .iter()
        .find(|c| matches!(c.slot, Slot::Field(_)))
        .unwrap()
        .clone()
}

fn check_batch_refused(
    store: &Store,
    good: &[Change],
    bad: Change,
    what: &str,
    check: impl Fn(&CoreError) -> bool,
) {
    // The bad change last, first, and alone: the whole batch is refused.
    let mut last = good.to_vec();
    last.push(bad.clone());
    let mut first = vec![bad.clone()];
    first.extend_from_slice(good);
    for batch in [last, first, vec![bad]] {
        let err = refused(store, what, || store.apply(&batch));
        assert!(is_core(&err, &check), "{what}: {err:?}");
    }
}

#[test]
fn remote_batches_with_a_bad_change_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let good = remote_changes(dir.path());
    let malformed = |reason: &'static str| move |e: &CoreError| matches!(e, CoreError::MalformedChange { reason: r, .. } if *r == reason);

    let mut future = field_change(&good);
    future.clock.hlc = Hlc::new(now_ms() + 3_600_000, 0);
    check_batch_refused(&store, &good, future, "clock 1 h ahead", |e| {
        matches!(e, CoreError::ClockTooFarAhead { ahead_ms, max_drift_ms, .. }
            if *ahead_ms > 3_500_000 && *max_drift_ms < *ahead_ms)
    });

    let mut dead_life = field_change(&good);
    dead_life.life = Life(2);
    check_batch_refused(
        &store,
        &good,
        dead_life,
        "field in an even life",
        malformed("field written in a deleted life"),
    );

    let mut life_with_value = good
        .iter()
        .find(|c| matches!(c.slot, Slot::Life))
        .unwrap()
        .clone();
    life_with_value.value = Some(CanonicalJson::from_value(&json!(1)));
    check_batch_refused(
        &store,
        &good,
        life_with_value,
        "life change with a value",
        malformed("a life change carries no value"),
    );

    let mut life_zero = field_change(&good);
    life_zero.life = Life(0);
    check_batch_refused(
        &store,
        &good,
        life_zero,
        "change in life 0",
        malformed("life 0 is never written"),
    );

    // A life no record reaches: a local delete of it must not overflow.
    let mut huge_life = field_change(&good);
    huge_life.life = Life(u64::MAX);
    check_batch_refused(
        &store,
        &good,
        huge_life,
        "change in life u64::MAX",
        malformed("life beyond any real record's"),
    );

    let mut big = field_change(&good);
    big.value = Some(CanonicalJson::from_value(&json!("x".repeat(2 * CAP))));
    check_batch_refused(&store, &good, big, "value over the cap", |e| {
        matches!(e, CoreError::ValueTooLarge { cap: CAP, .. })
    });

    // The refused future clock was not absorbed: a local write now is stamped
    // with the present, not an hour ahead.
    let before = store.db_version();
    store
        .collection("tasks")
        .unwrap()
        .patch("t1", json!({"n": 2}))
        .unwrap();
    for change in store.changes_since(before) {
        let change = change.unwrap();
        assert!(
            change.clock.hlc.wall_ms() < now_ms() + 60_000,
            "local clock jumped ahead: {}",
            change.clock
        );
    }

    // The good changes on their own are accepted.
    let report = store.apply(&good).unwrap();
    assert_eq!(report.applied, good.len());
    let tasks = store.collection("tasks").unwrap();
    assert_eq!(tasks.get("r1").unwrap().unwrap()["n"], 7);
    assert_eq!(
        tasks.get("r2").unwrap().unwrap()["tags"],
        json!({"blue": true})
    );
}

#[test]
fn a_life_at_the_bound_is_taken_but_never_exceeded_locally() {
    // A peer's life exactly at Life::MAX is valid; a local write must then
    // not start a life past it (every peer would refuse that change).
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let good = remote_changes(dir.path());
    let mut at_bound = good
        .iter()
        .find(|c| matches!(c.slot, Slot::Life) && c.id.as_str() == "r1")
        .unwrap()
        .clone();
    at_bound.life = Life::MAX; // even: deleted
    store.apply(&[at_bound]).unwrap();
    let tasks = store.collection("tasks").unwrap();
    assert!(tasks.get("r1").unwrap().is_none());
    let err = refused(&store, "re-create past the bound", || {
        tasks.put("r1", json!({"n": 1}))
    });
    assert!(
        is_core(&err, |e| matches!(e, CoreError::LifeExhausted)),
        "{err:?}"
    );
    // Every change the store holds is one a peer accepts.
    let held: Vec<Change> = store
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap();
    fixture(&dir.path().join("b.db")).apply(&held).unwrap();
}
