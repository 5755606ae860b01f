//! A replica that is a real [`Store`] but writes down every federation
//! request its node serves (what a peer sent this node, as the peer would
//! observe it) and every read of its log a session makes, in place or
//! blocking (see [`Read`]). Every call is the store's own; nothing is mocked
//! but those records. [`start`] runs a real loopback node for one.

#![allow(dead_code)] // each test file uses part of it

use shoal::{Change, CollectionName, DbVersion, Direction, LogRead, PeerId, RecordId};
use shoal::{SharingRules, Store, SyncCursor};
use shoal_core::HeldFlows;
use shoal_core::blob::{BlobHash, BlobRefusal, MissingBlob, Outline};
use shoal_core::recon::{Entry, Fingerprint, ReconLimits, Reconciler};
use shoal_core::sync::federation::{Request, Response};
use shoal_net::{ApplyError, Attempt, BlobSink, HeldChanges, Replica, ReplicaError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A store whose served requests are kept in `seen`, its log reads in
/// `reads`, how its applies of a peer's batches went in `applies`.
pub struct Spy {
    pub store: Store,
    pub seen: Arc<Mutex<Vec<Request>>>,
    pub reads: Arc<Mutex<Vec<Read>>>,
    pub applies: Arc<Mutex<Vec<Apply>>>,
    /// While true, a blocking apply waits (a merge held under way).
    pub hold: Arc<(Mutex<bool>, Condvar)>,
    /// The blocking apply with this index (counted from 0 over every
    /// blocking apply) fails, as a store refusing a batch or failing to
    /// write it would.
    pub refuse: Arc<Mutex<Option<(usize, Fault)>>>,
}

/// Whose fault a refused apply is said to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The batch's: it breaks a rule.
    Batch,
    /// The store's: it could not write (busy, full).
    Local,
}

/// One apply of a peer's batch a session asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Tried in place and made.
    InPlace,
    /// Tried in place, refused: it would have had to wait.
    WouldWait,
    /// The blocking call began (noted before it runs).
    Blocking,
}

/// One read of the log a session made: tried in place (`try_read_for_peer`)
/// or blocking, with its budget, and whether the read said more remained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub in_place: bool,
    pub max_changes: u32,
    pub more: bool,
}

impl Spy {
    /// Wraps `store`; the returned list fills as requests are served.
    pub fn new(store: Store) -> (Arc<Spy>, Arc<Mutex<Vec<Request>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let spy = Spy {
            store,
            seen: seen.clone(),
            reads: Arc::default(),
            applies: Arc::default(),
            hold: Arc::default(),
            refuse: Arc::default(),
        };
        (Arc::new(spy), seen)
    }
}

impl Spy {
    /// Holds every blocking apply from now until [`Spy::release`].
    pub fn hold_applies(&self) {
        *self.hold.0.lock().expect("hold") = true;
    }

    /// Lets held and later blocking applies run.
    pub fn release(&self) {
        *self.hold.0.lock().expect("hold") = false;
        self.hold.1.notify_all();
    }

    fn note_read(&self, in_place: bool, max_changes: u32, more: Result<bool, &ReplicaError>) {
        if let Ok(more) = more {
            self.reads.lock().expect("reads").push(Read {
                in_place,
                max_changes,
                more,
            });
        }
    }
}

