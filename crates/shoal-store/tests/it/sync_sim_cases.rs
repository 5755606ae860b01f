//! Fixed scenarios of the sync protocol on the deterministic simulated network
//! of `sync_sim.rs`: a clean network needs no timeouts and shows no gaps, a
//! reconnect transfers only what was missed, a wrong secret is rejected and
//! receives nothing; a record far bigger than a chunk (and than a frame)
//! crosses in parts, through a rewrite and a reconnect mid-record; and a
//! session closes on garbage, oversized frames and silence with a named reason.
//! A node whose new commits are only the merges of a peer's pushes sends
//! that peer no push for them until a tick (then one), without a gap.

use serde_json::json;
use shoal_core::sync::{Action, GroupKey, Rejection, Role, Session, SyncConfig};
use shoal_core::{CollectionName, FieldName, Intent, RecordId, SyncCursor};
use shoal_store::WriteOp;

use crate::sync_sim_support;
use sync_sim_support::Sim;

#[test]
fn clean_network_needs_no_timeouts_and_no_gaps() {
    let mut sim = Sim::new(7, 3, false, None);
    for (a, b) in sim.links.clone() {
        sim.connect(a, b);
    }
    for _ in 0..300 {
        let node = sim.rng.below(3) as usize;
        sim.local_write(node);
        while sim.deliver_one() {}
    }
    assert!(sim.converged(), "live pushes alone keep replicas equal");
    assert!(sim.closes.is_empty(), "no session closed: {:?}", sim.closes);
    let gaps: u64 = sim
        .conns
        .values()
        .flat_map(|c| c.sessions.iter())
        .map(|s| s.stats().gaps)
        .sum();
    assert_eq!(gaps, 0, "a clean network never shows a push gap");
}

#[test]
fn reconnect_transfers_only_what_was_missed() {
    let mut sim = Sim::new(11, 2, false, None);
    sim.connect(0, 1);
    for _ in 0..200 {
        sim.local_write(0);
    }
    while sim.deliver_one() {}
    assert!(sim.converged());
    let ids: Vec<u64> = sim.conns.keys().copied().collect();
    ids.into_iter().for_each(|id| sim.disconnect(id));
    let before = sim.nodes[0].store.db_version();
    let mut missed = 0;
    while missed == 0 {
        for _ in 0..5 {
            sim.local_write(0);
        }
        missed = sim.nodes[0].store.changes_since(before).count() as u64;
    }
    sim.connect(0, 1);
    while sim.deliver_one() {}
    assert!(sim.converged());
    let received: u64 = sim
        .conns
        .values()
        .map(|c| c.sessions[1].stats().changes_in)
        .sum();
    assert_eq!(
        received, missed,
        "only the changes made while apart crossed"
    );
}

/// Frames node `node` has sent on every connection (it is side 1 of `conn`s
/// it listened on, side 0 of those it dialed).
fn frames_out(sim: &Sim, node: usize) -> u64 {
    sim.conns
        .values()
        .map(|c| match (c.a == node, c.b == node) {
            (true, _) => c.sessions[0].stats().frames_out,
            (_, true) => c.sessions[1].stats().frames_out,
            _ => 0,
        })
        .sum()
}

#[test]
fn an_echo_is_not_pushed_back_until_a_tick() {
    let mut sim = Sim::new(5, 2, false, None);
    sim.connect(0, 1);
    while sim.deliver_one() {}
    let (before_0, before_1) = (frames_out(&sim, 0), frames_out(&sim, 1));
    let cursor_before = sim.nodes[0].store.peer_cursor("n1").unwrap();
    for _ in 0..20 {
        sim.local_write(0);
        while sim.deliver_one() {}
    }
    assert!(sim.converged());
    let (sent_0, sent_1) = (
        frames_out(&sim, 0) - before_0,
        frames_out(&sim, 1) - before_1,
    );
    assert!(sent_0 > 0, "node 0 pushed its writes");
    // Node 1 only acknowledged: no push back of what it merged from node 0
    // (an empty push per write would double its frames, and node 0's acks
    // of them would add to node 0's).
    assert_eq!(sent_1, sent_0, "one ack per push, nothing else");
    assert_eq!(
        sim.nodes[0].store.peer_cursor("n1").unwrap(),
        cursor_before,
        "node 0 persisted no cursor move for node 1's echoes yet"
    );
    // The tick sends the held-back push: node 0's cursor for node 1 now
    // covers node 1's whole log.
    sim.tick_all(500);
    while sim.deliver_one() {}
    assert_eq!(frames_out(&sim, 1) - before_1, sent_1 + 1);
    let cursor = sim.nodes[0].store.peer_cursor("n1").unwrap();
    assert_eq!(cursor, SyncCursor::complete(sim.head(1)));
    // Writes on both sides afterwards, and one on node 1 right after an
    // echo (held back, no tick): its push continues from the last cursor
    // sent, with no gap.
    sim.local_write(0);
    while sim.deliver_one() {}
    sim.local_write(1);
    sim.local_write(0);
    while sim.deliver_one() {}
    assert!(sim.converged());
    let gaps: u64 = sim
        .conns
        .values()
        .flat_map(|c| c.sessions.iter())
        .map(|s| s.stats().gaps)
        .sum();
    assert_eq!(gaps, 0, "no push gap");
    assert!(sim.closes.is_empty(), "{:?}", sim.closes);
}

