//! The async shell around one sync [`Session`]: takes the frames its reader
//! task cuts from the libp2p stream (`frame_reader.rs`, which refuses
//! oversized ones before reading them, and any but tiny ones until the peer
//! has proved membership), feeds them and time and local commits to the
//! session, and performs its actions — writing frames, running store reads
//! and applies (where, is `quick_call.rs`'s; an apply not made here goes to
//! the session's `applier.rs`, which merges beside this task, and its
//! outcome comes back as an input) — until the session closes or the
//! stream breaks.
//!
//! All protocol decisions are the session's; this file only moves bytes and
//! reports status to the peer table.

use crate::applier::Applier;
use crate::frame_reader::{Input, read_frames};
use crate::levelling::Levelling;
use crate::quick_call::Called;
use crate::replica::{ApplyError, Replica};
use crate::rule_watch::RuleWatch;
use crate::session_link::{FedError, Requester, SessionCmd, SessionEnd};
use crate::status::now_ms;
use crate::status::{PeerState, PeerTable};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream};
use shoal_core::recon::ReconLimits;
use shoal_core::sync::{
    Action, GroupKey, Refusal, Rejection, Request, RequestError, RequestId, Response, Role,
    Session, SessionStats, SyncConfig,
};
use shoal_core::{Direction, SyncCursor};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

#[path = "session_status.rs"]
mod session_status;

/// Who the session is with and how it runs.
pub(crate) struct SessionSpec {
    pub(crate) local: PeerId,
    pub(crate) peer: PeerId,
    pub(crate) role: Role,
    pub(crate) key: GroupKey,
    pub(crate) sync: SyncConfig,
    pub(crate) recon: ReconLimits,
    /// How often to level with the peer by reconciliation (anti-entropy).
    pub(crate) anti_entropy: Option<Duration>,
    /// Whether to replicate at all (else only federation requests).
    pub(crate) auto_sync: bool,
    /// This session's own command channel, for the requests it makes itself.
    pub(crate) own: mpsc::Sender<SessionCmd>,
}

/// The session and what its actions act on.
struct Shell {
    session: Session,
    /// Merges the peer's batches beside this task, in order.
    applier: Applier,
    writer: futures::io::WriteHalf<Stream>,
    replica: Arc<dyn Replica>,
    table: PeerTable,
    peer: PeerId,
    timeout: Duration,
    recon: ReconLimits,
    /// Our requests waiting for answers.
    waiting: HashMap<RequestId, oneshot::Sender<Result<Response, FedError>>>,
    /// Set when the session held its first catch-up to reconcile instead.
    levelling: Option<Levelling>,
    /// Whether records move on their own (else only by explicit requests).
    auto_sync: bool,
    /// The sharing rules against what they held back when last levelled
    /// with the peer, to level what a widened rule opens.
    rules: RuleWatch,
    /// The session's statistics as last added to the peer's totals.
    reported: SessionStats,
    /// When the catch-up under way was asked for.
    catching_up: Option<Instant>,
    /// The peer's acknowledgement of our log as last persisted.
    acked_saved: Option<SyncCursor>,
}

