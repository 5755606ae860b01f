//! The honest other end of a sync session, built from `shoal_core::sync`'s
//! public handshake pieces: it runs its side of the SPAKE2 exchange and the
//! key confirmation, then seals whatever a target wants to send (a message,
//! or raw body bytes under a correct MAC) and opens what the session sends.
//! Without it a fuzzer could never get past the MAC into the protocol.

use shoal_core::sync::GroupKey;
use shoal_core::sync::Message;
use shoal_core::sync::auth::{FrameKey, Pake, Role, SessionKeys, Transcript, hello_nonce};
use shoal_core::sync::codec::{self, ChangeLayout, FrameError, LEN_PREFIX};
use shoal_core::sync::version::{HELLO_VERSION, HelloTail, Offer};
use std::sync::OnceLock;

/// Peer id bytes of the session under test.
pub const LOCAL_ID: &[u8] = b"local-peer";
/// Peer id bytes of the honest peer.
pub const PEER_ID: &[u8] = b"honest-peer";

/// Keys of one finished exchange with fixed seeds, for targets that fuzz
/// single frames: `(dialer's frame key, listener's frame key)`.
pub fn fixed_frame_keys() -> &'static (FrameKey, FrameKey) {
    static KEYS: OnceLock<(FrameKey, FrameKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = crate::group_key();
        let (d_seed, l_seed) = ([1u8; 32], [2u8; 32]);
        let d = Pake::start(&key, Role::Dialer, LOCAL_ID, PEER_ID, &d_seed);
        let l = Pake::start(&key, Role::Listener, LOCAL_ID, PEER_ID, &l_seed);
        let transcript = Transcript {
            dialer: LOCAL_ID.to_vec(),
            listener: PEER_ID.to_vec(),
            dialer_nonce: hello_nonce(&d_seed),
            listener_nonce: hello_nonce(&l_seed),
            dialer_pake: d.message().to_vec(),
            listener_pake: l.message().to_vec(),
        };
        let lm = l.message().to_vec();
        let keys = d
            .finish(&lm, &transcript)
            .expect("a fresh exchange finishes");
        (keys.frame_key(Role::Dialer), keys.frame_key(Role::Listener))
    })
}

/// A sealed payload (no length prefix) of arbitrary `body` bytes under a
/// correct MAC for frame number `seq`.
pub fn seal_body(key: &FrameKey, seq: u64, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + 32 + body.len());
    payload.push(1);
    payload.extend_from_slice(&key.mac(seq, body));
    payload.extend_from_slice(body);
    payload
}

/// The honest peer's side of one session.
pub struct HonestPeer {
    role: Role,
    seed: [u8; 32],
    pake: Option<Pake>,
    local_nonce: Option<[u8; 32]>,
    keys: Option<SessionKeys>,
    send: Option<(FrameKey, u64)>,
    recv: Option<(FrameKey, u64)>,
}

impl HonestPeer {
    /// The peer in `role` (the session under test has the other), holding `key`.
    pub fn new(role: Role, key: &GroupKey, seed: [u8; 32]) -> Self {
        let (dialer, listener) = match role {
            Role::Dialer => (PEER_ID, LOCAL_ID),
            Role::Listener => (LOCAL_ID, PEER_ID),
        };
        Self {
            role,
            seed,
            pake: Some(Pake::start(key, role, dialer, listener, &seed)),
            local_nonce: None,
            keys: None,
            send: None,
            recv: None,
        }
    }

    /// Its hello and PAKE payloads, sent first.
    pub fn opening(&self) -> Vec<Vec<u8>> {
        let pake = self
            .pake
            .as_ref()
            .map(|p| p.message().to_vec())
            .unwrap_or_default();
        [
            Message::Hello {
                version: HELLO_VERSION,
                nonce: hello_nonce(&self.seed),
                tail: HelloTail::for_offer(Offer::current()),
            },
            Message::Pake { message: pake },
        ]
        .iter()
        .map(|m| payload(m, None))
        .collect()
    }

    /// Whether its frames are sealed now.
    pub fn is_sealing(&self) -> bool {
        self.send.is_some()
    }

