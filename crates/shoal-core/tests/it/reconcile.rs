//! Integration tests for `shoal_core::recon`, the range-based set
//! reconciliation over the fixed 16-ary hash tree.
//!
//! An in-memory [`ReconView`] (`MemView`) stands in for the store, and a driver
//! runs the initiator ([`Reconciler`]) against the stateless responder
//! ([`respond`]), counting requests and postcard-encoded bytes. Checked:
//!
//! - correctness: for random pairs of replicas (records absent, alive, deleted
//!   or missing assets on either side), in both directions, with message
//!   budgets small enough to force partial answers and every listing
//!   threshold, the reported differences are exactly the brute-force ones,
//!   with the same counts per `Status`, and `round_trips` counts the requests;
//! - cost: equal replicas settle in one round trip; one change among 100,000
//!   records takes at most 4 round trips and under 2 KB; 100 changes take under
//!   64 KB; an empty replica against 5,000 records gets them all listed while
//!   every message stays within its budget;
//! - classification by [`Difference::status`];
//! - a responder that answers nothing is rejected with [`ReconError::BadAnswer`].

use crate::common;

use common::mem_view::{ALIVE, MemView, big, digest, flags, id, replica};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use shoal_core::RecordId;
use shoal_core::recon::Status::{AssetsMissing, Diverged, LocalOnly, PeerOnly};
use shoal_core::recon::{
    Difference, Entry, Fingerprint, Held, Item, Node, Outcome, ReconError, ReconLimits, ReconView,
    Reconciler, StatusCounts, respond,
};
use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::error::Error;

type TestResult = Result<(), Box<dyn Error>>;

/// What a reconciliation put on the wire (postcard-encoded entry lists).
#[derive(Debug, Default)]
struct Traffic {
    requests: u32,
    bytes: usize,
    /// The largest request or reply.
    largest: usize,
    /// Replies that answered only part of their request.
    partial: u32,
}

/// Runs `a` (initiator) against `b` (responder) to the end.
fn reconcile(
    a: &mut MemView,
    b: &mut MemView,
    limits: ReconLimits,
) -> Result<(Outcome, Traffic), Box<dyn Error>> {
    let reconciler = Reconciler::start(a, limits)?;
    run(reconciler, a, b, limits)
}

/// Drives `reconciler` (over `a`) against `b` to the end.
fn run(
    mut reconciler: Reconciler,
    a: &mut MemView,
    b: &mut MemView,
    limits: ReconLimits,
) -> Result<(Outcome, Traffic), Box<dyn Error>> {
    let mut traffic = Traffic::default();
    while let Some(request) = reconciler.next_request() {
        if reconciler.is_blind() {
            // Nothing about `a` crosses: only "list what you hold here".
            let about_me = |e: &Entry| !matches!(e, Entry::Items { items, .. } if items.is_empty());
            assert!(!request.iter().any(about_me), "{request:?}");
        }
        let wire: usize = request.iter().map(Entry::wire_size).sum();
        assert!(request.len() == 1 || wire <= limits.max_message_bytes);
        let (reply, answered) = respond(b, &request, &limits)?;
        let request_len = postcard::to_allocvec(&request)?.len();
        let reply_len = postcard::to_allocvec(&reply)?.len();
        traffic.requests += 1;
        traffic.bytes += request_len + reply_len;
        traffic.largest = traffic.largest.max(request_len).max(reply_len);
        traffic.partial += u32::from(answered < request.len());
        reconciler.receive(a, reply, answered)?;
    }
    assert!(reconciler.is_done());
    Ok((reconciler.finish(), traffic))
}

/// The brute-force differences of `local` against `remote`, by id.
fn expected(local: &MemView, remote: &MemView) -> Vec<Difference> {
    let (mine, theirs) = (local.held(), remote.held());
    let ids: BTreeSet<&RecordId> = mine.keys().chain(theirs.keys()).collect();
    ids.into_iter()
        .filter_map(|id| {
            let (local, remote) = (mine.get(id).copied(), theirs.get(id).copied());
            (local != remote).then(|| Difference {
                id: id.clone(),
                local,
                remote,
            })
        })
        .collect()
}