impl Shell {
    /// Performs one action; returns the actions it leads to, or how the session ended.
    async fn perform(&mut self, action: Action) -> Result<Vec<Action>, SessionEnd> {
        let peer = self.peer;
        Ok(match action {
            Action::Send(frame) => {
                let writer = &mut self.writer;
                let written = tokio::time::timeout(self.timeout, async {
                    writer.write_all(&frame).await?;
                    writer.flush().await
                })
                .await;
                match written {
                    Ok(Ok(())) => Vec::new(),
                    // The session already decided to close and this is its
                    // farewell `Rejected` frame, which a peer that reset the
                    // stream cannot take: keep the named reason (the queued
                    // `Close` action reports it), not a broken stream.
                    Ok(Err(_)) | Err(_) if self.session.is_closed() => Vec::new(),
                    Ok(Err(e)) => return Err(SessionEnd::Broken(format!("write failed: {e}"))),
                    Err(_) => {
                        return Err(SessionEnd::Closed {
                            reason: Rejection::Timeout,
                            by_peer: false,
                        });
                    }
                }
            }
            Action::ReadChanges {
                purpose,
                after,
                max_changes,
                max_bytes,
            } => {
                let read = crate::quick_call::read_changes(
                    &self.replica,
                    peer,
                    purpose,
                    after,
                    max_changes,
                    max_bytes,
                )
                .await;
                match read {
                    Ok(Ok(read)) => {
                        // Noted before the read goes out, whether or not
                        // this node levels by itself (it only adds flows):
                        // unnoted, what it passed over would be behind the
                        // peer's cursor for good, so the session ends.
                        if !self.rules.held_back(&read.held_back).await {
                            return Err(SessionEnd::Broken(
                                "cannot record what the sharing rules held back from the peer"
                                    .into(),
                            ));
                        }
                        self.session.changes_read(purpose, after, read, now_ms())
                    }
                    Ok(Err(e)) => {
                        return Err(SessionEnd::Broken(format!(
                            "cannot read the local log ({purpose:?}): {e}"
                        )));
                    }
                    Err(e) => return Err(SessionEnd::Broken(format!("log read panicked: {e}"))),
                }
            }
            // A small batch with none before it is merged here (a live
            // push's shortest way); any other goes to the applier, and the
            // session takes in the next frame while it is merged.
            Action::Apply { changes, cursor } => {
                if self.applier.idle() && crate::quick_call::is_quick(&changes) {
                    let applied =
                        crate::quick_call::apply(&self.replica, peer, changes, cursor).await;
                    self.merged(cursor, applied)?
                } else {
                    self.applier.submit(changes, cursor).await;
                    Vec::new()
                }
            }
            Action::Authenticated => {
                if let Some(reason) = crate::admission::refusal(&self.replica, peer).await {
                    let end = crate::admission::refuse_now(
                        &mut self.session,
                        &mut self.writer,
                        self.timeout,
                        reason,
                    )
                    .await;
                    return Err(end);
                }
                self.table.mark_connected(peer);
                let replica = self.replica.clone();
                let started =
                    tokio::task::spawn_blocking(move || replica.session_started(&peer)).await;
                if !matches!(started, Ok(Ok(()))) {
                    tracing::warn!(%peer, "could not reset what the peer sent before: {started:?}");
                }
                // Before any of the peer's changes is applied: the baseline
                // a widened rule is compared with.
                if self.auto_sync {
                    self.rules.load().await;
                }
                if let Some(levelling) = self.levelling.as_mut().filter(|l| l.rejoin) {
                    levelling.start(self.replica.clone(), peer, self.recon);
                }
                Vec::new()
            }
            Action::Serve { id, request } => {
                let level = matches!(request, Request::Level { .. });
                let replica = self.replica.clone();
                let limits = self.recon;
                let served =
                    tokio::task::spawn_blocking(move || replica.serve(&peer, request, &limits))
                        .await
                        .unwrap_or(Response::Refused(shoal_core::sync::Refusal::Failed));
                // The peer started sending us a collection (its rule
                // widened): what its catch-up left out is behind our cursor.
                if level
                    && served == Response::Levelling
                    && self.auto_sync
                    && let Some(levelling) = self.levelling.as_mut()
                {
                    levelling.start_again(self.replica.clone(), peer, self.recon);
                }
                self.session.respond(id, served)
            }
            Action::Answer { id, response } => {
                if let Some(reply) = self.waiting.remove(&id) {
                    let _ = reply.send(Ok(response));
                }
                Vec::new()
            }
            Action::Unanswered { id } => {
                if let Some(reply) = self.waiting.remove(&id) {
                    let _ = reply.send(Err(FedError::TimedOut));
                }
                Vec::new()
            }
            Action::CaughtUp { cursor } => {
                if let Some(asked) = self.catching_up.take() {
                    self.table.counters().caught_up(asked.elapsed());
                }
                self.table.update(peer, |s| {
                    s.last_sync_ms = Some(now_ms());
                    s.cursor = cursor;
                });
                Vec::new()
            }
            Action::PeerFilters { filters } => {
                let replica = self.replica.clone();
                let set =
                    tokio::task::spawn_blocking(move || replica.set_peer_filters(&peer, &filters))
                        .await;
                if !matches!(set, Ok(Ok(()))) {
                    // Never serve a partial peer as a full one.
                    return Err(SessionEnd::Broken(format!(
                        "cannot keep the peer's partial-replica filters: {set:?}"
                    )));
                }
                Vec::new()
            }
            Action::Leave { records } => {
                let replica = self.replica.clone();
                let left =
                    tokio::task::spawn_blocking(move || replica.leave(&peer, &records)).await;
                match left {
                    Ok(Ok(n)) if n > 0 => {
                        tracing::debug!(%peer, "{n} records left this partial replica")
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, "cannot drop records that left the filters: {e}")
                    }
                    Err(e) => tracing::error!(%peer, "leave panicked: {e}"),
                }
                Vec::new()
            }
            Action::Close { reason, by_peer } => {
                // Frames queued before this action were already written.
                let _ = tokio::time::timeout(Duration::from_secs(1), self.writer.close()).await;
                return Err(SessionEnd::Closed { reason, by_peer });
            }
        })
    }

    /// Compares the sharing rules with what they held back when this node
    /// last levelled with the peer (persisted, so a rule widened while the
    /// peer was away counts too): a collection that starts flowing from the
    /// peer is levelled with it at once (cursors moved past what the rule
    /// held back, and only a walk finds it); one that starts flowing to the
    /// peer is announced with [`Request::Level`], for the peer to walk.
    /// Without this, only anti-entropy (which can be off) would ever move
    /// that old data. Each reports back with [`SessionCmd::RulesLevelled`].
    async fn watch_rules(&mut self) {
        if !self.auto_sync || !self.session.is_authenticated() || self.levelling.is_none() {
            return;
        }
        let opened = self.rules.check().await;
        let peer = self.peer;
        let Some(levelling) = self.levelling.as_mut() else {
            return;
        };
        if !opened.inbound.is_empty() {
            levelling.opened.extend(opened.inbound);
            levelling.start_again(self.replica.clone(), peer, self.recon);
        }
        if opened.outbound.is_empty() {
            return;
        }
        let requester = levelling.requester.clone();
        tokio::spawn(async move {
            for collection in opened.outbound {
                let request = Request::Level {
                    collection: collection.clone(),
                };
                // Under its own rules the peer may not take it: nothing to
                // level then (its own baseline levels it once it does).
                let ok = match requester.ask(request).await {
                    Ok(_) | Err(FedError::Refused(Refusal::NotShared)) => {
                        tracing::debug!(%peer, %collection, "peer asked to level");
                        true
                    }
                    Err(e) => {
                        tracing::info!(%peer, %collection, "peer not levelling: {e}");
                        false
                    }
                };
                let flows = vec![(collection, Direction::ToPeer)];
                let _ = requester
                    .send(SessionCmd::RulesLevelled { flows, ok })
                    .await;
            }
        });
    }

    /// Persists how far the peer has applied our log, when that moved (at
    /// most every tick, and as the session ends): tombstone collection
    /// waits for every known peer's acknowledgement.
    async fn save_acked(&mut self) {
        let Some(acked) = self.session.peer_acked() else {
            return;
        };
        if self.acked_saved.is_some_and(|s| s.reach() >= acked.reach()) {
            return;
        }
        let (replica, peer) = (self.replica.clone(), self.peer);
        let saved =
            tokio::task::spawn_blocking(move || replica.note_peer_acked(&peer, acked)).await;
        match saved {
            Ok(Ok(())) => self.acked_saved = Some(acked),
            Ok(Err(e)) => tracing::warn!(%peer, "cannot persist the peer's acknowledgement: {e}"),
            Err(e) => tracing::warn!(%peer, "cannot persist the peer's acknowledgement: {e}"),
        }
    }

    /// What a merge's outcome leads to: the cursor acknowledged, or the
    /// session ended (nothing after a batch not merged is merged) — with
    /// the peer refused when its batch was at fault, without a word to it
    /// when this node's store was.
    fn merged(
        &mut self,
        cursor: SyncCursor,
        outcome: Called<(), ApplyError>,
    ) -> Result<Vec<Action>, SessionEnd> {
        let peer = self.peer;
        match outcome {
            Ok(Ok(())) => Ok(self.session.applied(cursor)),
            Ok(Err(ApplyError::Refused(e))) => {
                tracing::warn!(%peer, "changes from peer refused: {e}");
                Ok(self.session.apply_failed())
            }
            Ok(Err(ApplyError::Local(e))) => Err(SessionEnd::LocalFailure(format!(
                "this node could not merge the peer's changes: {e}"
            ))),
            Err(e) => {
                tracing::error!(%peer, "apply panicked: {e}");
                Ok(self.session.apply_failed())
            }
        }
    }
}

