//! The swarm loop behind a [`Node`](crate::Node): it owns the libp2p swarm,
//! the one sync session per connected peer (the peer with the smaller id
//! opens the stream, the other accepts; a newer session replaces an older
//! one), dialing and redialing configured peers and the members of the
//! address book (`finder.rs`), mDNS discoveries, and when to keep away
//! from a peer (`backoff.rs` holds the deadlines). It answers the node handle's
//! [`Command`]s.
//!
//! It must not speak the protocol itself: that is the sessions'
//! (`session_task.rs` around `shoal-core`).

use crate::SYNC_PROTOCOL;
use crate::backoff::Backoffs;
use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::command::{Command, NetError};
use crate::config::NodeConfig;
use crate::conn_paths::ConnPaths;
use crate::finder::Finder;
use crate::liveness::Liveness;
use crate::relay_client::{Relays, Verdict};
use crate::replica::Replica;
use crate::session_link::{SessionCmd, SessionEnd};
use crate::session_task::{self, SessionSpec};
use crate::status::{PeerState, PeerTable};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Stream, Swarm, identify, mdns, ping};
use shoal_core::sync::RelayToken;
use shoal_core::sync::Role;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub(crate) struct SessionHandle {
    id: u64,
    commands: mpsc::Sender<SessionCmd>,
    task: JoinHandle<()>,
}

pub(crate) struct Driver {
    swarm: Swarm<Behaviour>,
    replica: Arc<dyn Replica>,
    config: NodeConfig,
    table: PeerTable,
    control: libp2p_stream::Control,
    sessions: HashMap<PeerId, SessionHandle>,
    next_session: u64,
    ended_tx: mpsc::Sender<(PeerId, u64, SessionEnd)>,
    backoffs: Backoffs,
    /// Our dials in flight to a known peer, by the connection they open, and
    /// whether the peer was forgotten since (then that connection is closed
    /// at once).
    dialing: HashMap<ConnectionId, (PeerId, bool)>,
    /// When each connection last answered a ping.
    liveness: Liveness,
    /// Rejected peers to disconnect once they had the time to read why.
    disconnect_at: Vec<(Instant, PeerId)>,
    listening: watch::Sender<Vec<Multiaddr>>,
    /// The configured relays and this node's link with each.
    relays: Relays,
    /// Which way each peer connection goes (direct or relayed).
    paths: ConnPaths,
    /// Where members were last reached, and this node's reachability.
    finder: Finder,
}

/// How long a rejected peer keeps its connection after our `Rejected` frame,
/// so its session reads the frame (and the frames before it) instead of being
/// cut off by the connection closing under it. Checked on the 1 s opener tick.
/// Generous: on a loaded machine a session may take a while to read it, and
/// one that loses the frame never records the verdict.
const REJECTED_GRACE: Duration = Duration::from_secs(2);

