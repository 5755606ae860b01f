//! Integration tests for `shoal_core::recon::BlindLookup`, finding one record
//! among a peer's without naming it, run against the stateless responder
//! ([`respond`]) over an in-memory replica. Checked:
//!
//! - it finds exactly what the peer holds of the record (also deleted, also
//!   with answers cut to tiny budgets) and nothing for a record it lacks;
//! - its requests are only "list what you hold here" and depend on nothing
//!   but the top `4 × LOOKUP_LEVEL` bits of the record's key — the same for
//!   a record the peer holds and one it lacks, and the same for every record
//!   when the peer holds few — even against a peer that always splits;
//! - it costs about what the peer holds in one of 256 ranges;
//! - answers about other nodes, or answering nothing, are rejected.

use crate::common;

use common::mem_view::{ALIVE, MemView, big, flags, id, replica};
use shoal_core::RecordId;
use shoal_core::recon::{
    BlindLookup, Entry, FANOUT, Held, LOOKUP_LEVEL, LookupError, Node, ReconKey, ReconLimits,
    ShortFingerprint, respond,
};

/// What a lookup found, every request it sent, and the items it was sent.
struct Run {
    found: Option<Held>,
    requests: Vec<Vec<Entry>>,
    items: usize,
}

/// Drives `lookup` against `answer` (a responder) to the end.
fn drive(
    mut lookup: BlindLookup,
    mut answer: impl FnMut(&[Entry]) -> (Vec<Entry>, usize),
) -> Result<Run, LookupError> {
    let (mut requests, mut items) = (Vec::new(), 0);
    while let Some(request) = lookup.next_request() {
        for entry in &request {
            // Nothing about this replica: only "list what you hold here".
            assert!(
                matches!(entry, Entry::Items { items, .. } if items.is_empty()),
                "{entry:?}"
            );
        }
        let (reply, answered) = answer(&request);
        items += reply
            .iter()
            .map(|e| match e {
                Entry::Items { items, .. } => items.len(),
                Entry::Split { .. } => 0,
            })
            .sum::<usize>();
        requests.push(request);
        lookup.receive(reply, answered)?;
    }
    assert!(lookup.is_done());
    Ok(Run {
        found: lookup.finish(),
        requests,
        items,
    })
}

