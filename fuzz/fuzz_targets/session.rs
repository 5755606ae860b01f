//! The sync session state machine (`shoal_core::sync::Session`) fed an
//! arbitrary sequence of frames and driver events, as the network shell
//! would feed it: frames from an honest peer that completed the handshake
//! (so sealed bodies get past the MAC), raw payloads, typed messages,
//! answers to its catch-ups, pushes, ticks, local commits, federation
//! requests both ways, and store reads and applies that succeed or fail.
//!
//! Input: byte 0 chooses role, whether the honest handshake runs, whether
//! the first catch-up is held; the rest is an op stream (`shoal_fuzz::ops`).
//!
//! Checked after every step, besides "never panics": every frame the
//! session sends fits its cap and opens at an honest peer; reads and
//! applies stay within the configured bounds; answers and timeouts come only
//! for requests that are outstanding; `Authenticated` and `Close` come at
//! most once, and after `Close` nothing comes at all; live heap stays under
//! a cap. At the end, after a tick past every timeout, the session is either
//! closed with a named rejection or authenticated with nothing outstanding.

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shoal_core::sync::auth::Role;
use shoal_core::sync::codec::MAX_HANDSHAKE_FRAME;
use shoal_core::sync::federation::{Refusal, Response};
use shoal_core::sync::{Action, Batch, Message, RequestId, Session, SyncConfig};
use shoal_core::{DbVersion, LogPosition, LogRead, SyncCursor};
use shoal_fuzz::peer::{HonestPeer, LOCAL_ID, PEER_ID};
use shoal_fuzz::{alloc, build, ops::Ops};
use std::collections::{BTreeSet, VecDeque};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Most heap the whole run may hold at once (inputs are a few KiB).
const HEAP_CAP: usize = 64 << 20;

fn config() -> SyncConfig {
    SyncConfig {
        max_changes: 16,
        max_bytes: 64 * 1024,
        max_frame: 256 * 1024,
        request_timeout_ms: 1_000,
        resync_interval_ms: 5_000,
        max_unacked: 2,
        ..SyncConfig::default()
    }
}

/// The shell's part: performs actions as `shoal-net` does, with outcomes
/// the fuzzer chose, and checks what the session asks for.
struct Driver {
    session: Session,
    peer: HonestPeer,
    honest: bool,
    config: SyncConfig,
    now: u64,
    /// Payloads on their way to the session.
    inbox: VecDeque<Vec<u8>>,
    authenticated: bool,
    closed: bool,
    /// Our requests not yet answered or expired.
    ours: BTreeSet<RequestId>,
    /// Requests the session sent the peer and the peer has not answered.
    theirs: Vec<RequestId>,
    /// The last catch-up the session sent.
    asked: Option<SyncCursor>,
    /// Where the peer's pushes continue from.
    pushed: SyncCursor,
    /// The end of the local log the reads serve.
    head: u64,
    read_len: u64,
    cut_reads: bool,
    fail_apply: bool,
    serve_with: Response,
}

impl Driver {
    fn deliver(&mut self, payload: Vec<u8>) {
        self.inbox.push_back(payload);
        self.run();
    }

    /// Delivers queued payloads, performing every action before the next
    /// payload (as the shell does).
    fn run(&mut self) {
        while let Some(payload) = self.inbox.pop_front() {
            let actions = self.session.handle_payload(&payload, self.now);
            self.perform(actions);
        }
    }

