//! The sync session: a pure state machine for one authenticated connection to
//! one peer. Payloads and time go in; frames to send and store operations come
//! out as [`Action`]s, which the driver (the libp2p shell, or a simulation)
//! performs in order and reports back.
//!
//! Each session plays both parts at once — puller (`pull.rs`: catch-up from
//! the cursor persisted for the peer, applying chunks and contiguous pushes)
//! and server (`serve.rs`: answering catch-ups, pushing local commits live).
//! This file owns the state, the handshake, the dispatch of messages and the
//! timeouts.
//!
//! The handshake: each side sends its hello (version, nonce) and its SPAKE2
//! message under the group key at once; with the peer's message each derives
//! the session secret. The dialer then sends its key confirmation; the
//! listener checks it and only then sends its own. So neither side sends
//! anything a stranger could test a guess of the secret against before the
//! stranger proved itself, beyond the one guess its own PAKE message committed
//! to. Until then frames are capped at [`codec::MAX_HANDSHAKE_FRAME`]. Every failure ends the session with a named [`Rejection`], sent to
//! the peer first, so neither side waits for a timeout. The session never
//! touches a socket, a clock or a database.

use super::action::Action;
use super::auth::{FrameKey, GroupKey, Pake, Role, SessionKeys, Transcript, hello_nonce};
use super::codec::{self, ChangeLayout, FrameError};
use super::federation::RequestId;
use super::message::{Batch, Message, Rejection};
use super::version::{self, Agreed, Feature, HelloTail, Incompatible, Offer};
use crate::change::{DbVersion, LogPosition, SyncCursor};
use std::collections::{BTreeMap, VecDeque};

/// Session settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Most changes in one chunk or push.
    pub max_changes: u32,
    /// Most encoded bytes of changes in one chunk or push (at least one
    /// change always goes; a bigger record is sent in parts).
    pub max_bytes: u32,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// How long a request (handshake, catch-up, push ack) may go unanswered.
    pub request_timeout_ms: u64,
    /// How often an idle session re-asks for changes (anti-stall re-sync).
    pub resync_interval_ms: u64,
    /// Most pushes sent and not yet acknowledged.
    pub max_unacked: usize,
    /// What this node announces in its hello (default: this build's
    /// [`Offer::current`]). Tests set [`Offer::protocol_2`] to act as a
    /// previous build, or a custom one to act as a far newer one.
    pub offer: Offer,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_changes: 16384,
            max_bytes: 4 * 1024 * 1024,
            max_frame: codec::DEFAULT_MAX_FRAME,
            request_timeout_ms: 30_000,
            resync_interval_ms: 60_000,
            max_unacked: 4,
            offer: Offer::current(),
        }
    }
}

/// Counters for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes sent, length prefixes included.
    pub bytes_out: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Changes sent in chunks and pushes.
    pub changes_out: u64,
    /// Changes received in chunks and pushes.
    pub changes_in: u64,
    /// Catch-up requests sent.
    pub catchups: u64,
    /// Pushes that did not continue from our cursor (fell back to catch-up).
    pub gaps: u64,
    /// Pushes ignored because a catch-up request was outstanding.
    pub pushes_ignored: u64,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the peer's hello.
    Hello,
    /// Hello received; waiting for the peer's PAKE message.
    Pake {
        /// The nonce the peer's hello carried.
        peer_nonce: [u8; 32],
    },
    /// Key exchange done; waiting for the peer's key confirmation.
    Proof(SessionKeys),
    /// Authenticated.
    Ready,
    /// Finished; every further input is ignored.
    Closed,
}

/// What an [`Action::Apply`] not yet reported applied came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    /// A catch-up chunk; `more` means another request follows once applied.
    Chunk { more: bool },
    /// A live push.
    Push,
}