#[test]
fn wrong_secret_is_rejected_and_receives_nothing() {
    let mut sim = Sim::new(3, 2, false, Some(1));
    sim.local_write(0);
    sim.local_write(0);
    sim.connect(0, 1);
    while sim.deliver_one() {}
    assert!(sim.conns.is_empty(), "the connection was closed");
    assert!(
        sim.closes
            .get(&Rejection::WrongSecret)
            .copied()
            .unwrap_or(0)
            >= 1,
        "{:?}",
        sim.closes
    );
    assert!(
        sim.nodes[1].store.full_state().unwrap().is_empty(),
        "zero records reached the outsider"
    );
    assert!(sim.nodes[0].store.full_state().unwrap().len() <= 2);
}

/// One record of 300 map entries (100 of them removed again: tombstones
/// too), ~45 KB of changes, against chunks of 7 changes / 600 bytes and a
/// frame cap of 8 KiB: it crosses in dozens of chunks cut inside the record
/// (the old whole-record chunk was refused as too large). A rewrite of the
/// record mid-transfer moves it (the rest is read at its new place), a
/// reconnect mid-record starts it again from the persisted cursor, and a
/// record written afterwards arrives.
#[test]
fn a_record_bigger_than_a_frame_crosses_in_parts() {
    let mut sim = Sim::new(5, 2, false, None);
    sim.config.max_frame = 8 * 1024;
    let big = CollectionName::new("big").unwrap();
    let id = RecordId::new("r").unwrap();
    let field = FieldName::new("m").unwrap();
    let key = |i: usize| format!("{i:04}-{}", "k".repeat(100));
    let op = |intent| WriteOp {
        collection: big.clone(),
        id: id.clone(),
        intent,
    };
    let adds = (0..300).map(|i| {
        op(Intent::MapSet {
            field: field.clone(),
            key: key(i),
            value: json!(i),
        })
    });
    sim.nodes[0].store.write(adds.collect::<Vec<_>>()).unwrap();
    let removals = (0..100).map(|i| {
        op(Intent::MapRemove {
            field: field.clone(),
            key: key(i),
        })
    });
    sim.nodes[0]
        .store
        .write(removals.collect::<Vec<_>>())
        .unwrap();
    let slots = |sim: &Sim, node: usize| {
        sim.nodes[node]
            .store
            .record_state(&big, &id)
            .unwrap()
            .map_or(0, |s| s.slots().count())
    };
    let whole = slots(&sim, 0);
    assert!(whole > 300);

    sim.connect(0, 1);
    // Part of the record arrives, then the writer rewrites it.
    while slots(&sim, 1) < whole / 4 {
        assert!(sim.deliver_one(), "the transfer stalled");
    }
    assert!(slots(&sim, 1) < whole, "the record arrives in parts");
    let rewrite = op(Intent::MapSet {
        field: field.clone(),
        key: "late".into(),
        value: json!(1),
    });
    sim.nodes[0].store.write([rewrite]).unwrap();
    let head = sim.head(0);
    let actions = sim.conns.get_mut(&0).unwrap().sessions[0].local_committed(head);
    sim.run(0, 0, actions);
    while slots(&sim, 1) < whole / 2 {
        assert!(sim.deliver_one(), "the transfer stalled");
    }
    // A reconnect in the middle of the record.
    let ids: Vec<u64> = sim.conns.keys().copied().collect();
    ids.into_iter().for_each(|c| sim.disconnect(c));
    sim.connect(0, 1);
    while sim.deliver_one() {}
    sim.local_write(0);
    while sim.deliver_one() {}
    assert!(sim.closes.is_empty(), "no session closed: {:?}", sim.closes);
    assert!(sim.converged(), "the record and the later write crossed");
    let chunks: u64 = sim
        .conns
        .values()
        .map(|c| c.sessions[1].stats().catchups)
        .sum();
    assert!(chunks > 20, "the record crossed in many chunks ({chunks})");
}

/// A listener session that has sent its hello and waits for the peer's.
fn started_session() -> Session {
    let key = GroupKey::from_random([1; 32]);
    let mut session = Session::new(
        Role::Listener,
        b"me".to_vec(),
        b"them".to_vec(),
        key,
        [0; 32],
        SyncCursor::default(),
        SyncConfig::default(),
    );
    session.start(0);
    session
}

#[test]
fn garbage_and_oversized_frames_close_with_a_named_reason() {
    let mut session = started_session();
    let actions = session.handle_payload(&[0, 0xde, 0xad, 0xbe, 0xef], 1);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Close {
                reason: Rejection::Garbage,
                by_peer: false
            }
        )),
        "{actions:?}"
    );
    assert!(session.is_closed());
    assert!(
        session.handle_payload(&[0], 2).is_empty(),
        "a closed session ignores input"
    );

    let mut session = started_session();
    let actions = session.frame_too_large();
    assert!(matches!(
        actions.last(),
        Some(Action::Close {
            reason: Rejection::TooLarge,
            ..
        })
    ));

    let mut session = started_session();
    assert!(session.tick(29_999).is_empty());
    let actions = session.tick(30_000);
    assert!(
        matches!(
            actions.last(),
            Some(Action::Close {
                reason: Rejection::Timeout,
                ..
            })
        ),
        "a silent peer times out"
    );
}
