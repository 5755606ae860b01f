//! Starting a sync node for a [`Store`]: the store is the network layer's
//! [`Replica`](shoal_net::Replica) — its key, cursors, log reads and atomic
//! apply-with-cursor — and [`Store::start_node`] runs a [`Node`] for it.
//!
//! This file is only the seam; the protocol is `shoal-core`'s and the
//! transport `shoal-net`'s.

use crate::error::Error;
use crate::peer_key::peer_key;
use crate::store::Store;
use shoal_core::blob::{BlobHash, BlobRefusal, MissingBlob, Outline};
use shoal_core::partial::PartialFilters;
use shoal_core::recon::{
    Entry, FilteredError, FilteredWalk, Fingerprint, Item, Node as TreeNode, ReconLimits,
    ReconView, Reconciler,
};
use shoal_core::sync::federation::{Request, Response};
use shoal_core::{
    Change, CollectionName, DbVersion, Direction, HeldFlows, LogRead, RecordId, SharingRules,
    SyncCursor,
};
use shoal_net::{
    ApplyError, Attempt, BlobSink, HeldChanges, Node, NodeConfig, PeerId, Replica, ReplicaError,
};
use shoal_store::{Arrival, BlobClaim, StoreError};
use std::sync::Arc;
use tokio::sync::watch;

impl Replica for Store {
    fn keypair(&self) -> libp2p_identity::Keypair {
        self.db().identity().keypair().clone()
    }

    fn peer_cursor(&self, peer: &PeerId) -> Result<SyncCursor, ReplicaError> {
        Ok(Store::peer_cursor(self, &peer_key(peer))?)
    }