impl Replica for Spy {
    fn keypair(&self) -> libp2p_identity::Keypair {
        Replica::keypair(&self.store)
    }
    fn peer_cursor(&self, peer: &PeerId) -> Result<SyncCursor, ReplicaError> {
        Replica::peer_cursor(&self.store, peer)
    }
    fn read_for_peer(
        &self,
        peer: &PeerId,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, ReplicaError> {
        let read = Replica::read_for_peer(&self.store, peer, cursor, max_changes, max_bytes);
        self.note_read(false, max_changes, read.as_ref().map(|r| r.more));
        read
    }
    fn try_read_for_peer(
        &self,
        peer: &PeerId,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Attempt<LogRead> {
        let read = Replica::try_read_for_peer(&self.store, peer, cursor, max_changes, max_bytes);
        if let Attempt::Done(read) = &read {
            self.note_read(true, max_changes, read.as_ref().map(|r| r.more));
        }
        read
    }
    fn try_apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Attempt<(), ApplyError> {
        let tried = Replica::try_apply_from(&self.store, peer, changes, cursor);
        self.applies.lock().expect("applies").push(match tried {
            Attempt::Done(_) => Apply::InPlace,
            Attempt::WouldWait => Apply::WouldWait,
        });
        tried
    }
    fn apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<(), ApplyError> {
        let index = {
            let mut applies = self.applies.lock().expect("applies");
            applies.push(Apply::Blocking);
            applies.iter().filter(|a| **a == Apply::Blocking).count() - 1
        };
        let (held, released) = &*self.hold;
        let _running = released
            .wait_while(held.lock().expect("hold"), |held| *held)
            .expect("hold");
        match *self.refuse.lock().expect("refuse") {
            Some((at, Fault::Batch)) if at == index => {
                return Err(ApplyError::Refused("refused by the test".into()));
            }
            Some((at, Fault::Local)) if at == index => {
                return Err(ApplyError::Local("database is locked (the test)".into()));
            }
            _ => {}
        }
        Replica::apply_from(&self.store, peer, changes, cursor)
    }
    fn watch_head(&self) -> watch::Receiver<DbVersion> {
        Replica::watch_head(&self.store)
    }
    fn refresh_head(&self) -> Result<(), ReplicaError> {
        Replica::refresh_head(&self.store)
    }
    fn release_held(&self) -> Result<Vec<(PeerId, HeldChanges)>, ReplicaError> {
        Replica::release_held(&self.store)
    }
    fn sharing_rules(&self) -> Result<SharingRules, ReplicaError> {
        Replica::sharing_rules(&self.store)
    }
    fn levelled_rules(&self, peer: &PeerId) -> Result<Option<HeldFlows>, ReplicaError> {
        Replica::levelled_rules(&self.store, peer)
    }
    fn set_levelled_rules(&self, peer: &PeerId, held: &HeldFlows) -> Result<(), ReplicaError> {
        Replica::set_levelled_rules(&self.store, peer, held)
    }
    fn serve(&self, peer: &PeerId, request: Request, limits: &ReconLimits) -> Response {
        self.seen.lock().expect("seen").push(request.clone());
        Replica::serve(&self.store, peer, request, limits)
    }
    fn has_records(&self) -> Result<bool, ReplicaError> {
        Replica::has_records(&self.store)
    }
    fn set_peer_cursor(&self, peer: &PeerId, cursor: SyncCursor) -> Result<(), ReplicaError> {
        Replica::set_peer_cursor(&self.store, peer, cursor)
    }
    fn allows(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        direction: Direction,
    ) -> Result<bool, ReplicaError> {
        Replica::allows(&self.store, peer, collection, direction)
    }
    fn record_count_up_to(
        &self,
        collection: &CollectionName,
        limit: u64,
    ) -> Result<u64, ReplicaError> {
        Replica::record_count_up_to(&self.store, collection, limit)
    }
    fn root_fingerprint(&self, collection: &CollectionName) -> Result<Fingerprint, ReplicaError> {
        Replica::root_fingerprint(&self.store, collection)
    }
    fn recon_start(
        &self,
        collection: &CollectionName,
        limits: ReconLimits,
    ) -> Result<Reconciler, ReplicaError> {
        Replica::recon_start(&self.store, collection, limits)
    }
    fn recon_receive(
        &self,
        collection: &CollectionName,
        walk: &mut Reconciler,
        reply: Vec<Entry>,
        answered: usize,
    ) -> Result<(), ReplicaError> {
        Replica::recon_receive(&self.store, collection, walk, reply, answered)
    }
    fn record_changes(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Vec<Change>>, ReplicaError> {
        Replica::record_changes(&self.store, collection, id)
    }
    fn merge_records(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        changes: &[Change],
    ) -> Result<bool, ReplicaError> {
        Replica::merge_records(&self.store, peer, collection, changes)
    }
    fn missing_blobs(&self, limit: usize) -> Result<Vec<MissingBlob>, ReplicaError> {
        Replica::missing_blobs(&self.store, limit)
    }
    fn blob_outline_for(
        &self,
        peer: &PeerId,
        hash: &BlobHash,
    ) -> Result<Result<Outline, BlobRefusal>, ReplicaError> {
        Replica::blob_outline_for(&self.store, peer, hash)
    }
    fn blob_piece(
        &self,
        outline: &Outline,
        index: u64,
        into: &mut Vec<u8>,
    ) -> Result<(), ReplicaError> {
        Replica::blob_piece(&self.store, outline, index, into)
    }
    fn blob_claim(&self, hash: &BlobHash) -> Result<Option<Box<dyn BlobSink>>, ReplicaError> {
        Replica::blob_claim(&self.store, hash)
    }
    fn held_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<BlobHash>, ReplicaError> {
        Replica::held_blobs(&self.store, after, limit)
    }
    fn verify_blob(
        &self,
        hash: &BlobHash,
        on_read: &mut dyn FnMut(u64),
    ) -> Result<bool, ReplicaError> {
        Replica::verify_blob(&self.store, hash, on_read)
    }
    fn blob_cap(&self) -> u64 {
        Replica::blob_cap(&self.store)
    }
}

/// Starts a loopback node for `spy` dialing `peers`, anti-entropy off,
/// letting the test adjust the config further.
pub async fn start(
    spy: Arc<Spy>,
    peers: Vec<shoal::Multiaddr>,
    adjust: impl FnOnce(&mut shoal::NodeConfig),
) -> (shoal::Node, shoal::Multiaddr) {
    let mut config = shoal::NodeConfig::loopback(crate::common::group_key());
    config.peers = peers;
    config.redial_interval = Duration::from_millis(300);
    config.anti_entropy = None;
    adjust(&mut config);
    let node = shoal::Node::start(spy, config)
        .await
        .expect("start spy node");
    let address = node
        .listen_addrs(Duration::from_secs(10))
        .await
        .expect("listen address")
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .expect("a TCP address");
    (node, address)
}
