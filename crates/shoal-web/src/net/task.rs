//! The tab's network loop: it owns the swarm, dials the peers `connect`
//! asks for, runs one sync session per connected peer — opened by the side
//! with the smaller peer id, accepted otherwise, exactly as native nodes do
//! (crates/shoal-net/src/driver.rs), a newer session replacing an older one
//! — and answers each `connect` once the peer proved membership (or refused
//! ours, or could not be reached). A peer behind the group's relay is
//! dialed once the relay admitted the tab (relay.rs decides when). It keeps
//! the peer table `store.peers()` reads. There is no redial: the app
//! decides when to connect again (the notes app's network.js does on a
//! poll).
//!
//! It must not speak the sync protocol: sessions are session.rs's.

use crate::error::WebError;
use crate::net::Command;
use crate::net::address::{self, RelayHop, Target};
use crate::net::relay::{Next, Relays, Verdict};
use crate::net::session::{self, SessionEnd, SessionEvent, SessionSpec};
use crate::net::swarm::{Behaviour, BehaviourEvent};
use crate::peers::{PeerState, PeerTable};
use futures::channel::{mpsc, oneshot};
use futures::future::{AbortHandle, Abortable};
use futures::{FutureExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol, Swarm, ping};
use shoal_core::sync::{GroupKey, Rejection, Role, SYNC_PROTOCOL_NAME};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen_futures::spawn_local;
use web_time::Instant;

/// The sync protocol, as native nodes name it.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new(SYNC_PROTOCOL_NAME);

/// How long `connect` waits for the membership handshake to finish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after a rejection the connection stays, so the peer reads the
/// frames in flight (our `Rejected` among them) before it closes.
const REJECTED_GRACE: Duration = Duration::from_secs(2);
/// How often the loop checks timeouts and reopens missing sessions.
const TICK: Duration = Duration::from_millis(500);

/// A peer the tab was asked to be connected to.
struct Wanted {
    address: Multiaddr,
    /// The relay `address` goes through, if any.
    relay: Option<RelayHop>,
    key: GroupKey,
    /// `connect` calls waiting for the handshake, with their deadlines.
    waiters: Vec<(Instant, oneshot::Sender<Result<(), WebError>>)>,
}

/// The one session running with a peer.
struct Running {
    id: u64,
    abort: AbortHandle,
    authenticated: bool,
}

/// The loop's state.
struct Task {
    swarm: Swarm<Behaviour>,
    control: libp2p_stream::Control,
    store: session::StoreHandle,
    table: Rc<RefCell<PeerTable>>,
    wanted: HashMap<PeerId, Wanted>,
    sessions: HashMap<PeerId, Running>,
    next_session: u64,
    events: mpsc::UnboundedSender<(PeerId, u64, SessionEvent)>,
    /// Peers to disconnect once their rejection had the time to arrive.
    disconnect_at: Vec<(Instant, PeerId)>,
    /// Peers whose connections this tab is closing: not connected for a
    /// new `connect`, which dials again once they are closed.
    closing: HashSet<PeerId>,
    /// The relays peers are reached through.
    relays: Relays,
}

