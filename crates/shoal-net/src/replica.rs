//! [`Replica`]: what the network layer needs from a store — the node key, the
//! persisted per-peer cursors, bounded log reads, atomic apply-with-cursor,
//! a watch on the log's head, federation answers, and blob pieces to serve
//! and to keep.
//!
//! It is the seam between the network and storage: this crate never touches
//! SQLite, and the store never touches a socket.

use crate::status::HeldChanges;
use libp2p::PeerId;
use libp2p::identity::Keypair;
use shoal_core::blob::{BlobHash, BlobRefusal, MissingBlob, Outline};
use shoal_core::partial::PartialFilters;
use shoal_core::recon::{
    Entry, FilteredError, FilteredWalk, Fingerprint, Item, ReconLimits, Reconciler,
};
use shoal_core::sync::Rejection;
use shoal_core::sync::federation::{Request, Response};
use shoal_core::{
    Change, CollectionName, DbVersion, Direction, HeldFlows, LogRead, RecordId, SharingRules,
    SyncCursor,
};
use tokio::sync::watch;

/// Any error a replica reports; the session turns it into a named rejection.
pub type ReplicaError = Box<dyn std::error::Error + Send + Sync>;

/// May an authenticated peer stay in session?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCheck {
    /// Yes: it is admitted, or the group has no owner (nothing is checked).
    Allowed,
    /// No, for this reason ([`Rejection::NotAdmitted`] or [`Rejection::Revoked`]).
    Refused(Rejection),
}

/// Why a replica did not merge a peer's batch. Who is to blame decides how
/// the session ends.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The batch breaks a rule every replica enforces (a malformed change, a
    /// value over the cap, more clock-ahead changes than may be held): the
    /// peer is refused with [`Rejection::Unapplicable`] and both sides wait
    /// out the rejection back-off.
    #[error("{0}")]
    Refused(ReplicaError),
    /// This replica could not merge it (its database busy past the timeout,
    /// its disk full, an I/O error); nothing is wrong with the batch. The
    /// session ends without blaming the peer, and after a short pause the
    /// next one asks again from the same cursor.
    #[error("{0}")]
    Local(ReplicaError),
}

/// A replica call tried only if it needs no waiting (see
/// [`Replica::try_read_for_peer`]).
#[derive(Debug)]
pub enum Attempt<T, E = ReplicaError> {
    /// It ran: its outcome.
    Done(Result<T, E>),
    /// It would have had to wait — for the store another call holds, for
    /// another process's lock on the file, or for a flush to disk — so
    /// nothing was done; make the blocking call instead.
    WouldWait,
}