fn counts(differences: &[Difference]) -> StatusCounts {
    let statuses = differences.iter().filter_map(Difference::status);
    statuses.fold(StatusCounts::default(), |mut counts, s| {
        counts.count(s);
        counts
    })
}

fn by_id(mut differences: Vec<Difference>) -> Vec<Difference> {
    differences.sort_by(|x, y| x.id.cmp(&y.id));
    differences
}

/// Runs a reconciliation and checks it against brute force.
fn check(a: &mut MemView, b: &mut MemView, limits: ReconLimits) -> Result<Traffic, Box<dyn Error>> {
    let (outcome, traffic) = reconcile(a, b, limits)?;
    let want = expected(a, b);
    assert_eq!(by_id(outcome.differences), want, "limits {limits:?}");
    assert_eq!(outcome.counts, counts(&want), "limits {limits:?}");
    assert_eq!(outcome.dropped, 0);
    assert_eq!(outcome.round_trips, traffic.requests);
    Ok(traffic)
}

/// One side of a record: absent, or (version, alive, assets missing).
type Side = Option<(u64, bool, bool)>;

fn side() -> impl Strategy<Value = Side> {
    let held = (
        0u64..3,
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.2),
    );
    prop_oneof![1 => Just(None), 3 => held.prop_map(Some)]
}

/// Mostly equal on both sides, so whole subtrees match.
fn pair() -> impl Strategy<Value = (Side, Side)> {
    prop_oneof![3 => side().prop_map(|s| (s, s)), 1 => (side(), side())]
}

fn limits() -> impl Strategy<Value = ReconLimits> {
    let budget = prop::sample::select(vec![200usize, 1 << 20]);
    (prop::sample::select(vec![0u64, 1, 4]), 0u64..8, budget).prop_map(|(list, answer, bytes)| {
        ReconLimits {
            list_below: list,
            answer_list_below: answer,
            max_message_bytes: bytes,
            ..ReconLimits::default()
        }
    })
}