/// One sync session with one peer. See the module docs.
#[derive(Debug)]
pub struct Session {
    role: Role,
    local_peer: Vec<u8>,
    remote_peer: Vec<u8>,
    nonce: [u8; 32],
    pake: Option<Pake>,
    pub(super) config: SyncConfig,
    phase: Phase,
    send_key: Option<FrameKey>,
    recv_key: Option<FrameKey>,
    send_seq: u64,
    recv_seq: u64,
    started_ms: u64,
    pub(super) stats: SessionStats,
    // puller (pull.rs)
    pub(super) cursor: SyncCursor,
    pub(super) expected: SyncCursor,
    pub(super) request: Option<(SyncCursor, u64)>,
    pub(super) applying: VecDeque<(SyncCursor, Pending)>,
    pub(super) next_resync_ms: u64,
    pub(super) remote_head: LogPosition,
    // server (serve.rs)
    pub(super) serving: bool,
    pub(super) pushed: Option<SyncCursor>,
    pub(super) in_flight: VecDeque<(SyncCursor, u64)>,
    pub(super) push_reading: bool,
    pub(super) local_head: DbVersion,
    pub(super) peer_acked: Option<SyncCursor>,
    /// A push read that found nothing for the peer (only what it sent us,
    /// or what it may not receive): held back, not sent, until a tick
    /// (see `serve.rs`).
    pub(super) quiet: Option<Batch>,
    // federation requests (requests.rs)
    pub(super) next_request: u32,
    pub(super) outstanding: BTreeMap<RequestId, u64>,
    pub(super) catch_up_held: bool,
    // version negotiation (about.rs)
    pub(super) negotiation: Negotiation,
    // partial replicas (partial.rs)
    pub(super) own_filters: Vec<(crate::ids::CollectionName, String)>,
}

/// What the hellos settled: the session's version and features, or why the
/// peers cannot talk; and what the peer said about itself.
#[derive(Debug, Default)]
pub(super) struct Negotiation {
    pub(super) agreed: Option<Agreed>,
    pub(super) incompatible: Option<Incompatible>,
    pub(super) peer_software: Option<String>,
}