    fn read_for_peer(
        &self,
        peer: &PeerId,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.read_for_peer(&peer, cursor, max_changes, max_bytes))?)
    }

    fn try_read_for_peer(
        &self,
        peer: &PeerId,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Attempt<LogRead> {
        let peer = peer_key(peer);
        match self.try_with_db(|db| db.read_for_peer(&peer, cursor, max_changes, max_bytes)) {
            Some(read) => Attempt::Done(read.map_err(Into::into)),
            None => Attempt::WouldWait,
        }
    }

    fn session_started(&self, peer: &PeerId) -> Result<(), ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| {
            db.session_started(&peer);
            Ok(())
        })?)
    }

    fn device_check(&self, peer: &PeerId) -> Result<shoal_net::DeviceCheck, ReplicaError> {
        Ok(crate::devices::check(self, peer)?)
    }

    fn apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<(), ApplyError> {
        Store::apply_from(self, &peer_key(peer), changes, cursor)
            .map(|_| ())
            .map_err(at_fault)
    }

    fn try_apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Attempt<(), ApplyError> {
        match Store::try_apply_from(self, &peer_key(peer), changes, cursor) {
            Some(applied) => Attempt::Done(applied.map(|_| ()).map_err(at_fault)),
            None => Attempt::WouldWait,
        }
    }

    fn watch_head(&self) -> watch::Receiver<DbVersion> {
        Store::watch_head(self)
    }

    fn refresh_head(&self) -> Result<(), ReplicaError> {
        Ok(Store::refresh_head(self)?)
    }

    fn release_held(&self) -> Result<Vec<(PeerId, HeldChanges)>, ReplicaError> {
        let held = Store::release_held(self)?;
        Ok(held
            .into_iter()
            .filter_map(|h| {
                let peer = h.peer.parse::<PeerId>().ok()?;
                let held = HeldChanges {
                    changes: h.changes,
                    max_wall_ms: h.max_wall_ms,
                };
                Some((peer, held))
            })
            .collect())
    }

    fn sharing_rules(&self) -> Result<SharingRules, ReplicaError> {
        Ok(self.with_db(|db| db.sharing())?)
    }

    fn levelled_rules(&self, peer: &PeerId) -> Result<Option<HeldFlows>, ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.levelled_rules(&peer))?)
    }

    fn note_peer_acked(&self, peer: &PeerId, cursor: SyncCursor) -> Result<(), ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.set_peer_acked(&peer, cursor))?)
    }

    fn set_levelled_rules(&self, peer: &PeerId, held: &HeldFlows) -> Result<(), ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.set_levelled_rules(&peer, held))?)
    }

    fn serve(&self, peer: &PeerId, request: Request, limits: &ReconLimits) -> Response {
        let mut db = self.db();
        let (response, merged) = db.serve_request(&peer_key(peer), request, limits);
        // An offered record merged here is announced like any remote change
        // (with the database still locked, in commit order).
        let version = merged.and_then(|report| {
            self.after_apply(&report);
            report.version
        });
        drop(db);
        self.head_moved(version);
        response
    }

    fn has_records(&self) -> Result<bool, ReplicaError> {
        Ok(self.with_db(|db| db.has_records())?)
    }

    fn set_peer_cursor(&self, peer: &PeerId, cursor: SyncCursor) -> Result<(), ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.set_peer_cursor(&peer, cursor))?)
    }

    fn allows(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        direction: Direction,
    ) -> Result<bool, ReplicaError> {
        let rules = self.with_db(|db| db.sharing())?;
        Ok(rules.allows(&peer_key(peer), collection, direction))
    }

    fn record_count_up_to(
        &self,
        collection: &CollectionName,
        limit: u64,
    ) -> Result<u64, ReplicaError> {
        Ok(self.with_db(|db| db.record_count_up_to(collection, limit))?)
    }

    fn root_fingerprint(&self, collection: &CollectionName) -> Result<Fingerprint, ReplicaError> {
        Ok(self.with_db(|db| db.recon_view(collection)?.fingerprint(TreeNode::ROOT))?)
    }

    fn recon_start(
        &self,
        collection: &CollectionName,
        limits: ReconLimits,
    ) -> Result<Reconciler, ReplicaError> {
        let mut db = self.db();
        let mut view = db.recon_view(collection)?;
        Ok(Reconciler::start(&mut view, limits)?)
    }

    fn recon_receive(
        &self,
        collection: &CollectionName,
        walk: &mut Reconciler,
        reply: Vec<Entry>,
        answered: usize,
    ) -> Result<(), ReplicaError> {
        let mut db = self.db();
        let mut view = db.recon_view(collection)?;
        Ok(walk.receive(&mut view, reply, answered)?)
    }

    fn filtered_with(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
    ) -> Result<bool, ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.is_filtered_with(&peer, collection))?)
    }

    fn filtered_receive(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        walk: &mut FilteredWalk,
        items: Vec<Item>,
        next: Option<RecordId>,
    ) -> Result<(), FilteredError<ReplicaError>> {
        let db = self.db();
        db.filtered_receive(&peer_key(peer), collection, walk, items, next)
            .map_err(|e| match e {
                FilteredError::Local(e) => {
                    FilteredError::Local(Error::from(e.with_path(db.path())).into())
                }
                FilteredError::TooManyRounds(n) => FilteredError::TooManyRounds(n),
                FilteredError::BadAnswer(why) => FilteredError::BadAnswer(why),
            })
    }

    fn record_changes(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Vec<Change>>, ReplicaError> {
        Ok(self.with_db(|db| db.record_changes(collection, id))?)
    }

    fn merge_records(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        changes: &[Change],
    ) -> Result<bool, ReplicaError> {
        let report =
            self.merge_with(|db| db.merge_from_peer(&peer_key(peer), collection, changes))?;
        Ok(!report.changed.is_empty())
    }

    fn missing_blobs(&self, limit: usize) -> Result<Vec<MissingBlob>, ReplicaError> {
        // Blobs on demand: nothing is fetched before it is opened.
        Ok(self.with_db(|db| match db.blobs_on_demand()?.enabled {
            true => Ok(Vec::new()),
            false => db.missing_blobs(None, limit),
        })?)
    }

    fn missing_blob(&self, hash: &BlobHash) -> Result<Option<MissingBlob>, ReplicaError> {
        Ok(self.with_db(|db| db.missing_blob(hash))?)
    }

    fn fetched_on_demand(
        &self,
        hash: &BlobHash,
        size: u64,
        peer: &PeerId,
    ) -> Result<(), ReplicaError> {
        Ok(self.book_on_demand(hash, size, peer)?)
    }

    fn blob_outline_for(
        &self,
        peer: &PeerId,
        hash: &BlobHash,
    ) -> Result<Result<Outline, BlobRefusal>, ReplicaError> {
        let peer = peer_key(peer);
        if !self.with_db(|db| db.blob_readable_by(&peer, hash))? {
            // Also when no record references it: nothing to share.
            return Ok(Err(BlobRefusal::NotShared));
        }
        Ok(self
            .inner
            .blob_files
            .outline(hash)?
            .ok_or(BlobRefusal::NotFound))
    }

    fn blob_piece(
        &self,
        outline: &Outline,
        index: u64,
        into: &mut Vec<u8>,
    ) -> Result<(), ReplicaError> {
        Ok(self.inner.blob_files.read_piece(outline, index, into)?)
    }

    fn blob_claim(&self, hash: &BlobHash) -> Result<Option<Box<dyn BlobSink>>, ReplicaError> {
        match self.inner.blob_files.claim(hash) {
            Ok(claim) => Ok(Some(Box::new(Claimed {
                store: self.clone(),
                claim,
            }))),
            Err(StoreError::BlobBusy { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn held_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<BlobHash>, ReplicaError> {
        let page = Store::list_blobs(self, after, limit)?;
        Ok(page.into_iter().map(|b| b.hash).collect())
    }

    fn verify_blob(
        &self,
        hash: &BlobHash,
        on_read: &mut dyn FnMut(u64),
    ) -> Result<bool, ReplicaError> {
        let verdict = Store::verify_blob(self, hash, on_read)?;
        Ok(matches!(verdict, shoal_store::Scrubbed::Good))
    }

    fn blob_cap(&self) -> u64 {
        self.inner.blob_cap
    }

    fn own_filters(&self) -> Result<PartialFilters, ReplicaError> {
        Ok(self.with_db(|db| db.own_filters())?)
    }

    fn set_peer_filters(
        &self,
        peer: &PeerId,
        filters: &PartialFilters,
    ) -> Result<(), ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.set_peer_filters(&peer, filters))?)
    }

    fn admits(
        &self,
        peer: &PeerId,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<bool, ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.peer_admits(&peer, collection, id))?)
    }

    fn leave(
        &self,
        peer: &PeerId,
        records: &[(CollectionName, RecordId)],
    ) -> Result<usize, ReplicaError> {
        let peer = peer_key(peer);
        Ok(self.with_db(|db| db.leave_records(&peer, records))?)
    }

    fn age_out(&self) -> Result<usize, ReplicaError> {
        Ok(self.age_out_partial()?)
    }
}

