//! Partial replicas, the store's side (see `docs/partial.md`): this node's
//! own filters, the filters each peer declared, the sending-side check that
//! every path handing a peer a record asks ([`PeerFilter`]), and dropping
//! records that left this node's filters without a delete.
//!
//! The filter language and its evaluation are `shoal_core::partial`'s; which
//! reads consult a [`PeerFilter`] is decided by `log.rs`, `federation.rs` and
//! `blob_index.rs`. This module never sends anything.

use crate::error::StoreError;
use crate::rows;
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::partial::PartialFilters;
use shoal_core::recon::ReconKey;
use shoal_core::{CollectionName, RecordId};

/// Records read per page when this node re-evaluates its own filters
/// locally (narrowing a filter, the time sweep).
pub(crate) const OUTSIDE_PAGE: usize = 1024;

/// What one page of [`Store::drop_outside`] did.
#[derive(Debug, Default)]
pub(crate) struct OutsidePage {
    /// Records dropped.
    pub(crate) dropped: usize,
    /// The last id read, when the page was full (read on after it).
    pub(crate) next: Option<RecordId>,
}

/// What to do with one record for a peer, by its filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The collection is not filtered: send as for a full peer.
    Full,
    /// It matches: send the record whole (the peer may not hold the slots
    /// written before its cursor, if it just started matching).
    Whole,
    /// It does not match, and the peer was sent it before: name it in a
    /// `Leave`.
    Leave,
    /// It does not match and the peer never had it: nothing at all.
    Hidden,
}

/// A peer's filters as one read sees them (loaded once per read).
#[derive(Debug, Clone)]
pub(crate) struct PeerFilter {
    peer: String,
    filters: PartialFilters,
    now_ms: u64,
}

impl PeerFilter {
    /// The filters `peer` declared (none: it is a full peer).
    pub(crate) fn load(conn: &Connection, peer: &str) -> Result<Self, StoreError> {
        Ok(Self {
            peer: peer.to_string(),
            filters: peer_filters(conn, peer)?,
            now_ms: now_ms(),
        })
    }

    /// Whether `collection` is filtered for this peer.
    pub(crate) fn filters(&self, collection: &CollectionName) -> bool {
        self.filters.filters(collection)
    }

    /// Whether the peer may see this record (`data`: its rendered JSON,
    /// `None` while deleted).
    pub(crate) fn admits(&self, collection: &CollectionName, data: Option<&str>) -> bool {
        if !self.filters(collection) {
            return true;
        }
        let fields = data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok());
        let fields = fields.as_ref().and_then(|v| v.as_object());
        self.filters.admits(collection, fields, self.now_ms)
    }

    /// What a log read does with this record, recording a record sent in
    /// whole as one the peer may hold from now on.
    pub(crate) fn verdict(
        &self,
        conn: &Connection,
        collection: &CollectionName,
        id: &RecordId,
        data: Option<&str>,
    ) -> Result<Verdict, StoreError> {
        if !self.filters(collection) {
            return Ok(Verdict::Full);
        }
        let Some(cid) = rows::collection_id(conn, collection, false)? else {
            return Ok(Verdict::Hidden);
        };
        if self.admits(collection, data) {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO partial_sent (peer, cid, rid) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![self.peer, cid, id.as_str()])?;
            return Ok(Verdict::Whole);
        }
        let sent: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM partial_sent WHERE peer = ?1 AND cid = ?2 AND rid = ?3")?
            .query_row(params![self.peer, cid, id.as_str()], |r| r.get(0))
            .optional()?;
        Ok(match sent {
            Some(_) => Verdict::Leave,
            None => Verdict::Hidden,
        })
    }
}