    fn perform(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            assert!(!self.closed, "an action after Close: {action:?}");
            let more = match action {
                Action::Send(frame) => {
                    self.sent(&frame);
                    Vec::new()
                }
                Action::ReadChanges {
                    purpose,
                    after,
                    max_changes,
                    max_bytes,
                } => {
                    assert!((1..=self.config.max_changes).contains(&max_changes));
                    assert!((1..=self.config.max_bytes).contains(&max_bytes));
                    let read = self.read(after, max_changes);
                    self.session.changes_read(purpose, after, read, self.now)
                }
                Action::Apply { changes, cursor } => {
                    assert!(
                        changes.len() <= self.config.max_frame,
                        "more changes than bytes"
                    );
                    if self.fail_apply {
                        self.session.apply_failed()
                    } else {
                        self.session.applied(cursor)
                    }
                }
                Action::Authenticated => {
                    assert!(!self.authenticated, "authenticated twice");
                    self.authenticated = true;
                    Vec::new()
                }
                Action::CaughtUp { .. }
                | Action::PeerFilters { .. }
                | Action::Leave { .. } => Vec::new(),
                Action::Serve { id, .. } => self.session.respond(id, self.serve_with.clone()),
                Action::Answer { id, .. } | Action::Unanswered { id } => {
                    assert!(
                        self.ours.remove(&id),
                        "an answer to {id}, which is not outstanding"
                    );
                    Vec::new()
                }
                Action::Close { .. } => {
                    self.closed = true;
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    /// A frame the session sent: it must fit the cap and, with an honest
    /// peer, open there.
    fn sent(&mut self, frame: &[u8]) {
        let cap = if self.peer.is_sealing() {
            self.config.max_frame
        } else {
            MAX_HANDSHAKE_FRAME
        };
        assert!(
            frame.len() <= 4 + self.config.max_frame,
            "a frame over the cap"
        );
        match self.peer.receive(frame, cap) {
            Ok((message, answers)) => {
                match message {
                    Message::CatchUp { after, .. } => self.asked = Some(after),
                    Message::Request { id, .. } => self.theirs.push(id),
                    _ => {}
                }
                if self.honest {
                    self.inbox.extend(answers);
                }
            }
            Err(e) => assert!(!self.honest, "the honest peer cannot read a frame: {e}"),
        }
    }

    /// A read of the local log after `after`: one change per version.
    fn read(&self, after: SyncCursor, max_changes: u32) -> LogRead {
        let from = match after.position.seq {
            u32::MAX => after.position.version.0.saturating_add(1),
            _ => after.position.version.0,
        };
        let until = self
            .head
            .min(from.saturating_add(self.read_len.min(u64::from(max_changes))));
        let mut u = Unstructured::new(&[]);
        let changes: Vec<_> = (from.max(1)..=until)
            .filter_map(|v| {
                let at = LogPosition {
                    version: DbVersion(v),
                    seq: 0,
                };
                build::change_at(&mut u, None, at).ok()
            })
            .collect();
        let more = until < self.head;
        let last = LogPosition {
            version: DbVersion(until),
            seq: 0,
        };
        LogRead {
            partial: (more && self.cut_reads && !changes.is_empty()).then_some(1),
            upto: if more {
                last
            } else {
                LogPosition::after_version(DbVersion(self.head))
            },
            changes,
            more,
            leaves: Vec::new(),
            held_back: Default::default(),
        }
    }

    fn batch(&self, after: SyncCursor, data: &[u8]) -> Batch {
        let mut u = Unstructured::new(data);
        let mut at = after.position;
        let mut changes = Vec::new();
        for _ in 0..u.int_in_range(0..=4usize).unwrap_or(0) {
            if u.ratio(1, 2).unwrap_or(false) {
                at = LogPosition {
                    version: DbVersion(at.version.0.saturating_add(1)),
                    seq: 0,
                };
            }
            match build::change_at(&mut u, None, at) {
                Ok(change) => changes.push(change),
                Err(_) => break,
            }
        }
        let more = u.arbitrary().unwrap_or(false);
        Batch {
            after,
            partial: (more && u.arbitrary().unwrap_or(false)).then_some(1),
            upto: if more {
                at
            } else {
                LogPosition::after_version(at.version)
            },
            changes,
            more,
        }
    }

    fn op(&mut self, op: u8, data: &[u8]) {
        match op % 11 {
            0 => {
                let payload = self.peer.seal_raw(data);
                self.deliver(payload);
            }
            1 => self.deliver(data.to_vec()),
            2 => {
                if let Ok(message) = build::message(&mut Unstructured::new(data)) {
                    let payload = self.peer.seal(&message);
                    self.deliver(payload);
                }
            }
            3 => {
                let batch = self.batch(self.asked.unwrap_or_default(), data);
                self.pushed = batch.next_cursor();
                let payload = self.peer.seal(&Message::Chunk(batch));
                self.deliver(payload);
            }
            4 => {
                let batch = self.batch(self.pushed, data);
                self.pushed = batch.next_cursor();
                let payload = self.peer.seal(&Message::Push(batch));
                self.deliver(payload);
            }
            5 => {
                let mut u = Unstructured::new(data);
                self.now += u64::from(u.arbitrary::<u16>().unwrap_or(500));
                let actions = self.session.tick(self.now);
                self.perform(actions);
            }
            6 => {
                self.head += 1 + u64::from(data.first().copied().unwrap_or(0) % 4);
                let actions = self.session.local_committed(DbVersion(self.head));
                self.perform(actions);
            }
            7 => {
                if let Ok(body) = build::request(&mut Unstructured::new(data)) {
                    match self.session.request(body, self.now) {
                        Ok((id, actions)) => {
                            assert!(self.ours.insert(id), "request id {id} reused");
                            self.perform(actions);
                        }
                        Err(_) => {
                            assert!(!self.session.is_authenticated() || self.ours.len() >= 64)
                        }
                    }
                }
            }
            8 => {
                let actions = match data.first() {
                    Some(b) if b % 2 == 1 => {
                        let cursor = build::cursor(&mut Unstructured::new(&data[1..]));
                        self.session
                            .fast_forward(cursor.unwrap_or_default(), self.now)
                    }
                    _ => self.session.resync(self.now),
                };
                self.perform(actions);
            }
            9 => {
                let mut u = Unstructured::new(data);
                let flags: u8 = u.arbitrary().unwrap_or(0);
                self.fail_apply = flags & 1 != 0;
                self.cut_reads = flags & 2 != 0;
                self.read_len = u64::from(u.arbitrary::<u8>().unwrap_or(2) % 8);
                self.serve_with =
                    build::response(&mut u).unwrap_or(Response::Refused(Refusal::NotShared));
            }
            _ => {
                let mut u = Unstructured::new(data);
                let id = match self.theirs.len() {
                    0 => RequestId(u.arbitrary().unwrap_or(0)),
                    n => self.theirs.remove(u.choose_index(n).unwrap_or(0)),
                };
                if let Ok(body) = build::response(&mut u) {
                    let payload = self.peer.seal(&Message::Response { id, body });
                    self.deliver(payload);
                }
            }
        }
    }

    /// After `Close`, every entry point answers nothing.
    fn check_silent(&mut self) {
        let now = self.now;
        let mut all = Vec::new();
        all.extend(self.session.handle_payload(&[0, 1, 2], now));
        all.extend(self.session.tick(now + 1_000_000));
        all.extend(self.session.resync(now));
        all.extend(self.session.local_committed(DbVersion(u64::MAX)));
        all.extend(self.session.applied(SyncCursor::default()));
        all.extend(self.session.respond(RequestId(0), Response::Levelling));
        all.extend(self.session.fast_forward(SyncCursor::default(), now));
        all.extend(self.session.frame_too_large());
        all.extend(self.session.apply_failed());
        assert!(all.is_empty(), "a closed session acted: {all:?}");
        assert!(
            self.session
                .request(shoal_core::sync::federation::Request::Collections, now)
                .is_err()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let role = if mode & 1 == 0 {
        Role::Dialer
    } else {
        Role::Listener
    };
    let honest = mode & 2 == 0;
    let key = shoal_fuzz::group_key();
    let peer_key = if mode & 8 == 0 {
        key.clone()
    } else {
        shoal_core::sync::GroupKey::from_random([1; 32])
    };
    alloc::reset_peak();
    let baseline = alloc::live();
    let config = config();
    let mut session = Session::new(
        role,
        LOCAL_ID.to_vec(),
        PEER_ID.to_vec(),
        key,
        [7; 32],
        SyncCursor::default(),
        config.clone(),
    );
    if mode & 4 != 0 {
        session.hold_catch_up();
    }
    let mut driver = Driver {
        session,
        peer: HonestPeer::new(role.peer(), &peer_key, [9; 32]),
        honest: honest && mode & 8 == 0,
        config,
        now: 0,
        inbox: VecDeque::new(),
        authenticated: false,
        closed: false,
        ours: BTreeSet::new(),
        theirs: Vec::new(),
        asked: None,
        pushed: SyncCursor::default(),
        head: 0,
        read_len: 2,
        cut_reads: false,
        fail_apply: false,
        serve_with: Response::Refused(Refusal::NotShared),
    };
    let start = driver.session.start(0);
    driver.perform(start);
    if honest {
        let opening = driver.peer.opening();
        driver.inbox.extend(opening);
        driver.run();
    }
    for (op, data) in Ops::new(rest) {
        driver.op(op, data);
        driver.run();
        let held = alloc::peak().saturating_sub(baseline);
        assert!(held < HEAP_CAP, "the session held {held} bytes");
        assert_eq!(driver.closed, driver.session.is_closed());
    }
    // Past every timeout: closed by name, or authenticated with nothing pending.
    driver.now += 2 * driver.config.request_timeout_ms + 1;
    let actions = driver.session.tick(driver.now);
    driver.perform(actions);
    if driver.session.is_closed() {
        assert!(driver.closed, "closed without a Close action");
        driver.check_silent();
    } else {
        assert!(
            driver.session.is_authenticated(),
            "neither closed nor authenticated after the handshake timeout"
        );
        assert!(
            driver.ours.is_empty(),
            "requests outstanding past their timeout: {:?}",
            driver.ours
        );
    }
});
