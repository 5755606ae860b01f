//! The session driver: runs one sync [`Session`] with one peer over any
//! byte stream (a libp2p stream in the tab, an in-memory pipe in tests) —
//! the tab's counterpart of the native shell (`shoal-net` session_task.rs).
//! It reads frames (`frames.rs`), feeds them, time and local commits to
//! the session, and performs the session's actions first-in first-out on
//! the [`Replica`]: writing frames, reading the log, applying changes with
//! the cursor, serving requests; refuses a peer whose device admission is
//! missing or revoked (when it authenticates, and on a tick after the log
//! moved, as native nodes do every tick); and reports the peer's status
//! ([`StatusCell`]) as it goes.
//!
//! # How to call it
//!
//! ```ignore
//! let spec = SessionSpec {
//!     role: Role::Dialer,                       // the side that opened the stream
//!     local_peer: local_id.to_bytes(),          // peer ids as the transport authenticated them
//!     remote_peer: remote_id.to_bytes(),
//!     peer: remote_id.to_string(),              // the key of its cursor and status
//!     key: group_key,                           // GroupKey from the secret
//!     seed: random_seed()?,                     // 32 fresh random bytes
//!     config: tab_sync_config(),
//!     tick_ms: DEFAULT_TICK_MS,
//! };
//! let status = StatusCell::new(&spec.peer);     // read it for store.peers()
//! let control = Control::default();             // control.stop() ends it
//! let end = run_session(&replica, &timer, spec, &status, &control, stream).await;
//! ```
//!
//! In the browser `replica` is `store.replica()` and `timer` is
//! `BrowserTimer` (`store_replica.rs`). The future resolves when the session
//! ends ([`SessionEnd`]; the status says the same); dropping it also ends the
//! session — every apply is one storage transaction with the cursor, so
//! nothing is half-applied whenever it stops. The cursor is loaded from the
//! store at the start: a new session resumes where the last one stopped.
//!
//! All protocol decisions are the session's; this file only moves bytes and
//! calls the replica.

use crate::sync::frames::{Input, read_frames};
use crate::sync::replica::{Replica, Timer};
use crate::sync::spec::Asked;
pub use crate::sync::spec::{Control, DEFAULT_TICK_MS, SessionEnd, SessionSpec, tab_sync_config};
use crate::sync::status::{PeerState, StatusCell};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::stream::{Stream, StreamExt};
use shoal_core::sync::{Action, Rejection, Session};
use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// What the driver waits for between batches of actions.
enum Event {
    Input(Option<Input>),
    Committed(shoal_core::DbVersion),
    Tick,
    Stop,
    Resync,
}

/// Most frames read ahead while a write waits for the peer to read (the
/// native shell's reader task queues as many).
const READ_AHEAD: usize = 4;

/// Frames read, at most, after a failed write in search of the peer's
/// farewell (see `Shell::farewell`), and how long each may take.
const FAREWELL_FRAMES: usize = 8;
const FAREWELL_MS: u64 = 200;

/// The session and what its actions act on.
struct Shell<'a, R: Replica, T: Timer, W, F> {
    session: Session,
    replica: &'a R,
    timer: &'a T,
    writer: W,
    /// The frames of the stream.
    frames: F,
    /// Inputs read ahead while a write was blocked, handled first.
    ahead: VecDeque<Option<Input>>,
    peer: String,
    status: &'a StatusCell,
    timeout_ms: u64,
}