/// Looks `id` up in `peer` with `limits`, the peer answering honestly.
fn look(peer: &mut MemView, id: &RecordId, limits: ReconLimits) -> Run {
    let lookup = BlindLookup::new(id.clone(), limits);
    let honest = |request: &[Entry]| match respond(peer, request, &limits) {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    drive(lookup, honest).expect("an honest peer lets the lookup finish")
}

/// An id the peer does not hold whose key shares the top `LOOKUP_LEVEL`
/// levels with `like`'s.
fn absent_like(like: &RecordId) -> RecordId {
    let range = Node::at(LOOKUP_LEVEL, ReconKey::of(like));
    (0..100_000)
        .map(|n| RecordId::new(format!("absent-{n}")).expect("id"))
        .find(|id| range.contains(ReconKey::of(id)))
        .expect("one id in 256 lands in the range")
}

#[test]
fn finds_what_the_peer_holds_and_nothing_else() {
    let mut peer = big();
    peer.put(&id(7), 3, flags(false, false));
    let held = peer.held();
    let limits = ReconLimits::default();
    for n in [0, 7, 4_242, 99_999] {
        let run = look(&mut peer, &id(n), limits);
        assert_eq!(run.found, held.get(&id(n)).copied(), "r{n}");
        assert!(run.found.is_some(), "r{n}");
    }
    let absent = absent_like(&id(7));
    assert_eq!(look(&mut peer, &absent, limits).found, None);
}

#[test]
fn costs_about_one_range_of_the_peers_records() {
    let mut peer = big();
    let run = look(&mut peer, &id(31), ReconLimits::default());
    // 100,000 records over 256 ranges: about 390 in the one listed.
    assert!(run.items < 1_000, "{} items listed", run.items);
    assert!(
        run.requests.len() <= 4,
        "{} round trips",
        run.requests.len()
    );
}

#[test]
fn asks_the_same_for_a_record_held_or_not_in_the_same_range() {
    let limits = ReconLimits::default();
    let mut peer = big();
    let held = id(1_234);
    let absent = absent_like(&held);
    let found = look(&mut peer, &held, limits);
    let missing = look(&mut peer, &absent, limits);
    assert!(found.found.is_some() && missing.found.is_none());
    assert_eq!(found.requests, missing.requests);
    // The ranges asked never narrow below LOOKUP_LEVEL around the key alone.
    let deep = found.requests.iter().flatten().any(|e| match e {
        Entry::Items { node, .. } => node.level() > LOOKUP_LEVEL,
        Entry::Split { .. } => false,
    });
    assert!(deep, "a peer of 100,000 splits below the lookup level");
}

#[test]
fn a_small_peer_is_asked_only_for_its_whole_list() {
    let mut peer = replica(200);
    let limits = ReconLimits::default();
    let runs: Vec<Run> = [id(3), id(150), RecordId::new("elsewhere").expect("id")]
        .iter()
        .map(|id| look(&mut peer, id, limits))
        .collect();
    for run in &runs {
        assert_eq!(run.requests.len(), 1);
        assert_eq!(run.requests, runs[0].requests);
    }
    assert!(runs[0].found.is_some() && runs[1].found.is_some() && runs[2].found.is_none());
}

#[test]
fn answers_cut_to_tiny_budgets_still_find_it() {
    let mut peer = replica(20_000);
    peer.put(&id(2_999), 9, ALIVE);
    let limits = ReconLimits {
        max_message_bytes: 200,
        answer_list_below: 8,
        ..ReconLimits::default()
    };
    let run = look(&mut peer, &id(2_999), limits);
    assert_eq!(run.found, peer.held().get(&id(2_999)).copied());
    // Root, two levels on the way, then the range's 16 lists a few at a time.
    assert!(run.requests.len() > 4, "{} round trips", run.requests.len());
}

/// A peer that splits every node as if it held everything, to drive the
/// lookup down toward the key.
fn always_split(request: &[Entry]) -> (Vec<Entry>, usize) {
    let full = [ShortFingerprint([1; 8]); FANOUT];
    let reply = request
        .iter()
        .map(|e| match e {
            Entry::Items { node, .. } | Entry::Split { node, .. } if node.is_leaf() => {
                Entry::Items {
                    node: *node,
                    items: Vec::new(),
                }
            }
            Entry::Items { node, .. } | Entry::Split { node, .. } => Entry::Split {
                node: *node,
                children: full,
            },
        })
        .collect();
    (reply, request.len())
}

#[test]
fn a_peer_that_always_splits_learns_no_more_and_is_cut_off() {
    let limits = ReconLimits {
        max_round_trips: 6,
        ..ReconLimits::default()
    };
    let (a, b) = (id(5), absent_like(&id(5)));
    let mut asked = Vec::new();
    for id in [a, b] {
        let mut requests = Vec::new();
        let mut lookup = BlindLookup::new(id, limits);
        let failed = loop {
            let Some(request) = lookup.next_request() else {
                panic!("a peer that always splits cannot let it finish");
            };
            let (reply, answered) = always_split(&request);
            requests.push(request);
            if let Err(e) = lookup.receive(reply, answered) {
                break e;
            }
        };
        assert_eq!(failed, LookupError::TooManyRounds(6));
        asked.push(requests);
    }
    assert_eq!(asked[0], asked[1]);
}

#[test]
fn an_answer_about_another_node_or_none_is_refused() {
    let limits = ReconLimits::default();
    let mut lookup = BlindLookup::new(id(1), limits);
    let request = lookup.next_request().expect("a first request");
    assert_eq!(request.len(), 1);
    let elsewhere = Entry::Items {
        node: Node::at(1, ReconKey(0)),
        items: Vec::new(),
    };
    assert!(matches!(
        lookup.receive(vec![elsewhere], 1),
        Err(LookupError::BadAnswer(_))
    ));
    let mut lookup = BlindLookup::new(id(1), limits);
    lookup.next_request().expect("a first request");
    assert!(matches!(
        lookup.receive(Vec::new(), 0),
        Err(LookupError::BadAnswer(_))
    ));
}
