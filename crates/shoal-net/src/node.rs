//! [`Node`]: a running libp2p node syncing one [`Replica`] with its group —
//! the handle an application holds: starting the node (swarm, swarm loop,
//! blob server and fetcher), asking it things (peers, listen addresses,
//! blob transfers, a session for federation) and stopping it.
//!
//! The swarm loop it talks to is `driver.rs`'s: for every connected peer
//! exactly one sync session runs, so reconnect storms never multiply
//! catch-ups; configured peers are redialed while away, and a peer that
//! failed membership is left alone for a back-off period. This file holds
//! no connection state of its own.

use crate::behaviour::build_swarm;
use crate::blob_fetch::Fetcher;
use crate::blob_table::{BlobTable, BlobTotals, BlobTransfer};
use crate::command::{Command, NetError};
use crate::config::NodeConfig;
use crate::driver::Driver;
use crate::replica::Replica;
use crate::session_link::SessionCmd;
use crate::status::{PeerStatus, PeerTable};
use crate::{BLOB_PROTOCOL, SYNC_PROTOCOL};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use shoal_core::recon::ReconLimits;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// A running node. Dropping it stops the node.
pub struct Node {
    peer_id: PeerId,
    replica: Arc<dyn Replica>,
    recon: ReconLimits,
    commands: mpsc::Sender<Command>,
    table: PeerTable,
    listening: watch::Receiver<Vec<Multiaddr>>,
    /// Whether the node is reachable from the internet (AutoNAT v2).
    reachability: watch::Receiver<crate::Reachability>,
    /// The relays it holds reservations on.
    relays: Vec<Multiaddr>,
    /// The swarm loop; taken by the first [`Node::shutdown`].
    task: Mutex<Option<JoinHandle<()>>>,
    blobs: BlobTable,
    /// The blob fetcher's handles, for fetches on demand.
    fetcher: Fetcher,
    /// The blob fetcher, server and scrub and the partial filters' time
    /// sweep, stopped with the node.
    side_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// Starts a node for `replica` as a background task on the current tokio runtime.
    pub async fn start(replica: Arc<dyn Replica>, config: NodeConfig) -> Result<Node, NetError> {
        if config.liveness.is_zero() {
            // Every ping would time out and every connection be closed.
            return Err(NetError::Setup("liveness must be longer than zero".into()));
        }
        let caps = config.connections;
        if caps.total == 0 || caps.pending == 0 || caps.per_peer == 0 {
            return Err(NetError::Setup(
                "connection limits must be at least 1 (0 would refuse every peer)".into(),
            ));
        }
        let keypair = replica.keypair();
        let peer_id = keypair.public().to_peer_id();
        let mut swarm = build_swarm(
            keypair,
            config.mdns,
            config.liveness,
            config.connections,
            config.punch_delay,
        )
        .map_err(NetError::Setup)?;
        // Every fixed port first: libp2p's TCP listeners share their port
        // with any other node's, and would start beside one.
        for address in &config.listen {
            crate::listen::ensure_free(address).map_err(|error| NetError::Listen {
                address: address.clone(),
                error,
            })?;
        }
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| NetError::Listen {
                    address: address.clone(),
                    error: e.to_string(),
                })?;
        }
        let mut control = swarm.behaviour().stream.new_control();
        let incoming = control
            .accept(SYNC_PROTOCOL)
            .map_err(|e| NetError::Setup(format!("sync protocol already registered: {e}")))?;
        let blob_incoming = control
            .accept(BLOB_PROTOCOL)
            .map_err(|e| NetError::Setup(format!("blob protocol already registered: {e}")))?;
        let (commands, commands_rx) = mpsc::channel(32);
        let (listening_tx, listening) = watch::channel(Vec::new());
        let (reachability_tx, reachability) = watch::channel(crate::Reachability::Unknown);
        let relays = config.relays.clone();
        let node_replica = replica.clone();
        let recon = config.recon;
        let config_age_out = config.age_out;
        let table = PeerTable::default();
        let blobs = BlobTable::default();
        let fetcher = Fetcher {
            local: peer_id,
            key: config.group_key.clone(),
            replica: replica.clone(),
            peers: table.clone(),
            blobs: blobs.clone(),
            control: control.clone(),
            protocol: BLOB_PROTOCOL,
            config: config.blobs,
        };
        let task = Driver::spawn(
            swarm,
            replica,
            config,
            table.clone(),
            control,
            listening_tx,
            reachability_tx,
            commands_rx,
            incoming,
        )?;
        let side_tasks = vec![
            tokio::spawn(crate::blob_serve::accept(
                table.counters().clone(),
                blob_incoming,
                peer_id,
                fetcher.key.clone(),
                fetcher.replica.clone(),
                fetcher.config,
            )),
            tokio::spawn(crate::blob_scrub::run(
                fetcher.replica.clone(),
                fetcher.config,
            )),
            tokio::spawn(fetcher.clone().run()),
            tokio::spawn(crate::age_out::run(fetcher.replica.clone(), config_age_out)),
        ];
        Ok(Node {
            peer_id,
            replica: node_replica,
            recon,
            commands,
            table,
            listening,
            reachability,
            relays,
            task: Mutex::new(Some(task)),
            blobs,
            fetcher,
            side_tasks: Mutex::new(side_tasks),
        })
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Whether the node is reachable from the internet, as the AutoNAT v2
    /// probes of its relays found.
    pub fn reachability(&self) -> crate::Reachability {
        *self.reachability.borrow()
    }

    /// The relays the node holds (or tries to hold) reservations on, each
    /// ending in `/p2p/<relay id>`.
    pub fn relays(&self) -> &[Multiaddr] {
        &self.relays
    }

    /// The command channel of the session with `peer`, if one runs.
    pub(crate) async fn session(&self, peer: PeerId) -> Option<mpsc::Sender<SessionCmd>> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Session(peer, tx)).await.ok()?;
        rx.await.ok().flatten()
    }

    /// The replica and reconciliation bounds this node runs with.
    pub(crate) fn replica(&self) -> (&Arc<dyn Replica>, ReconLimits) {
        (&self.replica, self.recon)
    }

    /// The addresses the node listens on, once it does (waits up to `wait`),
    /// each ending in `/p2p/<peer id>` so it can be dialed or put in an invite.
    pub async fn listen_addrs(&self, wait: Duration) -> Result<Vec<Multiaddr>, NetError> {
        let mut listening = self.listening.clone();
        let ready = tokio::time::timeout(wait, listening.wait_for(|a| !a.is_empty())).await;
        match ready {
            Ok(Ok(addresses)) => Ok(addresses
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
                .collect()),
            Ok(Err(_)) => Err(NetError::Stopped),
            Err(_) => Err(NetError::NoListenAddress(wait)),
        }
    }

    /// Dials `address` now, and keeps redialing it while it is away.
    pub async fn dial(&self, address: Multiaddr) -> Result<(), NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Dial(address, tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Asks every connected peer for its changes now; returns how many sessions were asked.
    pub async fn sync_now(&self) -> Result<usize, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::SyncNow(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Forgets `peer`: stops dialing (and redialing) the configured
    /// addresses that name it, ends its session and closes its connections,
    /// including those that dials already on their way open later. Returns how
    /// many configured addresses were dropped. The peer may still
    /// dial this node (it remains a group member); mDNS may find it again.
    pub async fn forget_peer(&self, peer: PeerId) -> Result<usize, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Forget(peer, tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The node's counters since it started: rejections by reason,
    /// catch-up and reconciliation durations, blobs served (per-peer
    /// traffic is in [`Node::peers`]).
    pub fn metrics(&self) -> crate::NetMetrics {
        self.table.counters().snapshot()
    }

    /// The counters, for the node's own tasks.
    pub(crate) fn counters(&self) -> &crate::metrics::Counters {
        self.table.counters()
    }

    /// Every peer the node knows, with its state.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.table.snapshot()
    }

    /// One peer's status.
    pub fn peer(&self, peer: &PeerId) -> Option<PeerStatus> {
        self.table.get(peer)
    }

    /// Stops the node: closes sessions and connections, then returns.
    /// The blobs being fetched or that failed to arrive, and totals since
    /// the node started.
    pub fn blob_transfers(&self) -> (Vec<BlobTransfer>, BlobTotals) {
        self.blobs.snapshot()
    }

    /// Fetches blob `hash` now from a connected peer that may send it
    /// (blobs on demand), waiting at most `wait`: `Ok(Some(peer))` once it
    /// is here, verified, `Ok(None)` if there is nothing to fetch (it is
    /// here, or no live record references it). A fetch of it already
    /// running is waited for rather than doubled; a wait that runs out
    /// leaves the fetch going ([`DemandError::StillFetching`](crate::DemandError::StillFetching)).
    pub async fn fetch_blob(
        &self,
        hash: &shoal_core::blob::BlobHash,
        wait: Duration,
    ) -> Result<Option<PeerId>, crate::DemandError> {
        self.fetcher.fetch_now(hash, wait).await
    }

    /// Stops the node: sessions, blob transfers and the swarm. Works through
    /// a shared handle (a server's `Arc<Node>` still held by its open
    /// connections); once stopped, every other call answers
    /// [`NetError::Stopped`]. Calling it again does nothing.
    pub async fn shutdown(&self) {
        for task in std::mem::take(&mut *lock(&self.side_tasks)) {
            task.abort();
        }
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// A lock that a panic elsewhere does not poison for good.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        for task in std::mem::take(&mut *lock(&self.side_tasks)) {
            task.abort();
        }
    }
}