fn replicas(records: &[(Side, Side)]) -> (MemView, MemView) {
    let (mut a, mut b) = (MemView::default(), MemView::default());
    for (i, (here, there)) in records.iter().enumerate() {
        for (view, side) in [(&mut a, here), (&mut b, there)] {
            if let Some((version, alive, missing)) = *side {
                view.put(&id(i), version, flags(alive, missing));
            }
        }
    }
    (a, b)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // The default (next to lib.rs) cannot be found from an integration test.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/reconcile.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Runs a blind reconciliation (nothing of `a` sent) and checks it against
/// brute force.
fn check_blind(
    a: &mut MemView,
    b: &mut MemView,
    limits: ReconLimits,
) -> Result<Traffic, Box<dyn Error>> {
    let (outcome, traffic) = run(Reconciler::blind(limits), a, b, limits)?;
    let want = expected(a, b);
    assert_eq!(by_id(outcome.differences), want, "blind, limits {limits:?}");
    assert_eq!(outcome.counts, counts(&want), "blind, limits {limits:?}");
    assert_eq!(outcome.dropped, 0);
    Ok(traffic)
}

proptest! {
    #![proptest_config(config())]

    /// Reconciliation finds exactly the records that differ, either way round.
    #[test]
    fn finds_exactly_the_differences(
        records in prop::collection::vec(pair(), 0..300),
        limits in limits(),
    ) {
        let (mut a, mut b) = replicas(&records);
        let fail = |e: Box<dyn Error>| TestCaseError::fail(e.to_string());
        check(&mut a, &mut b, limits).map_err(fail)?;
        check(&mut b, &mut a, limits).map_err(fail)?;
    }

    /// A blind walk (a receive-only collection: nothing of ours is sent)
    /// finds the same differences.
    #[test]
    fn a_blind_walk_finds_exactly_the_differences(
        records in prop::collection::vec(pair(), 0..300),
        limits in limits(),
    ) {
        let (mut a, mut b) = replicas(&records);
        let fail = |e: Box<dyn Error>| TestCaseError::fail(e.to_string());
        check_blind(&mut a, &mut b, limits).map_err(fail)?;
        check_blind(&mut b, &mut a, limits).map_err(fail)?;
    }
}

#[test]
fn a_blind_walk_compares_a_crowded_node_child_by_child() -> TestResult {
    // Many records here, few there: the peer lists nodes where this side
    // holds more than it compares at once.
    let (mut a, mut b) = (replica(3_000), replica(40));
    b.put(&id(7), 1, ALIVE);
    b.put(&id(50_000), 0, ALIVE);
    let limits = ReconLimits {
        answer_list_below: 8,
        ..ReconLimits::default()
    };
    check_blind(&mut a, &mut b, limits)?;
    check_blind(&mut b, &mut a, limits)?;
    Ok(())
}

/// A walk that takes its differences after every step, as anti-entropy and
/// rejoin do (pulling them), with `max_differences` far below what one step
/// finds: every difference is found once, none dropped.
#[test]
fn a_walk_taking_its_differences_loses_none_past_the_cap() -> TestResult {
    let (mut a, mut b) = (replica(2_000), replica(2_000));
    (0..2_000).step_by(3).for_each(|i| b.put(&id(i), 1, ALIVE));
    (2_000..2_300).for_each(|i| b.put(&id(i), 0, ALIVE));
    let limits = ReconLimits {
        max_differences: 5,
        ..ReconLimits::default()
    };
    let mut walk = Reconciler::start(&mut a, limits)?;
    walk.keep_every_difference();
    let mut found = Vec::new();
    while let Some(request) = walk.next_request() {
        let (reply, answered) = respond(&mut b, &request, &limits)?;
        walk.receive(&mut a, reply, answered)?;
        let taken = walk.take_differences();
        // Bounded by the cap plus one listed node's records.
        assert!(taken.len() <= 5 + 256, "{}", taken.len());
        found.extend(taken);
    }
    assert_eq!(walk.outcome().dropped, 0);
    assert_eq!(by_id(found), expected(&a, &b));
    // Without it, the cap drops differences (only counted): what rejoin lost.
    let (outcome, _) = reconcile(&mut a, &mut b, limits)?;
    assert!(outcome.dropped > 0);
    Ok(())
}

/// A pulling walk from a replica far ahead of its peer (a node with records
/// meeting an empty one, as the catch-up benchmark's leader does) has
/// nothing to pull: its own records are counted, never listed, and the walk
/// takes the round trips a plain walk takes — it is not held up asking the
/// peer about them again and again (which made catch-up 5x slower).
#[test]
fn a_pulling_walk_ahead_of_its_peer_is_not_held_up_by_its_own_records() -> TestResult {
    let (mut a, mut b) = (replica(10_000), replica(0));
    let limits = ReconLimits {
        max_differences: 5,
        ..ReconLimits::default()
    };
    let (plain, _) = reconcile(&mut a, &mut b, limits)?;
    let mut walk = Reconciler::start(&mut a, limits)?;
    walk.keep_every_difference();
    let mut round_trips = 0;
    while let Some(request) = walk.next_request() {
        round_trips += 1;
        let (reply, answered) = respond(&mut b, &request, &limits)?;
        walk.receive(&mut a, reply, answered)?;
        assert!(walk.take_differences().is_empty(), "nothing to pull");
    }
    let outcome = walk.finish();
    assert_eq!(outcome.counts.local_only, 10_000);
    assert_eq!(outcome.dropped, 0);
    assert_eq!(round_trips, plain.round_trips, "{plain:?}");
    Ok(())
}

#[test]
fn tiny_budgets_answer_in_parts_and_miss_nothing() -> TestResult {
    let mut changed = (replica(3_000), replica(3_000));
    (0..3_000)
        .step_by(15)
        .for_each(|i| changed.1.put(&id(i), 1, ALIVE));
    // Many small lists asked at once, each answered by a split: replies are cut.
    let lopsided = (replica(20), replica(600));
    let mut partial = 0;
    for (mut a, mut b) in [changed, lopsided] {
        for list_below in [0, 1, 4] {
            let limits = ReconLimits {
                list_below,
                answer_list_below: 2,
                max_message_bytes: 200,
                ..ReconLimits::default()
            };
            partial += check(&mut a, &mut b, limits)?.partial;
            partial += check(&mut b, &mut a, limits)?.partial;
        }
    }
    assert!(partial > 0, "no reply was cut short");
    Ok(())
}

#[test]
fn equal_replicas_settle_in_one_round_trip() -> TestResult {
    let mut a = replica(10_000);
    let (outcome, traffic) = reconcile(&mut a.clone(), &mut a, ReconLimits::default())?;
    println!("10,000 equal records: {traffic:?}");
    assert_eq!(outcome.round_trips, 1);
    assert!(outcome.differences.is_empty());
    assert_eq!(outcome.counts, StatusCounts::default());
    // A walk that needs exactly the round trips allowed is not cut short.
    let one = ReconLimits {
        max_round_trips: 1,
        ..ReconLimits::default()
    };
    assert_eq!(reconcile(&mut a.clone(), &mut a, one)?.0.round_trips, 1);
    Ok(())
}

/// A [`MemView`] that counts how often each node's records are listed.
struct Counting<'a> {
    view: &'a mut MemView,
    listed: HashMap<Node, u32>,
}