impl Session {
    /// A session for a connection in `role` between `local_peer` and
    /// `remote_peer` (peer ids as the transport authenticated them), resuming
    /// pulls from `cursor` (persisted for this peer; default for a new peer).
    /// `seed` must be fresh secret random bytes (it drives the key exchange;
    /// only a one-way hash of it is sent). Call [`Session::start`] next.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        role: Role,
        local_peer: Vec<u8>,
        remote_peer: Vec<u8>,
        key: GroupKey,
        seed: [u8; 32],
        cursor: SyncCursor,
        config: SyncConfig,
    ) -> Self {
        let (dialer, listener) = match role {
            Role::Dialer => (&local_peer, &remote_peer),
            Role::Listener => (&remote_peer, &local_peer),
        };
        let pake = Pake::start(&key, role, dialer, listener, &seed);
        Self {
            role,
            local_peer,
            remote_peer,
            nonce: hello_nonce(&seed),
            pake: Some(pake),
            config,
            phase: Phase::Hello,
            send_key: None,
            recv_key: None,
            send_seq: 0,
            recv_seq: 0,
            started_ms: 0,
            stats: SessionStats::default(),
            cursor,
            expected: cursor,
            request: None,
            applying: VecDeque::new(),
            next_resync_ms: 0,
            remote_head: cursor.position,
            serving: false,
            pushed: None,
            in_flight: VecDeque::new(),
            push_reading: false,
            local_head: DbVersion::default(),
            peer_acked: None,
            quiet: None,
            next_request: 0,
            outstanding: BTreeMap::new(),
            catch_up_held: false,
            negotiation: Negotiation::default(),
            own_filters: Vec::new(),
        }
    }

    /// Sends the hello and the PAKE message. `now_ms` starts the handshake
    /// timeout.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        self.started_ms = now_ms;
        let mut out = Vec::new();
        let Some(message) = self.pake.as_ref().map(|p| p.message().to_vec()) else {
            return out;
        };
        self.send(
            Message::Hello {
                version: version::HELLO_VERSION,
                nonce: self.nonce,
                tail: HelloTail::for_offer(self.config.offer),
            },
            &mut out,
        );
        self.send(Message::Pake { message }, &mut out);
        out
    }

    /// Whether the peer has proven membership.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The cursor persisted for this peer (its changes up to here are applied).
    pub fn cursor(&self) -> SyncCursor {
        self.cursor
    }

    /// How far the peer has acknowledged our changes, if it has said.
    pub fn peer_acked(&self) -> Option<SyncCursor> {
        self.peer_acked
    }

    /// The highest position of the peer's log we have heard of (its log's end
    /// when it last answered or pushed), to report how far behind we are.
    pub fn remote_head(&self) -> LogPosition {
        self.remote_head
    }

    /// The session's counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// How changes travel in this session: with their predecessors only
    /// once the hellos agreed on [`Feature::Predecessors`].
    fn layout(&self) -> ChangeLayout {
        ChangeLayout::agreed(self.negotiation.agreed.as_ref())
    }

    pub(super) fn send(&mut self, message: Message, out: &mut Vec<Action>) {
        let layout = self.layout();
        let frame = match &self.send_key {
            Some(key) => {
                let frame = codec::encode(&message, layout, Some((key, self.send_seq)));
                self.send_seq += 1;
                frame
            }
            None => codec::encode(&message, layout, None),
        };
        if let Message::Chunk(batch) | Message::Push(batch) = &message {
            self.stats.changes_out += batch.changes.len() as u64;
        }
        self.stats.frames_out += 1;
        self.stats.bytes_out += frame.len() as u64;
        out.push(Action::Send(frame));
    }

    pub(super) fn close(&mut self, reason: Rejection, tell_peer: bool, out: &mut Vec<Action>) {
        if self.is_closed() {
            return;
        }
        if tell_peer {
            self.send(Message::Rejected { reason }, out);
        }
        self.phase = Phase::Closed;
        out.push(Action::Close {
            reason,
            by_peer: false,
        });
    }

    /// The driver refuses the authenticated peer (its device admission is
    /// missing or revoked, issue 19): tells the peer why and closes. The
    /// `Rejected` frame goes plain (a peer takes a refusal sealed or not),
    /// so the driver may drop frames sealed before it unsent. Nothing else
    /// is sent or applied after this.
    pub fn refuse(&mut self, reason: Rejection) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        let frame = codec::encode(&Message::Rejected { reason }, self.layout(), None);
        self.stats.frames_out += 1;
        self.stats.bytes_out += frame.len() as u64;
        out.push(Action::Send(frame));
        self.phase = Phase::Closed;
        out.push(Action::Close {
            reason,
            by_peer: false,
        });
        out
    }

    /// The transport saw a frame whose length prefix exceeds the cap.
    pub fn frame_too_large(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.close(Rejection::TooLarge, true, &mut out);
        out
    }

    /// Handles one received payload (a frame without its length prefix).
    pub fn handle_payload(&mut self, payload: &[u8], now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        self.stats.frames_in += 1;
        self.stats.bytes_in += payload.len() as u64;
        let cap = if self.is_authenticated() {
            self.config.max_frame
        } else {
            codec::MAX_HANDSHAKE_FRAME.min(self.config.max_frame)
        };
        if payload.len() > cap {
            self.close(Rejection::TooLarge, true, &mut out);
            return out;
        }
        let key = self.recv_key.as_ref().map(|k| (k, self.recv_seq));
        let opened = match codec::decode(payload, self.layout(), key) {
            Ok(opened) => opened,
            Err(error) => {
                let reason = match error {
                    FrameError::BadMac => Rejection::BadMac,
                    FrameError::Garbage(_) => Rejection::Garbage,
                    FrameError::TooLarge { .. } => Rejection::TooLarge,
                };
                self.close(reason, true, &mut out);
                return out;
            }
        };
        if opened.sealed {
            self.recv_seq += 1;
        }
        // A peer may refuse us in any phase, sealed or not: the stream itself is
        // authenticated to that peer by the transport.
        if let Message::Rejected { reason } = opened.message {
            self.phase = Phase::Closed;
            out.push(Action::Close {
                reason,
                by_peer: true,
            });
            return out;
        }
        if self.is_authenticated() != opened.sealed {
            self.close(Rejection::BadMac, true, &mut out);
            return out;
        }
        // Take the phase out to own its keys; each handler sets the next
        // phase (or closes). `Hello` is only a placeholder while handling.
        match std::mem::replace(&mut self.phase, Phase::Hello) {
            Phase::Hello => self.on_hello(opened.message, &mut out),
            Phase::Pake { peer_nonce } => self.on_pake(peer_nonce, opened.message, &mut out),
            Phase::Proof(keys) => self.on_proof(keys, opened.message, now_ms, &mut out),
            Phase::Ready => {
                self.phase = Phase::Ready;
                self.on_data(opened.message, now_ms, &mut out);
            }
            Phase::Closed => self.phase = Phase::Closed,
        }
        out
    }

    fn on_hello(&mut self, message: Message, out: &mut Vec<Action>) {
        let Message::Hello {
            version,
            nonce,
            tail,
        } = message
        else {
            return self.close(Rejection::ProtocolViolation, true, out);
        };
        match version::negotiate(&self.config.offer, version, tail) {
            Ok(agreed) => self.negotiation.agreed = Some(agreed),
            Err(incompatible) => {
                self.negotiation.incompatible = Some(incompatible);
                return self.close(Rejection::UnsupportedVersion, true, out);
            }
        }
        self.phase = Phase::Pake { peer_nonce: nonce };
    }

    fn on_pake(&mut self, peer_nonce: [u8; 32], message: Message, out: &mut Vec<Action>) {
        let (Message::Pake { message }, Some(pake)) = (message, self.pake.take()) else {
            return self.close(Rejection::ProtocolViolation, true, out);
        };
        let own = pake.message().to_vec();
        let transcript = match self.role {
            Role::Dialer => Transcript {
                dialer: self.local_peer.clone(),
                listener: self.remote_peer.clone(),
                dialer_nonce: self.nonce,
                listener_nonce: peer_nonce,
                dialer_pake: own,
                listener_pake: message.clone(),
            },
            Role::Listener => Transcript {
                dialer: self.remote_peer.clone(),
                listener: self.local_peer.clone(),
                dialer_nonce: peer_nonce,
                listener_nonce: self.nonce,
                dialer_pake: message.clone(),
                listener_pake: own,
            },
        };
        let Ok(keys) = pake.finish(&message, &transcript) else {
            return self.close(Rejection::ProtocolViolation, true, out);
        };
        // The dialer confirms first; the listener waits for its proof.
        if self.role == Role::Dialer {
            let mac = keys.proof(Role::Dialer);
            self.send(Message::Proof { mac }, out);
        }
        self.phase = Phase::Proof(keys);
    }

    fn on_proof(
        &mut self,
        keys: SessionKeys,
        message: Message,
        now_ms: u64,
        out: &mut Vec<Action>,
    ) {
        let Message::Proof { mac } = message else {
            return self.close(Rejection::ProtocolViolation, true, out);
        };
        if !keys.verify(self.role.peer(), &mac) {
            return self.close(Rejection::WrongSecret, true, out);
        }
        if self.role == Role::Listener {
            // Sent plain, before the frame keys are in place.
            let mac = keys.proof(Role::Listener);
            self.send(Message::Proof { mac }, out);
        }
        self.send_key = Some(keys.frame_key(self.role));
        self.recv_key = Some(keys.frame_key(self.role.peer()));
        self.phase = Phase::Ready;
        out.push(Action::Authenticated);
        if self.uses(Feature::About) {
            let software = version::SOFTWARE.to_string();
            self.send(Message::About { software }, out);
        }
        self.send_filters(out);
        if !self.catch_up_held {
            self.request_catch_up(now_ms, out);
        }
    }

    fn on_data(&mut self, message: Message, now_ms: u64, out: &mut Vec<Action>) {
        match message {
            Message::Hello { .. } | Message::Pake { .. } | Message::Proof { .. } => {
                self.close(Rejection::ProtocolViolation, true, out)
            }
            Message::Rejected { .. } => unreachable!("handled before the phase dispatch"),
            Message::CatchUp {
                after,
                max_changes,
                max_bytes,
            } => self.on_catch_up(after, max_changes, max_bytes, out),
            Message::Chunk(batch) => self.on_chunk(batch, now_ms, out),
            Message::Push(batch) => self.on_push(batch, now_ms, out),
            Message::Ack { cursor } => self.on_ack(cursor, out),
            Message::Request { id, body } => self.on_request(id, body, out),
            Message::Response { id, body } => self.on_response(id, body, out),
            Message::About { software } => self.on_about(software, out),
            Message::Filters { filters } => self.on_filters(filters, out),
            Message::Leave { records } => self.on_leave(records, out),
        }
    }

    /// Advances time: enforces the handshake, request and ack timeouts, and
    /// starts the periodic re-sync.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let timeout = self.config.request_timeout_ms;
        let expired = |since: u64| now_ms.saturating_sub(since) >= timeout;
        match self.phase {
            Phase::Closed => return out,
            Phase::Hello | Phase::Pake { .. } | Phase::Proof(_) => {
                if expired(self.started_ms) {
                    self.close(Rejection::Timeout, true, &mut out);
                }
                return out;
            }
            Phase::Ready => {}
        }
        let stalled_request = self.request.is_some_and(|(_, since)| expired(since));
        let stalled_push = self
            .in_flight
            .front()
            .is_some_and(|(_, since)| expired(*since));
        self.expire_requests(now_ms, &mut out);
        if stalled_request || stalled_push {
            self.close(Rejection::Timeout, true, &mut out);
            return out;
        }
        self.send_quiet(now_ms, &mut out);
        if now_ms >= self.next_resync_ms && !self.catching_up() && !self.catch_up_held {
            self.request_catch_up(now_ms, &mut out);
        }
        out
    }
}