/// A local replica the node syncs. Calls may block briefly (SQLite); the node
/// runs them off the async executor, but for the `try_` ones.
pub trait Replica: Send + Sync + 'static {
    /// The node's persistent keypair (its libp2p identity).
    fn keypair(&self) -> Keypair;

    /// How far `peer`'s log has been applied here.
    fn peer_cursor(&self, peer: &PeerId) -> Result<SyncCursor, ReplicaError>;

    /// One bounded read of the local log for `peer` at `cursor`: the changes
    /// it may receive, where the read stopped (inside a record too big for
    /// one read), and whether more remain.
    fn read_for_peer(
        &self,
        peer: &PeerId,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, ReplicaError>;

    /// [`read_for_peer`](Self::read_for_peer), made only if it needs no
    /// waiting, so that the caller may make it on its own async task (no
    /// thread hop) and else hand the blocking call to a thread. Never made
    /// by default ([`Attempt::WouldWait`]).
    fn try_read_for_peer(
        &self,
        _peer: &PeerId,
        _cursor: SyncCursor,
        _max_changes: u32,
        _max_bytes: u32,
    ) -> Attempt<LogRead> {
        Attempt::WouldWait
    }

    /// A session with `peer` was authenticated, before anything of it is
    /// read or applied: the replica forgets what the peer sent in earlier
    /// sessions (it may no longer hold it). Does nothing by default.
    fn session_started(&self, _peer: &PeerId) -> Result<(), ReplicaError> {
        Ok(())
    }

    /// Whether `peer`, which proved the group secret, may stay in session
    /// (issue 19): refused when the group has an owner and no admission
    /// counts for it (the replica notes its request) or it was revoked.
    /// Allows every peer by default.
    fn device_check(&self, _peer: &PeerId) -> Result<DeviceCheck, ReplicaError> {
        Ok(DeviceCheck::Allowed)
    }

    /// Merges changes from `peer` (those its sharing rules accept) and
    /// persists `cursor` for it, atomically; on an error nothing is merged
    /// and the error says whether the batch or this replica is at fault.
    fn apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<(), ApplyError>;

    /// `peer` has applied this replica's log up to `cursor` (its ack or its
    /// catch-up request said so): persisted, so tombstones every peer holds
    /// can be collected. Does nothing by default.
    fn note_peer_acked(&self, _peer: &PeerId, _cursor: SyncCursor) -> Result<(), ReplicaError> {
        Ok(())
    }

    /// [`apply_from`](Self::apply_from), made only if it needs no waiting
    /// (as [`try_read_for_peer`](Self::try_read_for_peer)). Never made by
    /// default.
    fn try_apply_from(
        &self,
        _peer: &PeerId,
        _changes: &[Change],
        _cursor: SyncCursor,
    ) -> Attempt<(), ApplyError> {
        Attempt::WouldWait
    }

    /// The db_version of the last local commit, watched for live pushes.
    fn watch_head(&self) -> watch::Receiver<DbVersion>;

    /// Notices commits other processes made to the same replica and moves the
    /// head watch; the node calls it periodically. Does nothing by default.
    fn refresh_head(&self) -> Result<(), ReplicaError> {
        Ok(())
    }

    /// Merges the changes held back for their clocks that local time has
    /// caught up with; returns what is still held, per peer. The node calls
    /// it every second. Holds nothing by default.
    fn release_held(&self) -> Result<Vec<(PeerId, HeldChanges)>, ReplicaError> {
        Ok(Vec::new())
    }

    /// The sharing rules as they stand (a session compares them over time to
    /// notice a rule that starts letting a collection flow).
    fn sharing_rules(&self) -> Result<SharingRules, ReplicaError>;

    /// What the sharing rules held back with `peer` when this node last
    /// levelled with it (`None`: never recorded). A session compares the
    /// rules with it as it starts, to level what widened meanwhile.
    fn levelled_rules(&self, peer: &PeerId) -> Result<Option<HeldFlows>, ReplicaError>;

    /// Persists `held` as what the rules hold back with `peer`, levelled.
    fn set_levelled_rules(&self, peer: &PeerId, held: &HeldFlows) -> Result<(), ReplicaError>;

    /// Answers a federation request from `peer`, under the sharing rules.
    fn serve(&self, peer: &PeerId, request: Request, limits: &ReconLimits) -> Response;

    /// Whether the replica holds any record (a replica that does, yet has no
    /// cursor for a peer, reconciles with it instead of fetching everything).
    fn has_records(&self) -> Result<bool, ReplicaError>;

    /// Persists `cursor` for `peer` without applying anything.
    fn set_peer_cursor(&self, peer: &PeerId, cursor: SyncCursor) -> Result<(), ReplicaError>;

    /// Whether `collection` may flow in `direction` with `peer`.
    fn allows(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        direction: Direction,
    ) -> Result<bool, ReplicaError>;

    /// How many records `collection` holds, live or deleted — the count
    /// [`Replica::root_fingerprint`] carries — counting no further than
    /// `limit` (cheap for a small limit, where the root fingerprint may
    /// first index every record).
    fn record_count_up_to(
        &self,
        collection: &CollectionName,
        limit: u64,
    ) -> Result<u64, ReplicaError>;

    /// The root fingerprint of a collection's reconciliation tree.
    fn root_fingerprint(&self, collection: &CollectionName) -> Result<Fingerprint, ReplicaError>;

    /// Starts a reconciliation walk over `collection`.
    fn recon_start(
        &self,
        collection: &CollectionName,
        limits: ReconLimits,
    ) -> Result<Reconciler, ReplicaError>;

    /// Feeds the peer's answer to a walk.
    fn recon_receive(
        &self,
        collection: &CollectionName,
        walk: &mut Reconciler,
        reply: Vec<Entry>,
        answered: usize,
    ) -> Result<(), ReplicaError>;

    /// Whether this node or `peer` takes only part of `collection` (a
    /// partial replica's filter): the integrity report between them is
    /// then the filtered one (`docs/partial.md`). No filter by default.
    fn filtered_with(
        &self,
        _peer: &PeerId,
        _collection: &CollectionName,
    ) -> Result<bool, ReplicaError> {
        Ok(false)
    }

    /// Feeds one page of `peer`'s filtered listing of `collection` to
    /// `walk`, which compares it with this replica's records of its range
    /// that the filter governing the pair admits. Only called for a
    /// collection [`Replica::filtered_with`] says is filtered.
    fn filtered_receive(
        &self,
        _peer: &PeerId,
        _collection: &CollectionName,
        _walk: &mut FilteredWalk,
        _items: Vec<Item>,
        _next: Option<RecordId>,
    ) -> Result<(), FilteredError<ReplicaError>> {
        Err(FilteredError::Local(
            "this replica takes every collection whole".into(),
        ))
    }

    /// Every slot version of one record (`None` if never seen here).
    fn record_changes(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Vec<Change>>, ReplicaError>;

    /// Merges full record states from `peer`; whether anything changed.
    /// Refused if this replica does not receive `collection` from `peer`.
    fn merge_records(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        changes: &[Change],
    ) -> Result<bool, ReplicaError>;

    /// Up to `limit` blobs live records reference that are not here.
    fn missing_blobs(&self, limit: usize) -> Result<Vec<MissingBlob>, ReplicaError>;

    /// The blob `hash` if live records reference it and it is not here
    /// (fetched on demand by [`crate::Node::fetch_blob`]); `None`: it is
    /// here, or nothing references it. None by default.
    fn missing_blob(&self, hash: &BlobHash) -> Result<Option<MissingBlob>, ReplicaError> {
        let _ = hash;
        Ok(None)
    }

    /// Blob `hash` (`size` bytes) was just fetched on demand from `peer`
    /// (which therefore holds it): the replica keeps its book of blobs
    /// fetched so and may evict others past its budget (never `hash`).
    /// Nothing by default.
    fn fetched_on_demand(
        &self,
        hash: &BlobHash,
        size: u64,
        peer: &PeerId,
    ) -> Result<(), ReplicaError> {
        let _ = (hash, size, peer);
        Ok(())
    }

    /// The outline of `hash` to serve to `peer`, or why not: not here, or no
    /// record referencing it is in a collection sent to that peer.
    fn blob_outline_for(
        &self,
        peer: &PeerId,
        hash: &BlobHash,
    ) -> Result<Result<Outline, BlobRefusal>, ReplicaError>;

    /// Appends piece `index` of a complete blob here (read from disk) to
    /// `into`.
    fn blob_piece(
        &self,
        outline: &Outline,
        index: u64,
        into: &mut Vec<u8>,
    ) -> Result<(), ReplicaError>;

    /// Claims the right to write `hash` for one fetch; `None` while another
    /// fetch (of this node, or of another process on the same store) holds
    /// it. The storage enforces one claim per blob; dropping the sink
    /// releases it.
    fn blob_claim(&self, hash: &BlobHash) -> Result<Option<Box<dyn BlobSink>>, ReplicaError>;

    /// Up to `limit` blobs held here, in hash order after `after`.
    fn held_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<BlobHash>, ReplicaError>;

    /// Re-hashes held blob `hash` (`on_read` is told each read's length and
    /// may pace them); `false` when it was bad and has been set aside (no
    /// longer held, so it is fetched again).
    fn verify_blob(
        &self,
        hash: &BlobHash,
        on_read: &mut dyn FnMut(u64),
    ) -> Result<bool, ReplicaError>;

    /// Largest blob this replica accepts, in bytes.
    fn blob_cap(&self) -> u64;

    /// The filters this replica takes records by (partial replicas; empty:
    /// all), sent to each peer at session start. None by default.
    fn own_filters(&self) -> Result<PartialFilters, ReplicaError> {
        Ok(PartialFilters::default())
    }

    /// `peer` declared the records it takes: every path that sends it a
    /// record checks them from now on. Must be implemented by a replica
    /// that serves partial peers; the default refuses (the session ends
    /// rather than send more than asked).
    fn set_peer_filters(
        &self,
        _peer: &PeerId,
        filters: &PartialFilters,
    ) -> Result<(), ReplicaError> {
        match filters.is_empty() {
            true => Ok(()),
            false => Err("this replica cannot serve partial peers".into()),
        }
    }

    /// Whether `peer`'s filters admit this record (always for a full peer;
    /// for a partial one, only a live record that matches). Every path that
    /// offers a record on this node's initiative asks. True by default.
    fn admits(
        &self,
        _peer: &PeerId,
        _collection: &CollectionName,
        _id: &RecordId,
    ) -> Result<bool, ReplicaError> {
        Ok(true)
    }

    /// `peer` says these records left this replica's filters: drop them
    /// locally, never as deletes. Returns how many went. Keeps all by default.
    fn leave(
        &self,
        _peer: &PeerId,
        _records: &[(CollectionName, RecordId)],
    ) -> Result<usize, ReplicaError> {
        Ok(0)
    }

    /// Re-evaluates, locally and now, this replica's own filters that
    /// mention `now` and drops the records that no longer match them, by
    /// the rule of [`Replica::leave`] (never as deletes; its own writes no
    /// peer acknowledged are kept). Returns how many went. Called by the
    /// node on the blocking pool every `NodeConfig::age_out`; an
    /// implementation should not hold its store for the whole sweep. Keeps
    /// all by default.
    fn age_out(&self) -> Result<usize, ReplicaError> {
        Ok(0)
    }
}

/// Where one claimed fetch keeps its verified pieces: the only writer of
/// that blob's partial file while it lives.
pub trait BlobSink: Send {
    /// How many leading pieces are here and verified (where the fetch
    /// resumes); appends continue from there.
    fn resume_point(&mut self) -> Result<u64, ReplicaError>;

    /// Keeps verified piece `index` (the next one).
    fn append(&mut self, outline: &Outline, index: u64, bytes: &[u8]) -> Result<(), ReplicaError>;

    /// Completes the fetch: the kept bytes are hashed again and placed only
    /// if they are the blob, and the records referencing it are no longer
    /// missing assets.
    fn finish(self: Box<Self>, outline: &Outline) -> Result<(), ReplicaError>;
}