impl ReconView for Counting<'_> {
    type Error = Infallible;

    fn fingerprint(&mut self, node: Node) -> Result<Fingerprint, Infallible> {
        self.view.fingerprint(node)
    }

    fn items(&mut self, node: Node) -> Result<Vec<Item>, Infallible> {
        *self.listed.entry(node).or_default() += 1;
        self.view.items(node)
    }
}

#[test]
fn the_initiator_compares_the_peers_list_with_the_one_it_sent() -> TestResult {
    // Sized so that this side, not the responder, lists the nodes below
    // its splits.
    const RECORDS: usize = 20_000;
    let (mut a, mut b) = (replica(RECORDS), replica(RECORDS));
    for k in (0..RECORDS).step_by(50) {
        b.put(&id(k), 1, ALIVE);
    }
    let limits = ReconLimits::default();
    let mut initiator = Counting {
        view: &mut a,
        listed: HashMap::new(),
    };
    let mut reconciler = Reconciler::start(&mut initiator, limits)?;
    while let Some(request) = reconciler.next_request() {
        let (reply, answered) = respond(&mut b, &request, &limits)?;
        reconciler.receive(&mut initiator, reply, answered)?;
    }
    assert_eq!(reconciler.outcome().counts.diverged, (RECORDS / 50) as u64);
    // Each node it listed to the peer is read once: the peer's list of the
    // same node is compared with the one sent, not with a second read.
    let again: Vec<_> = initiator.listed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(!initiator.listed.is_empty());
    assert!(again.is_empty(), "nodes listed more than once: {again:?}");
    Ok(())
}

#[test]
fn one_change_among_100k_is_cheap() -> TestResult {
    let (mut a, mut b) = (big(), big());
    b.put(&id(4_242), 1, ALIVE);
    let traffic = check(&mut a, &mut b, ReconLimits::default())?;
    println!(
        "1 change among 100,000: {} round trips, {} bytes",
        traffic.requests, traffic.bytes
    );
    assert!(traffic.requests <= 4, "{traffic:?}");
    assert!(traffic.bytes < 2 * 1024, "{traffic:?}");
    Ok(())
}

