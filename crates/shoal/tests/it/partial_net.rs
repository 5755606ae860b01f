//! Partial replicas over real nodes on loopback: a filtered peer holds
//! exactly the records its filter admits (counted against the sender's own
//! query) through catch-up and live pushes; a record moved out of the
//! filter leaves it (never as a delete: the sender keeps it) and comes back
//! whole when moved in again; a deleted record leaves; fetch, push and
//! the integrity report answer nothing outside the filter; a bad filter is
//! refused with its byte and changes nothing.

use crate::common;

use common::{connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{CollectionName, Query, RecordId, Store};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn ids(store: &Store, collection: &str, query: Query) -> BTreeSet<String> {
    store
        .collection(collection)
        .expect("collection")
        .query(&query.limit(shoal::MAX_QUERY_LIMIT))
        .expect("query")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect()
}

fn owner(store: &Store, id: &str) -> Option<String> {
    let record = store.collection("notes").ok()?.get(id).ok()??;
    record.get("owner")?.as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_peer_holds_exactly_what_its_filter_admits_by_every_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    // Bad input: named byte, nothing set.
    let bad = b_store
        .set_partial_filter("notes", Some("owner = bo"))
        .expect_err("bare word refused");
    assert!(bad.to_string().contains("byte 8"), "{bad}");
    assert!(b_store.partial_filters().expect("filters").is_empty());
    b_store
        .set_partial_filter("notes", Some(r#"owner = "bo" and n >= 0"#))
        .expect("filter");

    let notes = a_store.collection("notes").expect("notes");
    for n in 0..200 {
        let who = if n % 10 == 0 { "bo" } else { "al" };
        notes
            .put(
                &format!("n{n}"),
                json!({"owner": who, "n": n, "title": format!("note {n}")}),
            )
            .expect("put");
    }
    // A deleted "bo" record, and an unfiltered collection taken whole.
    notes
        .put("gone", json!({"owner": "bo", "n": 1}))
        .expect("put");
    notes.delete("gone").expect("delete");
    for n in 0..5 {
        a_store
            .collection("other")
            .expect("other")
            .put(&format!("o{n}"), json!({"owner": "al"}))
            .expect("put");
    }
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;

    let bo = || Query::new().eq("owner", json!("bo"));
    let expected = ids(&a.store, "notes", bo());
    assert_eq!(expected.len(), 20);
    wait_for("catch-up of the matching records", WAIT, || {
        ids(&b.store, "notes", Query::new()) == expected
            && ids(&b.store, "other", Query::new()).len() == 5
    })
    .await;

    // Live pushes: a non-matching write, then a matching one; pushes keep
    // log order, so once the second is here the first was passed over.
    let a_notes = a.store.collection("notes").expect("notes");
    a_notes
        .put("late-al", json!({"owner": "al", "n": 1}))
        .expect("put");
    a_notes
        .put("late-bo", json!({"owner": "bo", "n": 2}))
        .expect("put");
    wait_for("the matching live write", WAIT, || {
        owner(&b.store, "late-bo").is_some()
    })
    .await;
    assert!(
        owner(&b.store, "late-al").is_none(),
        "a non-matching push leaked"
    );
    assert_eq!(
        ids(&b.store, "notes", Query::new()),
        ids(&a.store, "notes", bo())
    );

    // Out of the filter: B drops it; A (the sender) keeps it — no delete
    // went anywhere.
    a_notes
        .patch("n0", json!({"owner": "al"}))
        .expect("move out");
    wait_for("n0 to leave B", WAIT, || owner(&b.store, "n0").is_none()).await;
    assert_eq!(owner(&a.store, "n0").as_deref(), Some("al"));
    // Back in: it arrives whole, fields written long before included.
    a_notes
        .patch("n0", json!({"owner": "bo"}))
        .expect("move in");
    wait_for("n0 to come back", WAIT, || owner(&b.store, "n0").is_some()).await;
    let back = b
        .store
        .collection("notes")
        .unwrap()
        .get("n0")
        .unwrap()
        .unwrap();
    assert_eq!(back.get("title"), Some(&json!("note 0")), "came back whole");
    // A matching record deleted on A leaves B.
    a_notes.delete("n10").expect("delete");
    wait_for("a deleted record to leave B", WAIT, || {
        owner(&b.store, "n10").is_none()
    })
    .await;
    // Partial on the filter's second clause too.
    a_notes
        .patch("n20", json!({"n": -1}))
        .expect("move out by n");
    wait_for("n20 to leave B", WAIT, || owner(&b.store, "n20").is_none()).await;
    let expected: BTreeSet<String> = ids(&a.store, "notes", bo())
        .into_iter()
        .filter(|id| id != "n20")
        .collect();
    wait_for("B to hold exactly the matching set", WAIT, || {
        ids(&b.store, "notes", Query::new()) == expected
    })
    .await;

    // A write on the partial replica flows to the full peer.
    b.store
        .collection("notes")
        .unwrap()
        .put("from-b", json!({"owner": "bo", "n": 3}))
        .expect("put on b");
    wait_for("B's write to reach A", WAIT, || {
        owner(&a.store, "from-b").is_some()
    })
    .await;
    // Nothing B dropped was deleted on A.
    for id in ["n0", "n20", "late-al", "n1"] {
        assert!(owner(&a.store, id).is_some(), "{id} lost on the full peer");
    }

    // Per-record paths: a pull of a record outside the filter answers as
    // if A never had it; a push from A is refused before it is sent;
    // the integrity report compares only what the filter admits.
    let (pa, pb) = (a.node.peer_id(), b.node.peer_id());
    let notes_name = CollectionName::new("notes").unwrap();
    let t = b
        .node
        .pull_record(pa, &notes_name, &RecordId::new("n1").unwrap())
        .await;
    assert_eq!(t, shoal::Transfer::PeerDoesNotHaveIt, "{t}");
    assert!(owner(&b.store, "n1").is_none());
    let t = a
        .node
        .push_record(pb, &notes_name, &RecordId::new("n2").unwrap())
        .await;
    assert!(!t.is_success(), "push outside the filter: {t}");
    assert!(owner(&b.store, "n2").is_none());
    let t = b
        .node
        .pull_record(pa, &notes_name, &RecordId::new("n30").unwrap())
        .await;
    assert!(t.is_success(), "a matching record can be pulled: {t}");
    // The integrity report covers the filtered collection: only what the
    // filter admits, and here in sync (partial_report.rs tests it in full).
    let report = b.node.reconcile(pa, &notes_name).await.expect("report");
    assert_eq!(report.outcome.counts.total(), 0, "{:?}", report.outcome);
    // A's "bo" notes but n20, whose n < 0 left the filter.
    assert_eq!(
        report.filtered.expect("filtered").peer_admitted,
        ids(&a.store, "notes", bo()).len() as u64 - 1
    );
    assert_eq!(
        ids(&b.store, "notes", Query::new()).len(),
        expected.len() + 1
    );
}