    /// Takes one frame the session sent (length prefix included): checks
    /// the prefix, opens it, follows the handshake. Returns the message and
    /// any payloads the peer answers with (its proof). An error means the
    /// session sent a frame its honest peer cannot read.
    pub fn receive(
        &mut self,
        frame: &[u8],
        cap: usize,
    ) -> Result<(Message, Vec<Vec<u8>>), FrameError> {
        let prefix: [u8; LEN_PREFIX] = frame
            .get(..LEN_PREFIX)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| FrameError::Garbage("short frame".into()))?;
        let len = codec::payload_len(prefix, cap)?;
        if frame.len() != LEN_PREFIX + len {
            return Err(FrameError::Garbage("length prefix disagrees".into()));
        }
        let key = self.recv.as_ref().map(|(k, seq)| (k, *seq));
        let opened = codec::decode(&frame[LEN_PREFIX..], LAYOUT, key)?;
        if opened.sealed
            && let Some((_, seq)) = self.recv.as_mut()
        {
            *seq += 1;
        }
        let mut answers = Vec::new();
        match &opened.message {
            Message::Hello { nonce, .. } => self.local_nonce = Some(*nonce),
            Message::Pake { message } => self.finish(message, &mut answers),
            Message::Proof { mac } => {
                let ok = self
                    .keys
                    .as_ref()
                    .is_some_and(|k| k.verify(self.role.peer(), mac));
                if ok && self.role == Role::Listener {
                    let keys = self.keys.as_ref().expect("checked");
                    answers.push(payload(
                        &Message::Proof {
                            mac: keys.proof(Role::Listener),
                        },
                        None,
                    ));
                }
                if ok {
                    self.enter_ready();
                }
            }
            _ => {}
        }
        Ok((opened.message, answers))
    }

    fn finish(&mut self, local_pake: &[u8], answers: &mut Vec<Vec<u8>>) {
        let (Some(pake), Some(local_nonce)) = (self.pake.take(), self.local_nonce) else {
            return;
        };
        let own = pake.message().to_vec();
        let nonce = hello_nonce(&self.seed);
        let transcript = match self.role {
            Role::Dialer => Transcript {
                dialer: PEER_ID.to_vec(),
                listener: LOCAL_ID.to_vec(),
                dialer_nonce: nonce,
                listener_nonce: local_nonce,
                dialer_pake: own,
                listener_pake: local_pake.to_vec(),
            },
            Role::Listener => Transcript {
                dialer: LOCAL_ID.to_vec(),
                listener: PEER_ID.to_vec(),
                dialer_nonce: local_nonce,
                listener_nonce: nonce,
                dialer_pake: local_pake.to_vec(),
                listener_pake: own,
            },
        };
        let Ok(keys) = pake.finish(local_pake, &transcript) else {
            return;
        };
        if self.role == Role::Dialer {
            answers.push(payload(
                &Message::Proof {
                    mac: keys.proof(Role::Dialer),
                },
                None,
            ));
        }
        self.keys = Some(keys);
    }

    /// The dialer's keys go live once it sent its proof and the listener's
    /// proof checked; the listener's once the dialer's proof checked.
    fn enter_ready(&mut self) {
        if let Some(keys) = &self.keys {
            self.send = Some((keys.frame_key(self.role), 0));
            self.recv = Some((keys.frame_key(self.role.peer()), 0));
        }
    }

    /// A payload carrying `message`, sealed once the handshake is done.
    pub fn seal(&mut self, message: &Message) -> Vec<u8> {
        match self.send.as_mut() {
            Some((key, seq)) => {
                let p = payload(message, Some((key, *seq)));
                *seq += 1;
                p
            }
            None => payload(message, None),
        }
    }

    /// A payload carrying raw `body` bytes: sealed under a correct MAC once
    /// the handshake is done, plain before.
    pub fn seal_raw(&mut self, body: &[u8]) -> Vec<u8> {
        match self.send.as_mut() {
            Some((key, seq)) => {
                let p = seal_body(key, *seq, body);
                *seq += 1;
                p
            }
            None => {
                let mut p = vec![0];
                p.extend_from_slice(body);
                p
            }
        }
    }
}

/// How the honest peer's changes travel: it offers every feature, as the
/// session under test does, so changes carry their predecessors (the
/// handshake's messages carry no changes, so they are the same either way).
pub const LAYOUT: ChangeLayout = ChangeLayout::WithPredecessors;

/// A payload (no length prefix) carrying `message`.
pub fn payload(message: &Message, key: Option<(&FrameKey, u64)>) -> Vec<u8> {
    codec::encode(message, LAYOUT, key)[LEN_PREFIX..].to_vec()
}
