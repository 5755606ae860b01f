//! The handshake as a stranger sees it, in-process between two sans-IO
//! sessions: what a member sends a stranger (who holds a wrong guess of the
//! secret) lets the stranger test no guess offline — not even the right one —
//! whichever side opened the stream; members still authenticate; and until
//! the peer has proved itself only tiny frames are accepted.

use shoal_core::SyncCursor;
use shoal_core::sync::codec::{self, ChangeLayout, MAX_HANDSHAKE_FRAME};
use shoal_core::sync::{Action, GroupKey, Rejection, Role, Session, SyncConfig};

const MEMBER: &[u8] = b"member-peer-id";
const STRANGER: &[u8] = b"stranger-peer-id";

fn session(role: Role, local: &[u8], remote: &[u8], key: GroupKey, seed: u8) -> Session {
    Session::new(
        role,
        local.to_vec(),
        remote.to_vec(),
        key,
        [seed; 32],
        SyncCursor::default(),
        SyncConfig::default(),
    )
}

fn payloads(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(frame) => Some(frame[codec::LEN_PREFIX..].to_vec()),
            _ => None,
        })
        .collect()
}

/// Runs a handshake between `a` and `b` until neither sends more; returns the
/// payloads each sent (a's, b's) in order.
fn run(a: &mut Session, b: &mut Session) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut from_a, mut from_b) = (payloads(&a.start(0)), payloads(&b.start(0)));
    let (mut all_a, mut all_b) = (from_a.clone(), from_b.clone());
    while !from_a.is_empty() || !from_b.is_empty() {
        let mut next_b = Vec::new();
        for p in from_a.drain(..) {
            next_b.extend(payloads(&b.handle_payload(&p, 1)));
        }
        let mut next_a = Vec::new();
        for p in from_b.drain(..) {
            next_a.extend(payloads(&a.handle_payload(&p, 1)));
        }
        all_a.extend(next_a.iter().cloned());
        all_b.extend(next_b.iter().cloned());
        (from_a, from_b) = (next_a, next_b);
    }
    (all_a, all_b)
}

/// The stranger's offline test of `guess`: replay its own side of the
/// handshake (it knows its own randomness, `seed`) under the guess against
/// the member's captured frames, and see whether they verify.
fn guess_verifies(role: Role, seed: u8, guess: &GroupKey, captured: &[Vec<u8>]) -> bool {
    let mut replay = session(role, STRANGER, MEMBER, guess.clone(), seed);
    replay.start(0);
    captured.iter().any(|payload| {
        replay
            .handle_payload(payload, 1)
            .iter()
            .any(|a| matches!(a, Action::Authenticated))
    })
}

fn kinds(captured: &[Vec<u8>]) -> Vec<&'static str> {
    captured
        .iter()
        .map(|p| {
            codec::decode(p, ChangeLayout::Protocol2, None)
                .expect("plain")
                .message
                .kind()
        })
        .collect()
}

#[test]
fn a_captured_handshake_lets_a_stranger_test_no_guess() {
    let secret = GroupKey::from_random([42; 32]);
    // The stranger's dictionary holds the right key among wrong ones.
    let dictionary: Vec<GroupKey> = (0..16u8)
        .map(|i| GroupKey::from_random([i; 32]))
        .chain([secret.clone()])
        .collect();
    for member_role in [Role::Listener, Role::Dialer] {
        let stranger_role = match member_role {
            Role::Dialer => Role::Listener,
            Role::Listener => Role::Dialer,
        };
        let mut member = session(member_role, MEMBER, STRANGER, secret.clone(), 1);
        let committed = GroupKey::from_random([3; 32]);
        let mut stranger = session(stranger_role, STRANGER, MEMBER, committed.clone(), 2);
        let (captured, _) = run(&mut member, &mut stranger);
        assert!(member.is_closed() && stranger.is_closed());
        assert!(!member.is_authenticated() && !stranger.is_authenticated());
        if member_role == Role::Listener {
            // A stranger who dialed a member gets no confirmation at all.
            assert_eq!(kinds(&captured), ["hello", "pake", "rejected"]);
        }
        for guess in &dictionary {
            assert!(
                !guess_verifies(stranger_role, 2, guess, &captured),
                "member as {member_role:?}: a guess could be tested offline"
            );
        }
    }
}