/// Runs one session over `stream` until it ends.
pub(crate) async fn run(
    stream: Stream,
    spec: SessionSpec,
    replica: Arc<dyn Replica>,
    table: PeerTable,
    mut commands: mpsc::Receiver<SessionCmd>,
) -> SessionEnd {
    let peer = spec.peer;
    let cursor = {
        let replica = replica.clone();
        match tokio::task::spawn_blocking(move || replica.peer_cursor(&peer)).await {
            Ok(Ok(cursor)) => cursor,
            Ok(Err(e)) => return SessionEnd::Broken(format!("cannot read the cursor: {e}")),
            Err(e) => return SessionEnd::Broken(format!("cursor read panicked: {e}")),
        }
    };
    // No cursor but records: the cursor table was lost (or this replica was
    // restored, or it meets a peer with data of its own). Reconcile first
    // instead of fetching the peer's whole log.
    // A partial replica's own filters, told to the peer at session start.
    let own_filters = {
        let replica = replica.clone();
        match tokio::task::spawn_blocking(move || replica.own_filters()).await {
            Ok(Ok(filters)) => filters,
            Ok(Err(e)) => return SessionEnd::Broken(format!("cannot read own filters: {e}")),
            Err(e) => return SessionEnd::Broken(format!("filter read panicked: {e}")),
        }
    };
    // (A partial replica fetches by catch-up: its filtered collections are
    // not reconciled.)
    let rejoin = spec.auto_sync && own_filters.is_empty() && cursor == SyncCursor::default() && {
        let replica = replica.clone();
        matches!(
            tokio::task::spawn_blocking(move || replica.has_records()).await,
            Ok(Ok(true))
        )
    };
    let mut nonce = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut nonce) {
        return SessionEnd::Broken(format!("no randomness for the handshake: {e}"));
    }
    let mut session = Session::new(
        spec.role,
        spec.local.to_bytes(),
        peer.to_bytes(),
        spec.key,
        nonce,
        cursor,
        spec.sync.clone(),
    );
    session.set_own_filters(&own_filters);
    if rejoin || !spec.auto_sync {
        session.hold_catch_up();
    }
    let (reader, writer) = stream.split();
    let (inputs_tx, mut inputs) = mpsc::channel(4);
    let (progress, progress_rx) = watch::channel((0u64, false));
    let reader_task = tokio::spawn(read_frames(
        reader,
        spec.sync.max_frame,
        progress_rx,
        inputs_tx,
    ));
    let mut handled = 0u64;
    let timeout = Duration::from_millis(spec.sync.request_timeout_ms);
    let counters = table.counters().clone();
    let mut shell = Shell {
        session,
        applier: Applier::start(replica.clone(), peer),
        writer,
        replica: replica.clone(),
        table,
        peer,
        timeout,
        recon: spec.recon,
        waiting: HashMap::new(),
        levelling: Some(Levelling {
            counters: counters.clone(),
            requester: Requester::new(spec.own.clone()),
            rejoin,
            task: None,
            again: false,
            opened: Vec::new(),
        }),
        auto_sync: spec.auto_sync,
        // The rules as the session starts: the baseline if the peer has
        // none yet, so a rule widened from here on (also before
        // authentication) is noticed.
        rules: RuleWatch::new(replica.clone(), peer).await,
        reported: SessionStats::default(),
        catching_up: None,
        acked_saved: None,
    };
    let mut anti_entropy =
        tokio::time::interval(spec.anti_entropy.unwrap_or(Duration::from_secs(86_400)));
    anti_entropy.tick().await;
    let mut head = replica.watch_head();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut actions: VecDeque<Action> = shell.session.start(now_ms()).into();
    shell
        .table
        .update(peer, |s| s.state = PeerState::Connecting);
    let end = 'session: loop {
        while let Some(action) = actions.pop_front() {
            match shell.perform(action).await {
                Ok(more) => actions.extend(more),
                Err(end) => break 'session end,
            }
        }
        shell.report();
        let next = tokio::select! {
            input = inputs.recv() => match input {
                Some(Input::Payload(payload)) => {
                    let actions = shell.session.handle_payload(&payload, now_ms());
                    handled += 1;
                    progress.send_replace((handled, shell.session.is_authenticated()));
                    actions
                }
                Some(Input::TooLarge) => shell.session.frame_too_large(),
                Some(Input::Broken(e)) => break SessionEnd::Broken(e),
                None => break SessionEnd::Broken("stream closed".into()),
            },
            (cursor, outcome) = shell.applier.next() => match shell.merged(cursor, outcome) {
                Ok(actions) => actions,
                Err(end) => break end,
            },
            changed = head.changed() => match changed {
                Ok(()) => {
                    let version = *head.borrow_and_update();
                    shell.session.local_committed(version)
                }
                Err(_) => break SessionEnd::Broken("store closed".into()),
            },
            command = commands.recv() => match command {
                Some(SessionCmd::Resync) => {
                    // Asked to sync now: also level by reconciliation, so what
                    // cursors cannot see (a widened sharing rule) moves too.
                    if let Some(levelling) = shell.levelling.as_mut().filter(|_| spec.anti_entropy.is_some()) {
                        levelling.start(shell.replica.clone(), peer, shell.recon);
                    }
                    shell.session.resync(now_ms())
                }
                Some(SessionCmd::Request { request, reply }) => {
                    match shell.session.request(request, now_ms()) {
                        Ok((id, actions)) => {
                            shell.waiting.insert(id, reply);
                            actions
                        }
                        Err(RequestError::Unsupported(feature)) => {
                            let _ = reply.send(Err(FedError::PeerTooOld(feature)));
                            Vec::new()
                        }
                        Err(RequestError::NotReady | RequestError::Busy) => {
                            let _ = reply.send(Err(FedError::Unreachable));
                            Vec::new()
                        }
                    }
                }
                Some(SessionCmd::FastForward(cursor)) => shell.session.fast_forward(cursor, now_ms()),
                Some(SessionCmd::RulesLevelled { flows, ok }) => {
                    shell.rules.levelled(flows, ok).await;
                    Vec::new()
                }
                None => break SessionEnd::Broken("node stopped".into()),
            },
            _ = anti_entropy.tick(), if spec.anti_entropy.is_some() && shell.session.is_authenticated() => {
                if let Some(levelling) = shell.levelling.as_mut() {
                    levelling.start(shell.replica.clone(), peer, shell.recon);
                }
                Vec::new()
            }
            _ = tick.tick() => {
                if shell.session.is_authenticated()
                    && let Some(reason) = crate::admission::refusal(&shell.replica, peer).await
                {
                    let (session, writer) = (&mut shell.session, &mut shell.writer);
                    break crate::admission::refuse_now(session, writer, timeout, reason).await;
                }
                shell.watch_rules().await;
                shell.save_acked().await;
                if let Some(levelling) = shell.levelling.as_mut().filter(|l| l.again && !l.running()) {
                    levelling.start(shell.replica.clone(), peer, shell.recon);
                }
                shell.session.tick(now_ms())
            }
        };
        actions.extend(next);
    };
    reader_task.abort();
    shell.applier.finish().await;
    shell.save_acked().await;
    // Stops the reconciliation task; waiting requesters see the peer unreachable.
    shell.levelling = None;
    shell.waiting.clear();
    shell.finish(end)
}