/// A fetch's claim on one blob's partial file, with the store to index the
/// blob in once it is placed.
struct Claimed {
    store: Store,
    claim: BlobClaim,
}

impl BlobSink for Claimed {
    fn resume_point(&mut self) -> Result<u64, ReplicaError> {
        Ok(self.claim.resume_point()?)
    }

    fn append(&mut self, outline: &Outline, index: u64, bytes: &[u8]) -> Result<(), ReplicaError> {
        Ok(self.claim.append_piece(outline, index, bytes)?)
    }

    fn finish(self: Box<Self>, outline: &Outline) -> Result<(), ReplicaError> {
        let Claimed { store, claim } = *self;
        claim.finish(outline)?;
        match store.with_db(|db| db.blob_arrived(outline))? {
            Arrival::Indexed => Ok(()),
            Arrival::FileGone => Err(format!(
                "blob {} was garbage-collected as it was placed; it is fetched again",
                outline.hash
            )
            .into()),
        }
    }
}

impl Store {
    /// Starts a background sync node for this store on the current tokio
    /// runtime: it listens, dials the configured peers, discovers others by
    /// mDNS if enabled, proves membership, and keeps the replicas converged.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use shoal::{GroupKey, GroupSalt, NodeConfig, Store};
    /// let store = Store::open("notes.db")?;
    /// // The group's salt: random when the group is made, shared with its invites.
    /// let salt = GroupSalt::from_hex("5f0c4e2a9b7d13e8a6c2f41d0b9e7a35")?;
    /// let key = GroupKey::from_passphrase("correct horse battery staple", &salt)?;
    /// let node = store.start_node(NodeConfig::loopback(key)).await?;
    /// println!("listening on {:?}", node.listen_addrs(std::time::Duration::from_secs(5)).await?);
    /// # Ok(()) }
    /// ```
    ///
    /// Commits other processes make on the same file are pushed at once
    /// (see [`Store::watch_other_writers`]).
    pub async fn start_node(&self, config: NodeConfig) -> Result<Node, Error> {
        self.watch_other_writers();
        Ok(Node::start(Arc::new(self.clone()), config).await?)
    }
}