/// Runs one session over `stream` until it ends; see the module docs.
pub async fn run_session<R, T, S>(
    replica: &R,
    timer: &T,
    spec: SessionSpec,
    status: &StatusCell,
    control: &Control,
    stream: S,
) -> SessionEnd
where
    R: Replica,
    T: Timer,
    S: AsyncRead + AsyncWrite,
{
    status.update(|s| s.state = PeerState::Connecting);
    // Dropped before it ended, the status must not say connected.
    let _dropped = DropGuard(status);
    let cursor = match replica.peer_cursor(&spec.peer).await {
        Ok(cursor) => cursor,
        Err(e) => {
            let end = SessionEnd::Broken(format!("cannot read the peer's cursor: {e}"));
            finish(status, None, &end);
            return end;
        }
    };
    let session = Session::new(
        spec.role,
        spec.local_peer,
        spec.remote_peer,
        spec.key,
        spec.seed,
        cursor,
        spec.config.clone(),
    );
    let (reader, writer) = stream.split();
    let authenticated = Rc::new(Cell::new(false));
    let frames = Box::pin(read_frames(reader, spec.config.max_frame, authenticated.clone()).fuse());
    let mut shell = Shell {
        session,
        replica,
        timer,
        writer,
        frames,
        ahead: VecDeque::new(),
        peer: spec.peer,
        status,
        timeout_ms: spec.config.request_timeout_ms,
    };
    let head = replica.head();
    let mut seen = head.head();
    // The log head when the peer's admission was last checked: a change
    // of the devices collection (merged or local) moves it.
    let mut checked = None;
    let tick_ms = spec.tick_ms.max(1);
    let mut tick = timer.sleep(tick_ms);
    let mut actions: VecDeque<Action> = shell.session.start(timer.now_ms()).into();
    let end = 'session: loop {
        while let Some(action) = actions.pop_front() {
            match shell.perform(action).await {
                Ok(more) => actions.extend(more),
                Err(end) => break 'session end,
            }
        }
        authenticated.set(shell.session.is_authenticated());
        shell.report();
        let mut changed = head.changed(seen);
        let event = futures::future::poll_fn(|cx| {
            let inputs = Inputs {
                ahead: &mut shell.ahead,
                frames: &mut shell.frames,
            };
            poll_event(cx, control, inputs, &mut changed, tick.as_mut())
        })
        .await;
        let now = timer.now_ms();
        let next = match event {
            Event::Input(Some(Input::Payload(payload))) => {
                let out = shell.session.handle_payload(&payload, now);
                authenticated.set(shell.session.is_authenticated());
                out
            }
            Event::Input(Some(Input::TooLarge)) => shell.session.frame_too_large(),
            Event::Input(Some(Input::Broken(why))) => break SessionEnd::Broken(why),
            Event::Input(None) => break SessionEnd::Broken("the stream ended".into()),
            Event::Committed(version) => {
                seen = version;
                shell.session.local_committed(version)
            }
            Event::Tick => {
                tick = timer.sleep(tick_ms);
                let head_now = head.head();
                if shell.session.is_authenticated() && checked != Some(head_now) {
                    checked = Some(head_now);
                    if let Some(end) = shell.check_device().await {
                        break end;
                    }
                }
                shell.session.tick(now)
            }
            Event::Resync => shell.session.resync(now),
            Event::Stop => {
                let _ = shell.close_writer().await;
                break SessionEnd::Stopped;
            }
        };
        actions.extend(next);
    };
    shell.report();
    finish(
        status,
        shell.session.incompatible().map(|i| i.to_string()),
        &end,
    );
    end
}

/// Where the next input comes from: what was read ahead, then the stream.
struct Inputs<'s, F> {
    ahead: &'s mut VecDeque<Option<Input>>,
    frames: &'s mut F,
}

/// The next thing to act on: a stop or re-sync asked for, the tick, a local
/// commit, or a frame — in that order of precedence.
fn poll_event<F: Stream<Item = Input> + Unpin>(
    cx: &mut Context<'_>,
    control: &Control,
    inputs: Inputs<'_, F>,
    changed: &mut crate::sync::head::Changed,
    tick: Pin<&mut (dyn Future<Output = ()> + 'static)>,
) -> Poll<Event> {
    match control.poll_asked(cx) {
        Some(Asked::Stop) => return Poll::Ready(Event::Stop),
        Some(Asked::Resync) => return Poll::Ready(Event::Resync),
        None => {}
    }
    // The tick and commits first: each is ready now and then, and a peer
    // that never stops sending must not starve them.
    if tick.poll(cx).is_ready() {
        return Poll::Ready(Event::Tick);
    }
    if let Poll::Ready(version) = Pin::new(changed).poll(cx) {
        return Poll::Ready(Event::Committed(version));
    }
    if let Some(input) = inputs.ahead.pop_front() {
        return Poll::Ready(Event::Input(input));
    }
    if let Poll::Ready(input) = inputs.frames.poll_next_unpin(cx) {
        return Poll::Ready(Event::Input(input));
    }
    Poll::Pending
}

/// Marks the status disconnected if the session future is dropped before
/// it finished (the caller stopped waiting for it).
struct DropGuard<'a>(&'a StatusCell);

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        self.0.update(|s| {
            if !s.ended() {
                s.state = PeerState::Disconnected {
                    error: Some("the session was dropped".into()),
                };
            }
        });
    }
}