impl Driver {
    /// Builds the loop around `swarm`, dials the configured peers, and runs
    /// it as a task answering `commands` and accepting `incoming` sync
    /// streams.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn(
        swarm: Swarm<Behaviour>,
        replica: Arc<dyn Replica>,
        config: NodeConfig,
        table: PeerTable,
        control: libp2p_stream::Control,
        listening: watch::Sender<Vec<Multiaddr>>,
        reachability: watch::Sender<crate::Reachability>,
        commands: mpsc::Receiver<Command>,
        incoming: libp2p_stream::IncomingStreams,
    ) -> Result<JoinHandle<()>, NetError> {
        let (ended_tx, ended_rx) = mpsc::channel(64);
        let (verdict_tx, verdict_rx) = mpsc::channel(16);
        let relays = Relays::new(
            &config.relays,
            RelayToken::for_group(&config.group_key),
            *swarm.local_peer_id(),
            verdict_tx,
        )
        .map_err(NetError::Setup)?;
        let finder = Finder::load(config.address_book.clone(), reachability);
        let mut driver = Driver {
            swarm,
            replica,
            liveness: Liveness::new(config.liveness),
            config,
            table,
            control,
            sessions: HashMap::new(),
            next_session: 0,
            ended_tx,
            backoffs: Backoffs::default(),
            dialing: HashMap::new(),
            disconnect_at: Vec::new(),
            listening,
            relays,
            paths: ConnPaths::default(),
            finder,
        };
        driver.relays.dial_away(&mut driver.swarm);
        driver.dial_members();
        for address in driver.config.peers.clone() {
            driver.dial(address)?;
        }
        Ok(tokio::spawn(
            driver.run(commands, incoming, ended_rx, verdict_rx),
        ))
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut incoming: libp2p_stream::IncomingStreams,
        mut ended: mpsc::Receiver<(PeerId, u64, SessionEnd)>,
        mut verdicts: mpsc::Receiver<Verdict>,
    ) {
        let mut redial = tokio::time::interval(self.config.redial_interval);
        let mut opener = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(Command::Dial(address, reply)) => {
                        if !self.config.peers.contains(&address) {
                            self.config.peers.push(address.clone());
                        }
                        let _ = reply.send(self.dial(address));
                    }
                    Some(Command::Session(peer, reply)) => {
                        let _ = reply.send(self.sessions.get(&peer).map(|h| h.commands.clone()));
                    }
                    Some(Command::SyncNow(reply)) => {
                        let mut asked = 0;
                        for handle in self.sessions.values() {
                            if handle.commands.try_send(SessionCmd::Resync).is_ok() {
                                asked += 1;
                            }
                        }
                        let _ = reply.send(asked);
                    }
                    Some(Command::Forget(peer, reply)) => {
                        let _ = reply.send(self.forget(peer));
                    }
                    Some(Command::Shutdown(reply)) => {
                        self.stop();
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.stop();
                        return;
                    }
                },
                Some((peer, stream)) = incoming.next() => self.on_incoming(peer, stream),
                Some((peer, id, end)) = ended.recv() => self.on_session_end(peer, id, end),
                Some(verdict) = verdicts.recv() => {
                    // Admitted: peers' circuit addresses are dialable now.
                    if self.relays.on_verdict(verdict, &mut self.swarm) {
                        self.redial();
                    }
                }
                _ = redial.tick() => self.redial(),
                _ = opener.tick() => {
                    self.close_silent();
                    self.disconnect_rejected();
                    self.open_missing_sessions();
                    self.refresh_head();
                    self.finder.admit_members(&self.table);
                }
            }
        }
    }

    fn stop(&mut self) {
        for (_, handle) in self.sessions.drain() {
            handle.task.abort();
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Drops the configured addresses naming `peer`, ends its session and
    /// disconnects it; returns how many addresses were dropped.
    fn forget(&mut self, peer: PeerId) -> usize {
        self.finder.forget(&peer);
        let before = self.config.peers.len();
        self.config
            .peers
            .retain(|address| address.iter().last() != Some(Protocol::P2p(peer)));
        if let Some(handle) = self.sessions.remove(&peer) {
            handle.task.abort();
        }
        for (dialed, doomed) in self.dialing.values_mut() {
            *doomed |= *dialed == peer;
        }
        if self.swarm.is_connected(&peer) {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        if self.table.get(&peer).is_some() {
            self.table.update(peer, |s| {
                if matches!(s.state, PeerState::Connected | PeerState::Connecting) {
                    s.state = PeerState::Disconnected;
                }
            });
        }
        before - self.config.peers.len()
    }

    /// Closes every connection that stopped answering pings. libp2p's ping
    /// only reports; such a connection would otherwise look established
    /// until the kernel's TCP timeout, and block redials meanwhile.
    fn close_silent(&mut self) {
        for (connection, peer) in self.liveness.take_silent(Instant::now()) {
            tracing::info!(%peer, "closing a connection that stopped answering pings");
            self.swarm.close_connection(connection);
        }
    }

    fn in_backoff(&self, peer: &PeerId) -> bool {
        self.backoffs.rejected(peer, Instant::now())
    }

    fn dial(&mut self, address: Multiaddr) -> Result<(), NetError> {
        if let Some(Protocol::P2p(peer)) = address.iter().last() {
            if peer == *self.swarm.local_peer_id()
                || self.swarm.is_connected(&peer)
                || self.in_backoff(&peer)
            {
                return Ok(());
            }
            self.table.add_address(peer, address.clone());
        }
        let opts = DialOpts::from(address.clone());
        let connection = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| NetError::Dial {
            address: address.clone(),
            error: e.to_string(),
        })?;
        if let Some(Protocol::P2p(peer)) = address.iter().last() {
            self.dialing.insert(connection, (peer, false));
        }
        Ok(())
    }

    /// Dials the address book's members not connected (not those in back-off).
    fn dial_members(&mut self) {
        let now = Instant::now();
        let backoffs = &self.backoffs;
        self.finder
            .dial_members(&mut self.swarm, |peer| backoffs.rejected(peer, now));
    }

    fn redial(&mut self) {
        self.relays.dial_away(&mut self.swarm);
        self.dial_members();
        let control = self.swarm.behaviour().stream.new_control();
        let swarm = &self.swarm;
        self.relays
            .retry_failed(&control, |relay| swarm.is_connected(relay));
        for address in self.config.peers.clone() {
            if let Err(e) = self.dial(address) {
                tracing::debug!("redial failed: {e}");
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("listening on {address}");
                self.listening.send_modify(|a| a.push(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                // A dial from before the peer was forgotten; or a peer in
                // back-off — only this connection: another one may still be
                // carrying the session that was rejected, its last frames in
                // flight.
                if self.relays.is_relay(&peer_id) {
                    // A relay: prove membership to it; no sync session.
                    self.relays
                        .on_connected(peer_id, &self.swarm.behaviour().stream.new_control());
                    return;
                }
                let doomed = self.dialing.remove(&connection_id).is_some_and(|(_, d)| d);
                if doomed || self.in_backoff(&peer_id) {
                    self.swarm.close_connection(connection_id);
                    return;
                }
                self.liveness.opened(connection_id, peer_id, Instant::now());
                self.finder.on_connected(peer_id, &endpoint);
                let remote = endpoint.get_remote_address().clone();
                self.paths.opened(connection_id, peer_id, &remote);
                let path = self.paths.path(&peer_id);
                let relayed = self.paths.relayed_to(&peer_id);
                if !crate::conn_paths::is_relayed(&remote) && !relayed.is_empty() {
                    // Direct now (e.g. a hole punched): close the relayed
                    // connections and end the session, which may run on one
                    // of them (streams go to a connection picked at random);
                    // the next opens once they are gone, so on this one.
                    tracing::info!(peer = %peer_id, "direct connection open; leaving the relay");
                    for relayed in relayed {
                        self.swarm.close_connection(relayed);
                    }
                    if let Some(handle) = self.sessions.remove(&peer_id) {
                        handle.task.abort();
                    }
                }
                self.table.add_address(peer_id, remote);
                self.table.update(peer_id, |s| {
                    s.set_path(path);
                    s.connection_opened();
                });
                self.open_session(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.liveness.closed(connection_id);
                self.paths.closed(connection_id);
                let known = self.table.get(&peer_id).is_some();
                if let Some(cause) = cause.filter(|_| known) {
                    self.table
                        .update(peer_id, |s| s.last_error = Some(cause.to_string()));
                }
                if num_established > 0 {
                    let path = self.paths.path(&peer_id);
                    if known {
                        self.table.update(peer_id, |s| s.set_path(path));
                    }
                    // The last relayed one gone: the session may open.
                    self.open_session(peer_id);
                    return;
                }
                if self.relays.is_relay(&peer_id) {
                    self.relays.on_disconnected(&peer_id);
                    return;
                }
                if let Some(handle) = self.sessions.remove(&peer_id) {
                    handle.task.abort();
                }
                self.finder.on_disconnected(&peer_id);
                self.table.update(peer_id, |s| {
                    s.set_path(crate::status::PeerPath::None);
                    if matches!(s.state, PeerState::Connected | PeerState::Connecting) {
                        s.state = PeerState::Disconnected;
                    }
                });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                self.dialing.remove(&connection_id);
                let Some(peer) = peer_id.filter(|p| !self.relays.is_relay(p)) else {
                    return;
                };
                // A failed dial beside a live connection (e.g. a hole
                // punch through a symmetric NAT) leaves the peer's state.
                let connected = self.swarm.is_connected(&peer);
                self.table.update(peer, |s| {
                    s.last_error = Some(error.to_string());
                    if !connected && !matches!(s.state, PeerState::Rejected { .. }) {
                        s.state = PeerState::Unreachable {
                            error: error.to_string(),
                        };
                    }
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if !self.swarm.is_connected(&peer) && !self.in_backoff(&peer) {
                        self.table.add_address(peer, address.clone());
                        // Both ends of a LAN discover each other at once. Dialing
                        // from the listen port (libp2p's default) turns the two
                        // dials into one TCP simultaneous open, on which both
                        // sides start Noise as the initiator and fail.
                        let dial = DialOpts::unknown_peer_id()
                            .address(address)
                            .allocate_new_port()
                            .build();
                        let _ = self.swarm.dial(dial);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if !self.relays.is_relay(&peer_id) => {
                self.finder.on_announced(peer_id, &info.listen_addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(probe)) => self.finder.on_probe(probe),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => {
                crate::punch::record(&self.table, &event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result,
            })) => match result {
                Ok(_) => self.liveness.answered(connection, Instant::now()),
                // Not a Shoal node (every one speaks ping); it never answers,
                // so the liveness check closes it in time, not at once.
                Err(ping::Failure::Unsupported) => {}
                Err(error) => {
                    tracing::info!(%peer, "closing a connection whose ping failed: {error}");
                    self.swarm.close_connection(connection);
                }
            },
            _ => {}
        }
    }

    /// Opens a sync stream to `peer` if we are the side that opens (the
    /// smaller peer id) and no session runs.
    fn open_session(&mut self, peer: PeerId) {
        let local = *self.swarm.local_peer_id();
        if local >= peer
            || self.sessions.contains_key(&peer)
            || self.backoffs.holds_sessions(&peer, Instant::now())
            || self.relays.is_relay(&peer)
            || self.leaving_relay(&peer)
        {
            return;
        }
        let mut control = self.control.clone();
        let limit = Duration::from_millis(self.config.sync.request_timeout_ms);
        self.spawn_session(peer, Role::Dialer, async move {
            tokio::time::timeout(limit, control.open_stream(peer, SYNC_PROTOCOL))
                .await
                .map_err(|_| format!("cannot open a sync stream: timed out after {limit:?}"))?
                .map_err(|e| format!("cannot open a sync stream: {e}"))
        });
    }

    /// Whether `peer` has a direct connection and relayed ones still
    /// closing: a stream opened now might land on one of those.
    fn leaving_relay(&self, peer: &PeerId) -> bool {
        self.paths.path(peer) == crate::status::PeerPath::Direct
            && !self.paths.relayed_to(peer).is_empty()
    }

    /// Runs a session with `peer` on the stream `stream` yields, and reports
    /// its end to the loop; it becomes the peer's one session.
    fn spawn_session(
        &mut self,
        peer: PeerId,
        role: Role,
        stream: impl std::future::Future<Output = Result<Stream, String>> + Send + 'static,
    ) {
        self.next_session += 1;
        let id = self.next_session;
        let replica = self.replica.clone();
        let table = self.table.clone();
        let ended = self.ended_tx.clone();
        let (commands, commands_rx) = mpsc::channel(4);
        let spec = self.spec(peer, role, commands.clone());
        let task = tokio::spawn(async move {
            let end = match stream.await {
                Ok(stream) => session_task::run(stream, spec, replica, table, commands_rx).await,
                Err(e) => SessionEnd::Broken(e),
            };
            let _ = ended.send((peer, id, end)).await;
        });
        self.sessions
            .insert(peer, SessionHandle { id, commands, task });
    }

    /// Lets the replica notice commits other processes made (e.g. `shoal put`
    /// next to the daemon), so they are pushed at once. Off the executor: the
    /// replica may briefly wait for its lock.
    fn refresh_head(&self) {
        let replica = self.replica.clone();
        let table = self.table.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = replica.refresh_head() {
                tracing::warn!("cannot check the log for other writers: {e}");
            }
            // Changes held for their clocks: merge those now due, and show
            // per peer what is still held.
            match replica.release_held() {
                Ok(held) => table.set_held(&held),
                Err(e) => tracing::warn!("cannot merge changes held for their clocks: {e}"),
            }
        });
    }

    /// Disconnects the rejected peers whose grace ended, and forgets the
    /// back-offs that are over (strangers with fresh identities must not
    /// grow the map for good).
    fn disconnect_rejected(&mut self) {
        let now = Instant::now();
        let (due, later) = self.disconnect_at.drain(..).partition(|(at, _)| *at <= now);
        self.disconnect_at = later;
        for (_, peer) in due {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        self.backoffs.expire(now);
    }

    fn open_missing_sessions(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.open_session(peer);
        }
    }

    fn on_incoming(&mut self, peer: PeerId, stream: Stream) {
        if self.backoffs.holds_sessions(&peer, Instant::now()) || self.relays.is_relay(&peer) {
            drop(stream);
            return;
        }
        // A newer session replaces an older one (e.g. after a reconnect).
        if let Some(old) = self.sessions.remove(&peer) {
            old.task.abort();
        }
        self.spawn_session(peer, Role::Listener, async move { Ok(stream) });
    }

    fn spec(&self, peer: PeerId, role: Role, own: mpsc::Sender<SessionCmd>) -> SessionSpec {
        SessionSpec {
            local: *self.swarm.local_peer_id(),
            peer,
            role,
            key: self.config.group_key.clone(),
            sync: self.config.sync.clone(),
            recon: self.config.recon,
            anti_entropy: self.config.anti_entropy.filter(|_| self.config.auto_sync),
            auto_sync: self.config.auto_sync,
            own,
        }
    }

    fn on_session_end(&mut self, peer: PeerId, id: u64, end: SessionEnd) {
        if self.sessions.get(&peer).is_some_and(|h| h.id == id) {
            self.sessions.remove(&peer);
        }
        match end {
            SessionEnd::Closed { reason, by_peer } if reason.is_membership_failure() => {
                tracing::warn!(%peer, by_peer, "sync session rejected: {reason}");
                let configured = self.config.rejected_backoff;
                self.backoffs
                    .reject(peer, Instant::now(), reason, configured);
                // Not at once: the peer would lose the frames in flight, our
                // `Rejected` included, and never learn why.
                self.disconnect_at
                    .push((Instant::now() + REJECTED_GRACE, peer));
            }
            SessionEnd::Closed { reason, .. } => {
                tracing::info!(%peer, "sync session closed: {reason}")
            }
            SessionEnd::Broken(e) => tracing::info!(%peer, "sync session ended: {e}"),
            SessionEnd::LocalFailure(e) => {
                tracing::warn!(%peer, "sync session ended: {e}; asking again shortly");
                let longest = self.config.rejected_backoff;
                self.backoffs.pause(peer, Instant::now(), longest);
            }
        }
    }
}