/// Starts the loop on this tab's executor; it ends when `commands` closes.
pub(crate) fn spawn(
    swarm: Swarm<Behaviour>,
    store: session::StoreHandle,
    table: Rc<RefCell<PeerTable>>,
    commands: mpsc::UnboundedReceiver<Command>,
) -> Result<(), WebError> {
    let mut control = swarm.behaviour().stream.new_control();
    let incoming = control
        .accept(SYNC_PROTOCOL)
        .map_err(|e| WebError::Storage(format!("cannot accept sync streams: {e}")))?;
    let (events, events_rx) = mpsc::unbounded();
    let (relays, verdicts) = Relays::new();
    let task = Task {
        swarm,
        control,
        store,
        table,
        wanted: HashMap::new(),
        sessions: HashMap::new(),
        next_session: 0,
        events,
        disconnect_at: Vec::new(),
        closing: HashSet::new(),
        relays,
    };
    spawn_local(task.run(commands, incoming, events_rx, verdicts));
    Ok(())
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        incoming: libp2p_stream::IncomingStreams,
        mut events: mpsc::UnboundedReceiver<(PeerId, u64, SessionEvent)>,
        mut verdicts: mpsc::UnboundedReceiver<Verdict>,
    ) {
        let mut incoming = incoming.fuse();
        let mut tick = futures_timer::Delay::new(TICK).fuse();
        loop {
            futures::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.next() => match command {
                    Some(Command::Stop) | None => {
                        self.stop();
                        return;
                    }
                    Some(command) => self.on_command(command),
                },
                stream = incoming.next() => {
                    if let Some((peer, stream)) = stream {
                        self.on_incoming(peer, stream);
                    }
                }
                event = events.next() => {
                    if let Some((peer, id, event)) = event {
                        self.on_session_event(peer, id, event);
                    }
                }
                verdict = verdicts.next() => {
                    if let Some(verdict) = verdict {
                        let next = self.relays.on_verdict(verdict, &mut self.swarm);
                        self.follow(next);
                    }
                }
                _ = tick => {
                    self.on_tick();
                    tick = futures_timer::Delay::new(TICK).fuse();
                }
            }
        }
    }

    /// Ends every session and connection (the store closed).
    fn stop(&mut self) {
        for (_, running) in self.sessions.drain() {
            running.abort.abort();
        }
        for (_, wanted) in self.wanted.drain() {
            for (_, reply) in wanted.waiters {
                let _ = reply.send(Err(WebError::Closed));
            }
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.hang_up(peer);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Connect { target, key, reply } => self.connect(target, key, reply),
            Command::Stop => self.stop(),
            Command::Disconnect { peer, reply } => {
                let peers: Vec<PeerId> = match peer {
                    Some(peer) => vec![peer],
                    None => self.wanted.keys().copied().collect(),
                };
                for peer in peers {
                    self.disconnect(peer);
                }
                let _ = reply.send(());
            }
        }
    }

    fn connect(
        &mut self,
        target: Target,
        key: GroupKey,
        reply: oneshot::Sender<Result<(), WebError>>,
    ) {
        let Target {
            address,
            peer,
            relay,
        } = target;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let connected = self.connected(&peer);
        if let Some(wanted) = self.wanted.get_mut(&peer)
            && wanted.key == key
        {
            if self.sessions.get(&peer).is_some_and(|r| r.authenticated) {
                let _ = reply.send(Ok(()));
                return;
            }
            if connected || !wanted.waiters.is_empty() {
                // Connected or dialing: this call waits with the others.
                wanted.waiters.push((deadline, reply));
                self.open_session(peer);
                return;
            }
        } else if self.wanted.contains_key(&peer) {
            // Another secret: start over with this one.
            self.disconnect(peer);
        }
        self.table
            .borrow_mut()
            .dialing(&peer.to_string(), &address.to_string());
        let wanted = self.wanted.entry(peer).or_insert_with(|| Wanted {
            address: address.clone(),
            relay: relay.clone(),
            key: key.clone(),
            waiters: Vec::new(),
        });
        wanted.address = address;
        wanted.relay = relay;
        wanted.key = key;
        wanted.waiters.push((deadline, reply));
        if self.connected(&peer) {
            self.open_session(peer);
            return;
        }
        if self.closing.contains(&peer) {
            // Dialed once the old connection is gone (ConnectionClosed).
            return;
        }
        self.dial(peer);
    }

    /// Dials `peer` as it is wanted: directly, or through its relay once
    /// the relay admitted the tab.
    fn dial(&mut self, peer: PeerId) {
        let Some(wanted) = self.wanted.get(&peer) else {
            return;
        };
        let (address, key) = (wanted.address.clone(), wanted.key.clone());
        let next = match &wanted.relay {
            Some(hop) => self.relays.reach(hop, &key, peer, address, &mut self.swarm),
            None => vec![Next::Dial(peer, address)],
        };
        self.follow(next);
    }

    /// Does what the relays (or a direct dial) asked for.
    fn follow(&mut self, next: Vec<Next>) {
        for step in next {
            match step {
                Next::Dial(peer, address) => {
                    if let Err(e) = self.swarm.dial(DialOpts::from(address)) {
                        let error = WebError::Unreachable(e.to_string());
                        self.fail(peer, PeerState::Unreachable, error);
                    }
                }
                Next::Fail(peer, state, error) => self.fail(peer, state, error),
            }
        }
    }

    /// Ends `peer`'s session and connection; `connect` calls waiting on it
    /// fail.
    fn disconnect(&mut self, peer: PeerId) {
        if let Some(running) = self.sessions.remove(&peer) {
            running.abort.abort();
        }
        self.relays.forget(&peer);
        if let Some(wanted) = self.wanted.remove(&peer) {
            for (_, reply) in wanted.waiters {
                let _ = reply.send(Err(WebError::Unreachable(
                    "disconnected before the peer was reached".into(),
                )));
            }
        }
        self.hang_up(peer);
        let mut table = self.table.borrow_mut();
        if table
            .get(&peer.to_string())
            .is_some_and(|s| matches!(s.state, PeerState::Connecting | PeerState::Connected))
        {
            table.set_state(&peer.to_string(), PeerState::Disconnected);
        }
    }

    /// Records a failure with `peer` and answers its waiting `connect` calls
    /// with `error`.
    fn fail(&mut self, peer: PeerId, state: PeerState, error: WebError) {
        self.table
            .borrow_mut()
            .failed(&peer.to_string(), state, &error.to_string());
        if let Some(wanted) = self.wanted.get_mut(&peer) {
            for (_, reply) in wanted.waiters.drain(..) {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if self.relays.is_relay(&peer_id) {
                    let next = self.relays.on_connected(peer_id, &mut self.swarm);
                    self.follow(next);
                    if !self.wanted.contains_key(&peer_id) {
                        return; // a relay, not a member
                    }
                }
                if !self.wanted.contains_key(&peer_id) {
                    // Dialed before a disconnect: not wanted any more.
                    self.hang_up(peer_id);
                    return;
                }
                self.open_session(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                if num_established > 0 {
                    return;
                }
                let next = self.relays.on_closed(&peer_id);
                self.follow(next);
                if let Some(running) = self.sessions.remove(&peer_id) {
                    running.abort.abort();
                }
                if self.closing.remove(&peer_id) {
                    // Closed by this tab; a `connect` since dials afresh.
                    if self
                        .wanted
                        .get(&peer_id)
                        .is_some_and(|w| !w.waiters.is_empty())
                    {
                        self.dial(peer_id);
                    }
                    return;
                }
                let rejected = self
                    .table
                    .borrow()
                    .get(&peer_id.to_string())
                    .is_some_and(|s| s.state == PeerState::Rejected);
                if self.wanted.contains_key(&peer_id) && !rejected {
                    let why = match cause {
                        Some(cause) => format!("the connection closed: {cause}"),
                        None => "the connection closed".to_string(),
                    };
                    self.fail(peer_id, PeerState::Disconnected, WebError::Unreachable(why));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                let next = self.relays.on_dial_failed(&peer, &self.swarm);
                self.follow(next);
                if !self.connected(&peer)
                    && let Some(wanted) = self.wanted.get(&peer)
                {
                    console_log(&format!("dial of {peer} failed: {error}"));
                    let why = address::dial_failure(&wanted.address, &peer, &error);
                    self.fail(peer, PeerState::Unreachable, WebError::Unreachable(why));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                console_log(&format!(
                    "closing the connection to {peer}: ping failed: {error}"
                ));
                self.swarm.close_connection(connection);
            }
            _ => {}
        }
    }

    /// Opens a sync stream to `peer` if the tab is the side that opens (the
    /// smaller peer id), the peer is wanted and connected, and no session
    /// runs.
    fn open_session(&mut self, peer: PeerId) {
        let local = *self.swarm.local_peer_id();
        if local >= peer
            || self.sessions.contains_key(&peer)
            || !self.wanted.contains_key(&peer)
            || !self.connected(&peer)
            || self.rejected(&peer)
        {
            return;
        }
        let mut control = self.control.clone();
        self.spawn_session(peer, Role::Dialer, async move {
            control
                .open_stream(peer, SYNC_PROTOCOL)
                .await
                .map_err(|e| format!("cannot open a sync stream: {e}"))
        });
    }

    /// Whether `peer` has a connection this tab is not closing.
    fn connected(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer) && !self.closing.contains(peer)
    }

    /// Closes every connection to `peer`.
    fn hang_up(&mut self, peer: PeerId) {
        if self.swarm.is_connected(&peer) && self.swarm.disconnect_peer_id(peer).is_ok() {
            self.closing.insert(peer);
        }
    }

    fn rejected(&self, peer: &PeerId) -> bool {
        self.table
            .borrow()
            .get(&peer.to_string())
            .is_some_and(|s| s.state == PeerState::Rejected)
    }

    fn on_incoming(&mut self, peer: PeerId, stream: Stream) {
        if !self.wanted.contains_key(&peer) || self.rejected(&peer) {
            drop(stream);
            return;
        }
        // A newer session replaces an older one (e.g. after a reconnect).
        if let Some(old) = self.sessions.remove(&peer) {
            old.abort.abort();
        }
        self.spawn_session(peer, Role::Listener, async move { Ok(stream) });
    }

    /// Runs a session with `peer` on the stream `stream` yields; its events
    /// come back to the loop tagged with its id.
    fn spawn_session(
        &mut self,
        peer: PeerId,
        role: Role,
        stream: impl std::future::Future<Output = Result<Stream, String>> + 'static,
    ) {
        let Some(wanted) = self.wanted.get(&peer) else {
            return;
        };
        self.next_session += 1;
        let id = self.next_session;
        let spec = SessionSpec {
            local: *self.swarm.local_peer_id(),
            peer,
            role,
            key: wanted.key.clone(),
        };
        self.table
            .borrow_mut()
            .set_state(&peer.to_string(), PeerState::Connecting);
        let events = self.events.clone();
        let store = self.store.clone();
        let (abort, registration) = AbortHandle::new_pair();
        let run = async move {
            let report = {
                let events = events.clone();
                move |event: SessionEvent| {
                    let _ = events.unbounded_send((peer, id, event));
                }
            };
            let end = match stream.await {
                Ok(stream) => session::run(stream, spec, store, report).await,
                Err(e) => SessionEnd::Broken(e),
            };
            let _ = events.unbounded_send((peer, id, SessionEvent::Ended(end)));
        };
        spawn_local(Abortable::new(run, registration).map(|_| ()));
        self.sessions.insert(
            peer,
            Running {
                id,
                abort,
                authenticated: false,
            },
        );
    }

    fn on_session_event(&mut self, peer: PeerId, id: u64, event: SessionEvent) {
        let Some(running) = self.sessions.get_mut(&peer).filter(|r| r.id == id) else {
            return; // a session replaced or ended since
        };
        let name = peer.to_string();
        match event {
            SessionEvent::Authenticated => {
                running.authenticated = true;
                self.table
                    .borrow_mut()
                    .set_state(&name, PeerState::Connected);
                if let Some(wanted) = self.wanted.get_mut(&peer) {
                    for (_, reply) in wanted.waiters.drain(..) {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            SessionEvent::CaughtUp(caught_up) => {
                self.table.borrow_mut().set_caught_up(&name, caught_up);
            }
            SessionEvent::Ended(end) => {
                self.sessions.remove(&peer);
                match end {
                    SessionEnd::Rejected { reason, by_peer } => {
                        // Which side noticed a wrong secret first depends
                        // on who proves first: either way the secrets differ.
                        let error = match (reason, by_peer) {
                            (Rejection::WrongSecret, _) => {
                                WebError::WrongSecret(reason.to_string())
                            }
                            (_, true) => WebError::Refused(reason.to_string()),
                            (_, false) => {
                                WebError::Refused(format!("this tab refused the peer: {reason}"))
                            }
                        };
                        self.fail(peer, PeerState::Rejected, error);
                        self.disconnect_at
                            .push((Instant::now() + REJECTED_GRACE, peer));
                    }
                    SessionEnd::Broken(why) => {
                        // The connection may be going away (its close
                        // answers the waiters) or only the stream broke:
                        // the tick opens a new session while connected.
                        self.table
                            .borrow_mut()
                            .failed(&name, PeerState::Connecting, &why);
                    }
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        // Connect calls that waited too long.
        let mut late = Vec::new();
        for (peer, wanted) in &mut self.wanted {
            let (expired, waiting): (Vec<_>, Vec<_>) =
                wanted.waiters.drain(..).partition(|(at, _)| *at <= now);
            wanted.waiters = waiting;
            if !expired.is_empty() {
                late.push(*peer);
                for (_, reply) in expired {
                    let _ = reply.send(Err(WebError::Unreachable(format!(
                        "no answer from the peer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ))));
                }
            }
        }
        for peer in late {
            if !self.sessions.get(&peer).is_some_and(|r| r.authenticated) {
                self.table.borrow_mut().failed(
                    &peer.to_string(),
                    PeerState::Unreachable,
                    "no answer from the peer in time",
                );
            }
        }
        let (due, later) = self.disconnect_at.drain(..).partition(|(at, _)| *at <= now);
        self.disconnect_at = later;
        for (_, peer) in due {
            if self.rejected(&peer) {
                self.wanted.remove(&peer);
                self.hang_up(peer);
            }
        }
        let peers: Vec<PeerId> = self.wanted.keys().copied().collect();
        for peer in peers {
            self.open_session(peer);
        }
    }
}

/// A line in the browser's console (the tab has no log file).
fn console_log(line: &str) {
    web_sys::console::info_1(&format!("shoal: {line}").into());
}