/// Whose fault a failed merge of a peer's batch is: the batch's when its
/// content is what the store could not take — a rule of the core's, more
/// clock-ahead changes than may be held, a value SQLite finds too big —
/// else this store's (its file busy, full, damaged or unreadable, a blob
/// file it could not write), which must not get the peer refused.
fn at_fault(e: Error) -> ApplyError {
    let refused = match &e {
        Error::Invalid(_) => true,
        Error::Store(store) => match store {
            StoreError::Sqlite(_) => store.is_too_big(),
            StoreError::HeldFull { .. }
            | StoreError::Invalid(_)
            | StoreError::BadBlobRef(_)
            | StoreError::BlobTooLarge { .. }
            | StoreError::BlobMismatch { .. }
            | StoreError::SchemaViolation { .. }
            | StoreError::NewerDataVersion { .. }
            | StoreError::ReadOnlyDevice { .. }
            | StoreError::ReservedCollection { .. }
            | StoreError::NotShared { .. }
            | StoreError::Devices(_) => true,
            StoreError::Missing { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Foreign { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::ObsoleteSchema { .. }
            | StoreError::BadFilter(_)
            | StoreError::BadNodeKey(_)
            | StoreError::InvalidQuery(_)
            | StoreError::Io { .. }
            | StoreError::BlobBusy { .. }
            | StoreError::BadSchema { .. }
            | StoreError::LogFull { .. }
            | StoreError::WouldWait { .. } => false,
        },
        // Not errors a merge makes; were one to, it is nothing the peer sent.
        Error::NotFound { .. }
        | Error::Exists { .. }
        | Error::Serde { .. }
        | Error::Net(_)
        | Error::BlobUnavailable(_) => false,
    };
    match refused {
        true => ApplyError::Refused(e.into()),
        false => ApplyError::Local(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::ffi::c_int) -> Error {
        let failure = rusqlite::ffi::Error::new(code);
        Error::Store(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            failure, None,
        )))
    }

    fn refused(e: Error) -> bool {
        matches!(at_fault(e), ApplyError::Refused(_))
    }

    #[test]
    fn what_the_batch_holds_is_its_fault_and_what_the_file_does_is_ours() {
        assert!(refused(Error::Invalid(
            shoal_core::CoreError::ValueTooLarge { size: 2, cap: 1 }
        )));
        assert!(refused(Error::Store(StoreError::HeldFull {
            held: 1,
            max: 1,
            per_peer: true
        })));
        assert!(refused(sqlite(rusqlite::ffi::SQLITE_TOOBIG)));
        for ours in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_READONLY,
        ] {
            assert!(!refused(sqlite(ours)), "code {ours}");
        }
        assert!(!refused(Error::Store(StoreError::Corrupt {
            path: "x.db".into(),
            detail: "damaged".into()
        })));
    }
}
