//! The handshake as a stranger drives it: a fresh session (either role) fed
//! plain hello, PAKE and proof messages in any order and shape, raw
//! payloads, and — when the input asks — the honest peer's own opening and
//! proof, so the SPAKE2 exchange (`shoal_core::sync::auth::Pake`) and the
//! key confirmation see real and mutated messages. Also the group key and
//! salt text parsers.
//!
//! Checked: no panic; every frame the session sends before authentication
//! fits the handshake cap; it authenticates only after the honest peer's
//! proof was delivered, at most once; `Close` comes at most once and
//! nothing after it; a tick past the timeout ends an unfinished handshake.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::SyncCursor;
use shoal_core::sync::auth::{Pake, Role, Transcript};
use shoal_core::sync::codec::{LEN_PREFIX, MAX_HANDSHAKE_FRAME};
use shoal_core::sync::{Action, GroupKey, GroupSalt, Session, SyncConfig};
use shoal_fuzz::ops::Ops;
use shoal_fuzz::peer::{HonestPeer, LOCAL_ID, PEER_ID};

struct Watch {
    authenticated: bool,
    closed: bool,
    proof_delivered: bool,
}

impl Watch {
    /// Checks the session's actions; returns the frames it sent.
    fn check(&mut self, actions: Vec<Action>) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for action in actions {
            assert!(!self.closed, "an action after Close: {action:?}");
            match action {
                Action::Send(frame) => {
                    if !self.authenticated {
                        assert!(
                            frame.len() - LEN_PREFIX <= MAX_HANDSHAKE_FRAME,
                            "a big handshake frame"
                        );
                    }
                    frames.push(frame);
                }
                Action::Authenticated => {
                    assert!(
                        self.proof_delivered,
                        "authenticated without the peer's proof"
                    );
                    assert!(!self.authenticated, "authenticated twice");
                    self.authenticated = true;
                }
                Action::Close { .. } => self.closed = true,
                _ => {}
            }
        }
        frames
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Text parsers of the same secrets.
    if let Ok(text) = std::str::from_utf8(rest) {
        if let Ok(key) = GroupKey::from_hex(text) {
            assert_eq!(GroupKey::from_hex(&key.to_hex()), Ok(key));
        }
        if let Ok(salt) = GroupSalt::from_hex(text) {
            assert_eq!(GroupSalt::from_hex(&salt.to_hex()), Ok(salt));
        }
    }
    let key = shoal_fuzz::group_key();
    let role = if mode & 1 == 0 {
        Role::Dialer
    } else {
        Role::Listener
    };
    // A PAKE message straight into the exchange.
    if mode & 2 != 0 {
        let pake = Pake::start(&key, role, LOCAL_ID, PEER_ID, &[3; 32]);
        let transcript = Transcript {
            dialer: LOCAL_ID.to_vec(),
            listener: PEER_ID.to_vec(),
            dialer_nonce: [0; 32],
            listener_nonce: [0; 32],
            dialer_pake: pake.message().to_vec(),
            listener_pake: rest.to_vec(),
        };
        let _ = pake.finish(rest, &transcript);
        return;
    }
    let mut session = Session::new(
        role,
        LOCAL_ID.to_vec(),
        PEER_ID.to_vec(),
        key.clone(),
        [7; 32],
        SyncCursor::default(),
        SyncConfig::default(),
    );
    let mut peer = HonestPeer::new(role.peer(), &key, [9; 32]);
    let mut watch = Watch {
        authenticated: false,
        closed: false,
        proof_delivered: false,
    };
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut feed_peer = |frames: Vec<Vec<u8>>, answers: &mut Vec<Vec<u8>>| {
        for frame in frames {
            if let Ok((_, more)) = peer.receive(&frame, MAX_HANDSHAKE_FRAME) {
                answers.extend(more);
            }
        }
    };
    let frames = watch.check(session.start(0));
    let opening = HonestPeer::new(role.peer(), &key, [9; 32]).opening();
    feed_peer(frames, &mut answers);
    let mut now = 0;
    for (op, data) in Ops::new(rest) {
        let payload = match op % 6 {
            0 => {
                let mut p = vec![0];
                p.extend_from_slice(data);
                p
            }
            1 => data.to_vec(),
            2 => opening[0].clone(),
            3 => opening[1].clone(),
            4 => {
                if answers.is_empty() {
                    continue;
                }
                watch.proof_delivered = true;
                answers.remove(0)
            }
            _ => {
                now += u64::from(data.first().copied().unwrap_or(0)) * 1_000;
                let frames = watch.check(session.tick(now));
                feed_peer(frames, &mut answers);
                continue;
            }
        };
        let frames = watch.check(session.handle_payload(&payload, now));
        feed_peer(frames, &mut answers);
        assert_eq!(watch.closed, session.is_closed());
    }
    now += SyncConfig::default().request_timeout_ms;
    let frames = watch.check(session.tick(now));
    feed_peer(frames, &mut answers);
    assert!(
        session.is_closed() || session.is_authenticated(),
        "a handshake outlived its timeout"
    );
});
