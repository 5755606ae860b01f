//! Partial replicas, the store's side (see `docs/partial.md`): this node's
//! own filters, the filters each peer declared, the sending-side check that
//! every path handing a peer a record asks ([`PeerFilter`]), and dropping
//! records that left this node's filters without a delete.
//!
//! The filter language and its evaluation are `shoal_core::partial`'s; which
//! reads consult a [`PeerFilter`] is decided by `log.rs`, `federation.rs` and
//! `blob_index.rs`. This module never sends anything.

use crate::Store;
use crate::error::StoreError;
use crate::rows;
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::partial::PartialFilters;
use shoal_core::recon::ReconKey;
use shoal_core::{CollectionName, RecordId};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now: the `now` of relative filters, read when a
/// record is about to be sent.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
    /// (never as deletes); every peer cursor is reset so records that now
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
        let tx = self.conn.transaction()?;
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
        let mut out = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT r.rid, r.data FROM records r JOIN collections c ON c.cid = r.cid
                 WHERE c.name = ?1",
            )?;
            let mut rows = stmt.query([collection.as_str()])?;
            let now = now_ms();
            while let Some(row) = rows.next()? {
                let data: Option<String> = row.get(1)?;
                let fields = data.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok());
                if !filters.admits(collection, fields.as_ref().and_then(|v| v.as_object()), now) {
                    out.push((collection.clone(), RecordId::new(row.get::<_, String>(0)?)?));
                }
            }
        }
        self.drop_records(&out)
    }

    /// Records the filters `peer` declared in the session just started
    /// (replacing those of its earlier sessions).
    pub fn set_peer_filters(
        &mut self,
        peer: &str,
        filters: &PartialFilters,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
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
        let filter = PeerFilter::load(&self.conn, peer)?;
        if !filter.filters(collection) {
            return Ok(true);
        }
        let data = record_data(&self.conn, collection, id)?;
        Ok(filter.admits(collection, data.as_deref()))
    }

    /// The filters `peer` declared (empty: a full peer).
    pub fn peer_filters(&self, peer: &str) -> Result<PartialFilters, StoreError> {
        peer_filters(&self.conn, peer)
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
                .conn
                .prepare_cached(
                    "SELECT r.slots FROM records r JOIN collections c ON c.cid = r.cid
                     WHERE c.name = ?1 AND r.rid = ?2",
                )?
                .query_row(params![collection.as_str(), id.as_str()], |r| r.get(0))
                .optional()?;
            let Some(slots) = slots else { continue };
            let own = self.identity.site();
            let unacked_own_write = rows::unpack_slots(&slots)?
                .iter()
                .any(|(_, version, at)| version.clock.site == own && at.0 as i64 > acked);
            if unacked_own_write {
                tracing::debug!(%peer, %collection, %id, "kept a record that left the filter: written here since the peer's ack");
                continue;
            }
            going.push((collection.clone(), id.clone()));
        }
        self.drop_records(&going)
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
        let tx = self.conn.transaction()?;
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
            // The log's head is MAX(dbv): keep it from moving back when the
            // newest record goes (as tombstone collection does).
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('log_floor', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([self.db_version.0.to_be_bytes().to_vec()])?;
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