/// Sets the final state of the peer's status.
fn finish(status: &StatusCell, incompatible: Option<String>, end: &SessionEnd) {
    status.update(|s| {
        s.state = match (end, incompatible) {
            (SessionEnd::Closed { .. }, Some(why)) => PeerState::Incompatible { why },
            (SessionEnd::Closed { reason, by_peer }, None) if reason.is_membership_failure() => {
                PeerState::Rejected {
                    reason: *reason,
                    by_peer: *by_peer,
                }
            }
            (SessionEnd::Closed { reason, .. }, None) => PeerState::Disconnected {
                error: Some(reason.to_string()),
            },
            (SessionEnd::Broken(why), _) => PeerState::Disconnected {
                error: Some(why.clone()),
            },
            (SessionEnd::Stopped, _) => PeerState::Disconnected { error: None },
        };
        if let SessionEnd::Broken(why) = end {
            s.last_error = Some(why.clone());
        }
    });
}

impl<R: Replica, T: Timer, W: AsyncWrite + Unpin, F: Stream<Item = Input> + Unpin>
    Shell<'_, R, T, W, F>
{
    /// Performs one action; returns the actions it leads to, or how the
    /// session ended.
    async fn perform(&mut self, action: Action) -> Result<Vec<Action>, SessionEnd> {
        let now = self.timer.now_ms();
        Ok(match action {
            Action::Send(frame) => match self.write(&frame).await {
                Ok(()) => Vec::new(),
                // The farewell `Rejected` frame of a session already closed,
                // to a peer that hung up: the queued `Close` names the reason.
                Err(_) if self.session.is_closed() => Vec::new(),
                Err(end) => return self.farewell(now).await.ok_or(end),
            },
            Action::ReadChanges {
                purpose,
                after,
                max_changes,
                max_bytes,
            } => {
                let read = self
                    .replica
                    .read_changes(&self.peer, after, max_changes, max_bytes)
                    .await
                    .map_err(|e| {
                        SessionEnd::Broken(format!("cannot read the local log ({purpose:?}): {e}"))
                    })?;
                self.session
                    .changes_read(purpose, after, read, self.timer.now_ms())
            }
            Action::Apply { changes, cursor } => {
                match self.replica.apply(&self.peer, &changes, cursor, now).await {
                    Ok(_) => self.session.applied(cursor),
                    Err(e) => {
                        let why = format!("the peer's changes were refused: {e}");
                        self.status.update(|s| s.last_error = Some(why));
                        self.session.apply_failed()
                    }
                }
            }
            Action::Authenticated => {
                if let Some(end) = self.check_device().await {
                    return Err(end);
                }
                self.replica.session_started(&self.peer);
                self.status.update(|s| s.state = PeerState::Connected);
                Vec::new()
            }
            Action::CaughtUp { cursor } => {
                self.status.update(|s| {
                    s.caught_up = true;
                    s.last_sync_ms = Some(now);
                    s.cursor = cursor;
                });
                Vec::new()
            }
            Action::Serve { id, request } => {
                let response = self.replica.serve(&self.peer, request, now).await;
                self.session.respond(id, response)
            }
            // The tab asks no federation requests of its own.
            Action::Answer { .. } | Action::Unanswered { .. } => Vec::new(),
            Action::PeerFilters { filters } => {
                if filters.is_empty() {
                    Vec::new()
                } else {
                    // Not offered by the tab (tab_sync_config), so a session
                    // never agrees on it; a custom config that did is
                    // refused rather than serving a partial peer in full.
                    self.session.refuse(Rejection::ProtocolViolation)
                }
            }
            // Only a partial replica is told to drop records; the tab is
            // never one (see `tab_sync_config`).
            Action::Leave { .. } => Vec::new(),
            Action::Close { reason, by_peer } => {
                let _ = self.close_writer().await;
                return Err(SessionEnd::Closed { reason, by_peer });
            }
        })
    }

    /// Asks the replica whether the peer may stay (its device admission,
    /// issue 19); if not, refuses it by name at once — the `Rejected`
    /// frame, nothing queued before it — and says how the session ended.
    /// A replica that cannot answer refuses nothing (as on native nodes).
    async fn check_device(&mut self) -> Option<SessionEnd> {
        let reason = match self.replica.device_check(&self.peer).await {
            Ok(reason) => reason?,
            Err(e) => {
                let why = format!("cannot check the peer's device admission: {e}");
                self.status.update(|s| s.last_error = Some(why));
                return None;
            }
        };
        for action in self.session.refuse(reason) {
            match action {
                Action::Send(frame) => {
                    let _ = self.write(&frame).await;
                }
                Action::Close { reason, by_peer } => {
                    let _ = self.close_writer().await;
                    return Some(SessionEnd::Closed { reason, by_peer });
                }
                _ => {}
            }
        }
        Some(SessionEnd::Closed {
            reason,
            by_peer: false,
        })
    }

    /// Writes one frame, within the request timeout. While the write waits
    /// for the peer to read, the peer may itself be waiting for us to read
    /// what it writes: so, once the peer is authenticated, up to
    /// [`READ_AHEAD`] of its frames are read meanwhile and kept for later,
    /// as the native shell's reader task does.
    async fn write(&mut self, frame: &[u8]) -> Result<(), SessionEnd> {
        let read_ahead = self.session.is_authenticated();
        let Shell {
            writer,
            frames,
            ahead,
            timer,
            timeout_ms,
            ..
        } = self;
        let mut written = std::pin::pin!(async {
            writer.write_all(frame).await?;
            writer.flush().await
        });
        let mut sleep = timer.sleep(*timeout_ms);
        let written = futures::future::poll_fn(|cx| {
            if let Poll::Ready(out) = written.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            while read_ahead
                && ahead.len() < READ_AHEAD
                && !matches!(
                    ahead.back(),
                    Some(None | Some(Input::Broken(_) | Input::TooLarge))
                )
            {
                match frames.poll_next_unpin(cx) {
                    Poll::Ready(input) => ahead.push_back(input),
                    Poll::Pending => break,
                }
            }
            Poll::Pending
        })
        .await;
        match written {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(SessionEnd::Broken(format!("write failed: {e}"))),
            None => Err(SessionEnd::Closed {
                reason: Rejection::Timeout,
                by_peer: false,
            }),
        }
    }

    /// After a failed write: the peer may have hung up right after
    /// refusing this session, its `Rejected` frame still unread. Reads what
    /// is left (at most [`FAREWELL_FRAMES`] frames, each within
    /// [`FAREWELL_MS`]) and, once one closes the session, returns the
    /// actions that follow, so the session ends with the peer's reason
    /// rather than "write failed". `None`: nothing closed it.
    async fn farewell(&mut self, now: u64) -> Option<Vec<Action>> {
        for _ in 0..FAREWELL_FRAMES {
            let input = match self.ahead.pop_front() {
                Some(input) => input,
                None => within(self.timer, FAREWELL_MS, self.frames.next()).await?,
            };
            let Some(Input::Payload(payload)) = input else {
                return None;
            };
            let actions = self.session.handle_payload(&payload, now);
            if self.session.is_closed() {
                return Some(actions);
            }
        }
        None
    }

    /// Closes the stream (frames queued before were already written).
    async fn close_writer(&mut self) -> Option<std::io::Result<()>> {
        let writer = &mut self.writer;
        within(self.timer, 1_000, writer.close()).await
    }

    /// Copies the session's counters and positions into the status.
    fn report(&self) {
        let session = &self.session;
        self.status.update(|s| {
            s.stats = session.stats().clone();
            s.cursor = session.cursor();
            s.remote_head = session.remote_head().version;
            s.acked = session.peer_acked();
            s.software = session.peer_software().map(str::to_string);
        });
    }
}

/// `future`'s output, or `None` if `ms` pass first.
async fn within<T: Timer, F: Future>(timer: &T, ms: u64, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut sleep = timer.sleep(ms);
    futures::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
