//! The integrity report of a partial replica over real nodes on loopback
//! (issue 19 §2, `docs/partial.md`): for a collection the device filters,
//! it compares only the records the full peer's filter for it admits with
//! what the device holds — in sync it counts exactly the matching records
//! (against the full side's own query), a difference inside the filter is
//! reported and repaired by the ordinary pull, records outside it are never
//! listed nor counted; a peer too old for the listing makes the report say
//! "not covered"; the full side's report against the partial device
//! compares the same subset; and a read-only partial device gets exactly its subset
//! and gives nothing.

use crate::common;

use common::{connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::devices::{DeviceRole, OwnerKey};
use shoal::{
    CollectionName, Feature, FeatureSet, FedError, Offer, PeerId, Query, RecordId, Refusal, Status,
    Store,
};
use shoal_core::recon::ReconLimits;
use shoal_core::sync::federation::{MAX_FILTERED_ITEMS, Request, Response};
use shoal_net::Replica;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const FILTER: &str = r#"owner = "bo""#;

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

fn bo() -> Query {
    Query::new().eq("owner", json!("bo"))
}

fn notes() -> CollectionName {
    CollectionName::new("notes").unwrap()
}

/// `n` notes, one in ten owned by "bo"; a deleted "bo" note; an
/// unfiltered collection.
fn fill(store: &Store, n: usize) {
    let notes = store.collection("notes").expect("notes");
    for i in 0..n {
        let who = if i % 10 == 0 { "bo" } else { "al" };
        notes
            .put(&format!("n{i:04}"), json!({"owner": who, "n": i}))
            .expect("put");
    }
    notes
        .put("gone", json!({"owner": "bo", "n": -1}))
        .expect("put");
    notes.delete("gone").expect("delete");
    for i in 0..5 {
        store
            .collection("other")
            .expect("other")
            .put(&format!("o{i}"), json!({"owner": "al"}))
            .expect("put");
    }
}

/// Every record the full side's listing names for `peer`, page by page,
/// as the store answers it.
fn listing(full: &Store, peer: &PeerId, collection: &CollectionName) -> Vec<String> {
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let request = Request::Filtered {
            collection: collection.clone(),
            after: after.clone(),
        };
        let Response::Filtered { items, next } = full.serve(peer, request, &ReconLimits::default())
        else {
            panic!("not a listing");
        };
        assert!(items.len() <= MAX_FILTERED_ITEMS);
        out.extend(items.into_iter().map(|i| i.id.to_string()));
        match next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_filtered_collection_covers_exactly_what_the_filter_admits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    b_store
        .set_partial_filter("notes", Some(FILTER))
        .expect("filter");
    // 5,000 notes: the listing takes several pages (≤ 4,096 rows read each).
    fill(&a_store, 5000);
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;
    let (pa, pb) = (a.node.peer_id(), b.node.peer_id());
    let expected = ids(&a.store, "notes", bo());
    assert_eq!(expected.len(), 500);
    wait_for("catch-up of the matching records", WAIT, || {
        ids(&b.store, "notes", Query::new()) == expected
            && ids(&b.store, "other", Query::new()).len() == 5
    })
    .await;

    // In sync: no difference, and exactly the matching records compared.
    let found = b.node.reconcile(pa, &notes()).await.expect("report");
    assert_eq!(found.outcome.counts.total(), 0, "{:?}", found.outcome);
    let counts = found.filtered.expect("a filtered report");
    assert_eq!(counts.peer_admitted, expected.len() as u64);
    assert_eq!(counts.local_admitted, expected.len() as u64);
    assert!(
        found.outcome.round_trips >= 2,
        "{}",
        found.outcome.round_trips
    );
    // The full side's report against the partial device compares the
    // same subset (not the records the device never takes).
    let back = a.node.reconcile(pb, &notes()).await.expect("report");
    assert_eq!(back.outcome.counts.total(), 0, "{:?}", back.outcome);
    let counts = back.filtered.expect("a filtered report");
    assert_eq!(counts.peer_admitted, expected.len() as u64);
    assert_eq!(counts.local_admitted, expected.len() as u64);
    // The unfiltered collection is walked as before.
    let other = b
        .node
        .reconcile(pa, &CollectionName::new("other").unwrap())
        .await
        .expect("walk");
    assert!(other.filtered.is_none());
    assert_eq!(other.outcome.counts.total(), 0);

    // What the full side hands over is only what the filter admits — never
    // a record outside it, never the deleted one.
    let listed = listing(&a.store, &pb, &notes());
    assert_eq!(
        listed.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the listing named records outside the filter"
    );
    assert_eq!(listed.len(), expected.len(), "a record listed twice");
    // Bad requests: a collection not filtered for the peer, a peer with no
    // filter at all.
    let unfiltered = Request::Filtered {
        collection: CollectionName::new("other").unwrap(),
        after: None,
    };
    assert_eq!(
        a.store.serve(&pb, unfiltered, &ReconLimits::default()),
        Response::Refused(Refusal::BadRequest)
    );
    let not_partial = Request::Filtered {
        collection: CollectionName::new("other").unwrap(),
        after: None,
    };
    assert_eq!(
        b.store.serve(&pa, not_partial, &ReconLimits::default()),
        Response::Refused(Refusal::BadRequest)
    );
    // The partial device lists every live record it holds to a full peer.
    let held = listing(&b.store, &pa, &notes());
    assert_eq!(held.into_iter().collect::<BTreeSet<_>>(), expected);
    b.node.shutdown().await;
    a.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_difference_inside_the_filter_is_reported_and_pulled_one_outside_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    b_store
        .set_partial_filter("notes", Some(FILTER))
        .expect("filter");
    fill(&a_store, 100);
    // Records move only by explicit pull: the report sees the replicas as
    // they stand.
    let a = start_with(a_store, group_key(), vec![], |c| c.auto_sync = false).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |c| {
        c.auto_sync = false
    })
    .await;
    connected(&a, &b, WAIT).await;
    let pa = a.node.peer_id();
    let expected = ids(&a.store, "notes", bo());
    assert_eq!(expected.len(), 10);

    // B holds nothing yet: every matching record is peer-only, and only those.
    let found = b.node.reconcile(pa, &notes()).await.expect("report");
    let peer_only: BTreeSet<String> = found
        .outcome
        .differences
        .iter()
        .filter(|d| d.status() == Some(Status::PeerOnly))
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(peer_only, expected);
    assert_eq!(
        found.outcome.counts.total(),
        10,
        "{:?}",
        found.outcome.counts
    );
    // Repaired through the ordinary fetch.
    for id in &expected {
        let t = b
            .node
            .pull_record(pa, &notes(), &RecordId::new(id.clone()).unwrap())
            .await;
        assert!(t.is_success(), "{id}: {t}");
    }
    let found = b.node.reconcile(pa, &notes()).await.expect("report");
    assert_eq!(found.outcome.counts.total(), 0, "{:?}", found.outcome);
    assert_eq!(found.filtered.unwrap().local_admitted, 10);
    let back = a
        .node
        .reconcile(b.node.peer_id(), &notes())
        .await
        .expect("report");
    assert_eq!(back.outcome.counts.total(), 0, "{:?}", back.outcome);

    // Changes on the full side while nothing flows: a matching record
    // changed (diverged), a new matching one (peer-only), one that left
    // the filter (B's copy is local-only: it should have left), and
    // records outside the filter (never counted).
    let a_notes = a.store.collection("notes").unwrap();
    a_notes.patch("n0010", json!({"title": "new"})).unwrap();
    a_notes
        .put("late-bo", json!({"owner": "bo", "n": 1000}))
        .unwrap();
    a_notes.patch("n0020", json!({"owner": "al"})).unwrap();
    a_notes
        .put("late-al", json!({"owner": "al", "n": 1001}))
        .unwrap();
    a_notes.patch("n0001", json!({"title": "al's"})).unwrap();
    let found = b.node.reconcile(pa, &notes()).await.expect("report");
    let statuses: BTreeMap<String, Option<Status>> = found
        .outcome
        .differences
        .iter()
        .map(|d| (d.id.to_string(), d.status()))
        .collect();
    assert_eq!(
        statuses,
        BTreeMap::from([
            ("late-bo".to_string(), Some(Status::PeerOnly)),
            ("n0010".to_string(), Some(Status::Diverged)),
            ("n0020".to_string(), Some(Status::LocalOnly)),
        ])
    );
    let counts = found.filtered.unwrap();
    assert_eq!(
        counts.peer_admitted,
        ids(&a.store, "notes", bo()).len() as u64
    );
    assert_eq!(counts.local_admitted, 10);
    // The pull repairs what the peer holds more of.
    for id in ["late-bo", "n0010"] {
        let t = b
            .node
            .pull_record(pa, &notes(), &RecordId::new(id).unwrap())
            .await;
        assert!(t.is_success(), "{id}: {t}");
    }
    let found = b.node.reconcile(pa, &notes()).await.expect("report");
    assert_eq!(found.outcome.counts.local_only, 1);
    assert_eq!(found.outcome.counts.total(), 1, "{:?}", found.outcome);
    // Seen from the full side, B holds a state of it A has moved on from.
    let back = a
        .node
        .reconcile(b.node.peer_id(), &notes())
        .await
        .expect("report");
    let differing: Vec<_> = back
        .outcome
        .differences
        .iter()
        .map(|d| (d.id.to_string(), d.status()))
        .collect();
    assert_eq!(
        differing,
        vec![("n0020".to_string(), Some(Status::Diverged))]
    );
    // Nothing outside the filter reached B.
    assert!(ids(&b.store, "notes", Query::new()).iter().all(|id| {
        a.store
            .collection("notes")
            .unwrap()
            .get(id)
            .unwrap()
            .is_some_and(|r| r.get("owner") == Some(&json!("bo")) || id == "n0020")
    }));
    b.node.shutdown().await;
    a.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_too_old_for_the_filtered_report_leaves_it_not_covered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    b_store
        .set_partial_filter("notes", Some(FILTER))
        .expect("filter");
    fill(&a_store, 50);
    let old = Offer {
        features: Feature::ALL
            .iter()
            .filter(|f| **f != Feature::FilteredReport)
            .fold(FeatureSet::NONE, |s, f| s.with(*f)),
        ..Offer::current()
    };
    let a = start_with(a_store, group_key(), vec![], |c| c.sync.offer = old).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;
    wait_for("catch-up of the matching records", WAIT, || {
        ids(&b.store, "notes", Query::new()) == ids(&a.store, "notes", bo())
    })
    .await;
    let refused = b
        .node
        .reconcile(a.node.peer_id(), &notes())
        .await
        .expect_err("not covered");
    assert_eq!(refused, FedError::PeerTooOld(Feature::FilteredReport));
    assert!(
        refused.to_string().starts_with("not covered: "),
        "{refused}"
    );
    // Unfiltered collections are still reported.
    let other = b
        .node
        .reconcile(a.node.peer_id(), &CollectionName::new("other").unwrap())
        .await
        .expect("walk");
    assert_eq!(other.outcome.counts.total(), 0);
    b.node.shutdown().await;
    a.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_partial_device_gets_exactly_its_subset_and_gives_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    b_store
        .set_partial_filter("notes", Some(FILTER))
        .expect("filter");
    fill(&a_store, 200);
    // A is the owner; B is admitted read-only before it ever connects.
    let owner = OwnerKey::from_seed([7; 32]);
    a_store.make_owner(&owner, &[]).expect("owner");
    let pb: PeerId = b_store.peer_id().parse().expect("peer id");
    a_store
        .admit_device(&owner, &pb, DeviceRole::ReadOnly, BTreeMap::new(), "kiosk")
        .expect("admit read-only");
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;
    let pa = a.node.peer_id();
    let expected = ids(&a.store, "notes", bo());
    wait_for(
        "the read-only device to hold exactly its subset",
        WAIT,
        || {
            ids(&b.store, "notes", Query::new()) == expected
                && ids(&b.store, "other", Query::new()).len() == 5
        },
    )
    .await;
    // It learns its role by sync; then its local writes are refused.
    wait_for("the device to learn it is read-only", WAIT, || {
        b.store.devices().is_ok_and(|d| {
            d.devices
                .iter()
                .any(|e| e.peer == pb.to_string() && e.role.as_deref() == Some("read-only"))
        })
    })
    .await;
    let mut refused = None;
    wait_for("a local write to be refused", WAIT, || {
        match b
            .store
            .collection("notes")
            .unwrap()
            .put("from-b", json!({"owner": "bo"}))
        {
            Err(e) => {
                refused = Some(e.to_string());
                true
            }
            Ok(_) => false,
        }
    })
    .await;
    let refused = refused.unwrap();
    assert!(refused.contains("read-only"), "{refused}");
    // Its report covers the filtered collection like any partial device's.
    let found = b.node.reconcile(pa, &notes()).await.expect("report");
    assert_eq!(found.outcome.counts.total(), 0, "{:?}", found.outcome);
    assert_eq!(found.filtered.unwrap().peer_admitted, expected.len() as u64);
    // Members accept nothing from it: an offered record is refused.
    let held = expected.iter().next().unwrap().clone();
    let t = b
        .node
        .push_record(pa, &notes(), &RecordId::new(held).unwrap())
        .await;
    assert!(
        !t.is_success(),
        "a member took a read-only device's offer: {t}"
    );
    // And it keeps receiving exactly the subset.
    a.store
        .collection("notes")
        .unwrap()
        .put("late-bo", json!({"owner": "bo"}))
        .unwrap();
    a.store
        .collection("notes")
        .unwrap()
        .put("late-al", json!({"owner": "al"}))
        .unwrap();
    wait_for("the matching live write", WAIT, || {
        ids(&b.store, "notes", Query::new()) == ids(&a.store, "notes", bo())
    })
    .await;
    assert!(!ids(&b.store, "notes", Query::new()).contains("late-al"));
    assert!(!ids(&a.store, "notes", Query::new()).contains("from-b"));
    b.node.shutdown().await;
    a.node.shutdown().await;
}