/// The filters `peer` last declared.
fn peer_filters(conn: &Connection, peer: &str) -> Result<PartialFilters, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT collection, filter FROM partial_peers WHERE peer = ?1")?;
    let texts = stmt
        .query_map([peer], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .map(|row| {
            let (collection, filter) = row?;
            Ok((CollectionName::new(collection)?, filter))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(PartialFilters::from_texts(&texts)?)
}

/// The rendered JSON of a record (`None`: deleted or never seen).
pub(crate) fn record_data(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT r.data FROM records r JOIN collections c ON c.cid = r.cid
             WHERE c.name = ?1 AND r.rid = ?2",
        )?
        .query_row(params![collection.as_str(), id.as_str()], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()?
        .flatten())
}

impl Store {
    /// The filters this node takes records by (empty: a full replica).
    pub fn own_filters(&self) -> Result<PartialFilters, StoreError> {
        let mut stmt = self
            .db
            .conn
            .prepare_cached("SELECT collection, filter FROM partial_own ORDER BY collection")?;
        let texts = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .map(|row| {
                let (collection, filter) = row?;
                Ok((CollectionName::new(collection)?, filter))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PartialFilters::from_texts(&texts)?)
    }

    /// Takes only the records of `collection` matching `filter` from now on
    /// (`None`: the whole collection again). A bad filter is refused and
    /// changes nothing. Records held here that do not match are dropped
    /// (never as deletes; kept: one with a write of this node's own some
    /// known peer has not acknowledged, so it is not lost everywhere); every
    /// peer cursor is reset so records that now
    /// match arrive in the next catch-up. Returns how many were dropped.
    pub fn set_own_filter(
        &mut self,
        collection: &CollectionName,
        filter: Option<&str>,
    ) -> Result<usize, StoreError> {
        let mut filters = self.own_filters()?;
        match filter {
            Some(text) => filters.set(collection.clone(), text)?,
            None => {
                filters.remove(collection);
            }
        }
        let tx = WriteTxn::begin_deferred(&self.db)?;
        match filter {
            Some(text) => {
                tx.execute(
                    "INSERT INTO partial_own (collection, filter) VALUES (?1, ?2)
                     ON CONFLICT (collection) DO UPDATE SET filter = excluded.filter",
                    params![collection.as_str(), text],
                )?;
            }
            None => {
                tx.execute(
                    "DELETE FROM partial_own WHERE collection = ?1",
                    [collection.as_str()],
                )?;
            }
        }
        // Records that match now may be behind every cursor.
        tx.execute("DELETE FROM peer_cursors", [])?;
        tx.commit()?;
        let now = now_ms();
        let mut dropped = 0;
        let mut after = None;
        loop {
            let page =
                self.drop_outside(&filters, collection, after.as_ref(), now, OUTSIDE_PAGE)?;
            dropped += page.dropped;
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(dropped),
            }
        }
    }

    /// Records the filters `peer` declared in the session just started
    /// (replacing those of its earlier sessions).
    pub fn set_peer_filters(
        &mut self,
        peer: &str,
        filters: &PartialFilters,
    ) -> Result<(), StoreError> {
        let tx = WriteTxn::begin_deferred(&self.db)?;
        tx.execute("DELETE FROM partial_peers WHERE peer = ?1", [peer])?;
        for (collection, text) in filters.to_texts() {
            tx.execute(
                "INSERT INTO partial_peers (peer, collection, filter) VALUES (?1, ?2, ?3)",
                params![peer, collection.as_str(), text],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether `peer`'s filters admit this record (always for a full peer).
    pub fn peer_admits(
        &self,
        peer: &str,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<bool, StoreError> {
        let filter = PeerFilter::load(&self.db.conn, peer)?;
        if !filter.filters(collection) {
            return Ok(true);
        }
        let data = record_data(&self.db.conn, collection, id)?;
        Ok(filter.admits(collection, data.as_deref()))
    }

    /// The filters `peer` declared (empty: a full peer).
    pub fn peer_filters(&self, peer: &str) -> Result<PartialFilters, StoreError> {
        peer_filters(&self.db.conn, peer)
    }

    /// `peer` said these records left this node's filters: drops them with
    /// no delete, no tombstone and no log entry, so nothing about them is
    /// ever sent on (see `docs/partial.md`). Kept: a record of a collection
    /// this node does not filter, and one written *here* since `peer` last
    /// acknowledged this node's log (the write may not have reached it;
    /// the peer names the record again when it next changes there). Returns how many went.
    pub fn leave_records(
        &mut self,
        peer: &str,
        records: &[(CollectionName, RecordId)],
    ) -> Result<usize, StoreError> {
        let filters = self.own_filters()?;
        let acked: i64 = self
            .db
            .conn
            .prepare_cached("SELECT acked FROM peer_acks WHERE peer = ?1")?
            .query_row([peer], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let mut going = Vec::new();
        for (collection, id) in records {
            if !filters.filters(collection) {
                continue;
            }
            let slots: Option<Vec<u8>> = self
                .db
                .conn
                .prepare_cached(
                    "SELECT r.slots FROM records r JOIN collections c ON c.cid = r.cid
                     WHERE c.name = ?1 AND r.rid = ?2",
                )?
                .query_row(params![collection.as_str(), id.as_str()], |r| r.get(0))
                .optional()?;
            let Some(slots) = slots else { continue };
            if self.written_here_since(&slots, acked)? {
                tracing::debug!(%peer, %collection, %id, "kept a record that left the filter: written here since the peer's ack");
                continue;
            }
            going.push((collection.clone(), id.clone()));
        }
        self.drop_records(&going)
    }

    /// Whether a record (its packed `slots`) has a slot written by this
    /// node after the db_version `acked`: a write a peer that acknowledged
    /// only up to `acked` may not have, so dropping the record could lose it.
    fn written_here_since(&self, slots: &[u8], acked: i64) -> Result<bool, StoreError> {
        let own = self.identity.site();
        Ok(crate::packed_slots::unpack_slots(slots)?
            .iter()
            .any(|(_, version, at)| version.clock.site == own && at.0 as i64 > acked))
    }

    /// The lowest db_version of this node's log every known peer has
    /// acknowledged (0 when no peer is known, or one never acknowledged).
    fn lowest_ack(&self) -> Result<i64, StoreError> {
        Ok(self
            .db
            .conn
            .prepare_cached(
                "SELECT MIN(COALESCE(a.acked, 0))
                 FROM (SELECT peer FROM peer_cursors UNION SELECT peer FROM peer_acks) p
                 LEFT JOIN peer_acks a ON a.peer = p.peer",
            )?
            .query_row([], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0))
    }

    /// One page of the local re-evaluation of this node's own `filters` for
    /// `collection` at `now`: reads at most `limit` records after the id
    /// `after`, in id order, and drops (by [`Store::drop_records`]: no
    /// delete, no tombstone, no log entry) those the filter no longer
    /// admits — except one with a slot written here that some known peer
    /// has not acknowledged (or any written here when no peer ever
    /// acknowledged: the record may exist nowhere else). `next`: the last
    /// id read, when there may be more. Narrowing a filter and the time
    /// sweep (`partial_age.rs`) both go through here.
    pub(crate) fn drop_outside(
        &mut self,
        filters: &PartialFilters,
        collection: &CollectionName,
        after: Option<&RecordId>,
        now: u64,
        limit: usize,
    ) -> Result<OutsidePage, StoreError> {
        let Some(cid) = rows::collection_id(&self.db.conn, collection, false)? else {
            return Ok(OutsidePage::default());
        };
        let acked = self.lowest_ack()?;
        let mut going = Vec::new();
        let mut read = 0;
        let mut last = None;
        {
            let mut stmt = self.db.conn.prepare_cached(
                "SELECT rid, data, slots FROM records WHERE cid = ?1 AND rid > ?2
                 ORDER BY rid LIMIT ?3",
            )?;
            let mut rows =
                stmt.query(params![cid, after.map_or("", |a| a.as_str()), limit as i64])?;
            while let Some(row) = rows.next()? {
                read += 1;
                let rid: String = row.get(0)?;
                let data: Option<String> = row.get(1)?;
                let fields = data.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok());
                let admitted =
                    filters.admits(collection, fields.as_ref().and_then(|v| v.as_object()), now);
                if !admitted {
                    let slots: Vec<u8> = row.get(2)?;
                    if self.written_here_since(&slots, acked)? {
                        tracing::debug!(%collection, id = %rid, "kept a record outside the filter: written here, not acknowledged by every peer");
                    } else {
                        going.push((collection.clone(), RecordId::new(rid.clone())?));
                    }
                }
                last = Some(rid);
            }
        }
        let next = match (read == limit, last) {
            (true, Some(rid)) => Some(RecordId::new(rid)?),
            _ => None,
        };
        Ok(OutsidePage {
            dropped: self.drop_records(&going)?,
            next,
        })
    }

    /// Removes records with everything indexed about them, without a
    /// trace in the log. Returns how many were held.
    fn drop_records(
        &mut self,
        records: &[(CollectionName, RecordId)],
    ) -> Result<usize, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        // Writing from the start, and caught up with other connections'
        // commits: the floor and the mark below are this store's head and
        // clock, which must be the file's.
        let tx = WriteTxn::begin(&mut self.db)?;
        // Forgotten at once: the memo now counts the other commit as seen,
        // so a drop failing below must not leave trees or scans from
        // before it.
        if self
            .head_memo
            .refresh(&tx, tx.kept(), &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let mut dropped = 0;
        let mut touched = Vec::new();
        for (collection, id) in records {
            let Some(cid) = rows::collection_id(&tx, collection, false)? else {
                continue;
            };
            let n = tx
                .prepare_cached("DELETE FROM records WHERE cid = ?1 AND rid = ?2")?
                .execute(params![cid, id.as_str()])?;
            if n == 0 {
                continue;
            }
            dropped += 1;
            let key = rows::key_column(ReconKey::of(id));
            tx.prepare_cached("DELETE FROM recon_keys WHERE cid = ?1 AND rkey = ?2 AND rid = ?3")?
                .execute(params![cid, key, id.as_str()])?;
            tx.prepare_cached("DELETE FROM blob_refs WHERE cid = ?1 AND rid = ?2")?
                .execute(params![cid, id.as_str()])?;
            touched.push(cid);
        }
        if dropped > 0 {
            rows::keep_head(&tx, self.db_version, self.hlc.last())?;
            for cid in &touched {
                crate::recon_saved::forget(&tx, *cid)?;
            }
        }
        tx.commit()?;
        if dropped > 0 {
            self.recon.clear();
        }
        Ok(dropped)
    }
}