#[test]
fn a_hundred_changes_among_100k_stay_small() -> TestResult {
    let (mut a, mut b) = (big(), big());
    for k in 0..100 {
        let n = k * 997;
        match k % 5 {
            0 => b.put(&id(n), 1, ALIVE),               // diverged
            1 => b.put(&id(n), 1, flags(false, false)), // deleted there
            2 => b.remove(&id(n)),                      // absent there
            3 => b.put(&id(200_000 + k), 0, ALIVE),     // peer only
            _ => b.put(&id(n), 0, flags(true, true)),   // assets missing there
        }
    }
    let (outcome, traffic) = reconcile(&mut a, &mut b, ReconLimits::default())?;
    println!(
        "100 changes among 100,000: {} round trips, {} bytes",
        traffic.requests, traffic.bytes
    );
    assert_eq!(by_id(outcome.differences), expected(&a, &b));
    let want = StatusCounts {
        local_only: 40,
        peer_only: 20,
        diverged: 20,
        assets_missing: 20,
    };
    assert_eq!(outcome.counts, want);
    assert!(traffic.bytes < 64 * 1024, "{traffic:?}");
    Ok(())
}

#[test]
fn an_empty_replica_gets_everything_listed_within_budget() -> TestResult {
    let full = replica(5_000);
    let chunked = ReconLimits {
        max_message_bytes: 16 * 1024,
        ..ReconLimits::default()
    };
    for (limits, cap) in [(ReconLimits::default(), 1_200_000), (chunked, 64 * 1024)] {
        let (outcome, traffic) = reconcile(&mut MemView::default(), &mut full.clone(), limits)?;
        println!(
            "empty vs 5,000 (budget {}): {traffic:?}",
            limits.max_message_bytes
        );
        assert_eq!(outcome.differences.len(), 5_000);
        let peer_only = |d: &Difference| d.local.is_none() && d.status() == Some(PeerOnly);
        assert!(outcome.differences.iter().all(peer_only));
        assert_eq!(outcome.counts.peer_only, 5_000);
        assert_eq!(outcome.counts.total(), 5_000);
        assert!(traffic.largest < cap, "{traffic:?}");
        if limits == chunked {
            assert!(traffic.partial > 0, "replies were never cut: {traffic:?}");
        }

        let (outcome, traffic) = reconcile(&mut full.clone(), &mut MemView::default(), limits)?;
        assert_eq!(outcome.counts.local_only, 5_000);
        assert_eq!(outcome.counts.total(), 5_000);
        assert!(traffic.largest < cap, "{traffic:?}");
    }
    Ok(())
}

#[test]
fn statuses_classify_each_kind_of_difference() {
    let h = |version, alive, missing| {
        Some(Held {
            digest: digest(&id(0), version).short(),
            flags: flags(alive, missing),
        })
    };
    let cases = [
        (h(0, true, false), None, Some(LocalOnly)),
        (None, h(0, true, false), Some(PeerOnly)),
        (h(0, true, false), h(1, false, false), Some(LocalOnly)),
        (h(1, false, false), h(0, true, false), Some(PeerOnly)),
        (h(0, true, false), h(1, true, false), Some(Diverged)),
        (h(0, true, true), h(1, true, false), Some(Diverged)),
        (h(0, true, true), h(0, true, false), Some(AssetsMissing)),
        (h(0, true, false), h(0, true, true), Some(AssetsMissing)),
        (h(0, false, false), h(1, false, false), None),
        (h(0, false, false), None, None),
        (None, h(0, false, true), None),
    ];
    for (local, remote, want) in cases {
        let id = id(0);
        let difference = Difference { id, local, remote };
        assert_eq!(difference.status(), want, "{difference:?}");
    }
}

#[test]
fn a_responder_answering_nothing_is_rejected() -> TestResult {
    let (mut a, mut b) = (replica(100), replica(50));
    let limits = ReconLimits::default();
    let mut reconciler = Reconciler::start(&mut a, limits)?;
    let request = reconciler.next_request().ok_or("no first request")?;
    let (reply, _) = respond(&mut b, &request, &limits)?;
    assert_eq!(
        reconciler.receive(&mut a, reply, 0),
        Err(ReconError::BadAnswer)
    );

    let mut reconciler = Reconciler::start(&mut a, limits)?;
    let request = reconciler.next_request().ok_or("no first request")?;
    assert_eq!(
        reconciler.receive(&mut a, Vec::new(), request.len() + 1),
        Err(ReconError::BadAnswer)
    );
    Ok(())
}