#[test]
fn the_one_guess_a_stranger_commits_to_is_all_it_can_try() {
    // The replay above is a real test: had the stranger's one online guess
    // (the key its PAKE message was made with) been right, it would verify.
    let secret = GroupKey::from_random([42; 32]);
    let mut member = session(Role::Dialer, MEMBER, STRANGER, secret.clone(), 1);
    let mut lucky = session(Role::Listener, STRANGER, MEMBER, secret.clone(), 2);
    let (captured, _) = run(&mut member, &mut lucky);
    assert!(member.is_authenticated() && lucky.is_authenticated());
    assert!(guess_verifies(Role::Listener, 2, &secret, &captured));
    assert!(!guess_verifies(
        Role::Listener,
        2,
        &GroupKey::from_random([5; 32]),
        &captured
    ));
}

#[test]
fn a_wrong_secret_is_named_on_both_sides() {
    let mut member = session(
        Role::Listener,
        MEMBER,
        STRANGER,
        GroupKey::from_random([1; 32]),
        1,
    );
    let mut other = session(
        Role::Dialer,
        STRANGER,
        MEMBER,
        GroupKey::from_random([2; 32]),
        2,
    );
    let (to_other, _) = run(&mut member, &mut other);
    assert_eq!(
        codec::decode(to_other.last().unwrap(), ChangeLayout::Protocol2, None)
            .unwrap()
            .message,
        shoal_core::sync::Message::Rejected {
            reason: Rejection::WrongSecret
        }
    );
    assert!(member.is_closed() && other.is_closed());
}

#[test]
fn handshake_frames_are_capped_before_authentication() {
    let key = GroupKey::from_random([1; 32]);
    let mut member = session(Role::Listener, MEMBER, STRANGER, key, 1);
    member.start(0);
    // A plain frame just over the handshake cap, far under the session's cap.
    let mut payload = vec![0u8; MAX_HANDSHAKE_FRAME + 1];
    payload[1] = 0xff;
    let out = member.handle_payload(&payload, 1);
    assert!(
        out.contains(&Action::Close {
            reason: Rejection::TooLarge,
            by_peer: false
        }),
        "{out:?}"
    );
}

/// A driver refusing an authenticated peer (issue 19: no admission, or
/// revoked) as the session says so, dropping the frames the session had
/// sealed after it: the peer still reads the refusal by name.
#[test]
fn a_peer_refused_after_authentication_reads_why() {
    let key = GroupKey::from_random([9; 32]);
    for reason in [Rejection::NotAdmitted, Rejection::Revoked] {
        let mut dialer = session(Role::Dialer, STRANGER, MEMBER, key.clone(), 1);
        let mut listener = session(Role::Listener, MEMBER, STRANGER, key.clone(), 2);
        let mut to_listener = payloads(&dialer.start(0));
        let mut to_dialer = payloads(&listener.start(0));
        let mut dialer_end = None;
        for _ in 0..8 {
            let mut next_dialer = Vec::new();
            for p in to_listener.drain(..) {
                // Frames before `Authenticated` go; at it, the driver refuses.
                for action in listener.handle_payload(&p, 1) {
                    match action {
                        Action::Authenticated => {
                            next_dialer.extend(payloads(&listener.refuse(reason)));
                            break;
                        }
                        Action::Send(frame) => {
                            next_dialer.push(frame[codec::LEN_PREFIX..].to_vec())
                        }
                        _ => {}
                    }
                }
            }
            let mut next_listener = Vec::new();
            for p in to_dialer.drain(..) {
                for action in dialer.handle_payload(&p, 1) {
                    match action {
                        Action::Send(frame) => {
                            next_listener.push(frame[codec::LEN_PREFIX..].to_vec())
                        }
                        Action::Close { reason, by_peer } => dialer_end = Some((reason, by_peer)),
                        _ => {}
                    }
                }
            }
            (to_listener, to_dialer) = (next_listener, next_dialer);
        }
        assert!(listener.is_closed() && dialer.is_closed());
        assert_eq!(dialer_end, Some((reason, true)), "{reason:?}");
        assert!(
            listener.refuse(reason).is_empty(),
            "refusing twice sends nothing"
        );
    }
}
