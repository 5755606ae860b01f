//! Federation requests inside the sans-IO sync session, driven in-process
//! between two sessions: an answer reaches the asker under its id, a request
//! that goes unanswered times out without ending the session, a late answer
//! is ignored, an answer nobody asked for is a protocol violation, and a held
//! catch-up starts only when fast-forwarded.

use shoal_core::sync::federation::{Refusal, Request, RequestId, Response};
use shoal_core::sync::{Action, GroupKey, Rejection, Role, Session, SyncConfig};
use shoal_core::{DbVersion, SyncCursor};

const TIMEOUT: u64 = 1_000;

fn session(role: Role, local: u8, remote: u8) -> Session {
    let config = SyncConfig {
        request_timeout_ms: TIMEOUT,
        ..SyncConfig::default()
    };
    Session::new(
        role,
        vec![local],
        vec![remote],
        GroupKey::from_random([9; 32]),
        [local; 32],
        SyncCursor::default(),
        config,
    )
}

/// Delivers every frame among `actions` to `to`, returning its non-frame
/// actions and the frames it sends back.
fn deliver(actions: Vec<Action>, to: &mut Session, now: u64) -> (Vec<Action>, Vec<Action>) {
    let (mut other, mut replies) = (Vec::new(), Vec::new());
    for action in actions {
        match action {
            Action::Send(frame) => {
                for out in to.handle_payload(&frame[4..], now) {
                    match out {
                        Action::Send(_) => replies.push(out),
                        _ => other.push(out),
                    }
                }
            }
            _ => other.push(action),
        }
    }
    (other, replies)
}

/// Two authenticated sessions with their catch-ups held.
fn pair() -> (Session, Session) {
    let (mut a, mut b) = (session(Role::Dialer, 1, 2), session(Role::Listener, 2, 1));
    a.hold_catch_up();
    b.hold_catch_up();
    let (mut to_b, mut to_a) = (a.start(0), b.start(0));
    for _ in 0..4 {
        let (_, back) = deliver(std::mem::take(&mut to_b), &mut b, 0);
        let (_, forth) = deliver(std::mem::take(&mut to_a), &mut a, 0);
        to_a = back;
        to_b = forth;
    }
    assert!(a.is_authenticated() && b.is_authenticated());
    (a, b)
}

fn frames(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Send(_)))
        .count()
}

#[test]
fn an_answer_reaches_the_asker_under_its_id() {
    let (mut a, mut b) = pair();
    let (id, sent) = a.request(Request::Collections, 10).expect("ready");
    let (served, _) = deliver(sent, &mut b, 10);
    let [
        Action::Serve {
            id: served_id,
            request,
        },
    ] = served.as_slice()
    else {
        panic!("expected one Serve, got {served:?}");
    };
    assert_eq!((*served_id, request), (id, &Request::Collections));
    let reply = b.respond(id, Response::Refused(Refusal::NotShared));
    let (answered, _) = deliver(reply, &mut a, 20);
    assert_eq!(
        answered,
        vec![Action::Answer {
            id,
            response: Response::Refused(Refusal::NotShared)
        }]
    );
    // Held catch-ups: nothing else flowed.
    assert!(!a.catching_up() && !b.catching_up());
}

#[test]
fn an_unanswered_request_times_out_and_a_late_answer_is_ignored() {
    let (mut a, mut b) = pair();
    let (id, sent) = a.request(Request::Collections, 0).expect("ready");
    let _ = deliver(sent, &mut b, 0);
    assert!(
        a.tick(TIMEOUT - 1)
            .iter()
            .all(|x| !matches!(x, Action::Unanswered { .. }))
    );
    assert!(a.tick(TIMEOUT).contains(&Action::Unanswered { id }));
    assert!(
        !a.is_closed(),
        "a timed-out request does not end the session"
    );
    let late = b.respond(
        id,
        Response::Offered {
            changed: false,
            in_sync: true,
        },
    );
    let (after, _) = deliver(late, &mut a, TIMEOUT + 5);
    assert!(after.is_empty(), "late answer ignored: {after:?}");
    assert!(!a.is_closed());
}

#[test]
fn an_answer_nobody_asked_for_ends_the_session() {
    let (mut a, mut b) = pair();
    let bogus = b.respond(
        RequestId(77),
        Response::Offered {
            changed: true,
            in_sync: true,
        },
    );
    let (closed, replies) = deliver(bogus, &mut a, 5);
    assert!(closed.contains(&Action::Close {
        reason: Rejection::ProtocolViolation,
        by_peer: false
    }));
    assert_eq!(frames(&replies), 1, "the peer is told why");
    assert!(a.request(Request::Collections, 6).is_err());
}

#[test]
fn a_held_catch_up_starts_only_when_fast_forwarded() {
    let (mut a, mut b) = pair();
    // Re-sync ticks do not start it while held.
    assert_eq!(frames(&a.tick(120_000)), 0);
    assert!(!a.catching_up());
    let cursor = SyncCursor::complete(DbVersion(40));
    let sent = a.fast_forward(cursor, 120_001);
    assert_eq!(a.cursor(), cursor);
    assert!(a.catching_up());
    let (served, _) = deliver(sent, &mut b, 120_001);
    let [Action::ReadChanges { after, .. }] = served.as_slice() else {
        panic!("expected the peer to read its log, got {served:?}");
    };
    assert_eq!(
        *after, cursor,
        "catch-up resumes from the fast-forwarded cursor"
    );
}
