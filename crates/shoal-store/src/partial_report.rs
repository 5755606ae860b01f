//! The integrity report of a filtered collection, the store's two sides
//! (see `docs/partial.md`): answering `Request::Filtered` with one bounded
//! page — to a partial peer, of the records its filter admits; to a full
//! peer asking a partial node, of every live record held — and this node's
//! own records of a page's id range for the requesting side's
//! [`FilteredWalk`], admitted by the filter that governs the pair (this
//! node's own, or else the peer's).
//!
//! Digests and flags are read from the `records` row — the very columns
//! the reconciliation trees are built from — so equal records compare
//! equal. Which records a filter admits is `partial.rs`'s ([`PeerFilter`])
//! and `shoal_core::partial`'s; the comparison is the core's. Nothing
//! here is recorded as sent: a listing hands over digests, never state.

use crate::Store;
use crate::error::StoreError;
use crate::now_ms;
use crate::partial::PeerFilter;
use crate::rows;
use crate::rows::digest_column;
use rusqlite::{Connection, OptionalExtension, Row, params};
use shoal_core::partial::PartialFilters;
use shoal_core::recon::{FilteredError, FilteredView, FilteredWalk, Item};
use shoal_core::sync::federation::{MAX_FILTERED_ITEMS, MAX_FILTERED_SCAN};
use shoal_core::{CollectionName, Life, RecordId};

/// The columns a record is listed from, in this order.
const COLUMNS: &str = "rid, digest, life, missing, data";

/// One `records` row as listed: the item and its rendered JSON.
fn listed(row: &Row<'_>) -> Result<(Item, Option<String>), StoreError> {
    let digest = digest_column(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?)?;
    let item = Item {
        id: RecordId::new(row.get::<_, String>(0)?)?,
        digest: digest.short(),
        flags: rows::flags_of(
            Life(row.get::<_, i64>(2)? as u64),
            row.get::<_, i64>(3)? > 0,
        ),
    };
    Ok((item, row.get(4)?))
}

/// One page of what `filter` admits of `collection` after `after` (every
/// live record when it does not filter the collection): at most
/// [`MAX_FILTERED_ITEMS`] records, after reading at most
/// [`MAX_FILTERED_SCAN`]; with the last id read when more may follow.
pub(crate) fn serve_page(
    conn: &Connection,
    filter: &PeerFilter,
    collection: &CollectionName,
    after: Option<&RecordId>,
) -> Result<(Vec<Item>, Option<RecordId>), StoreError> {
    let Some(cid) = rows::collection_id(conn, collection, false)? else {
        return Ok((Vec::new(), None));
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM records WHERE cid = ?1 AND rid > ?2 ORDER BY rid LIMIT ?3"
    ))?;
    let after = after.map_or("", RecordId::as_str);
    let mut found = stmt.query(params![cid, after, MAX_FILTERED_SCAN as i64])?;
    let (mut items, mut read) = (Vec::new(), 0);
    while let Some(row) = found.next()? {
        read += 1;
        let (item, data) = listed(row)?;
        let id = item.id.clone();
        if item.flags.alive && filter.admits(collection, data.as_deref()) {
            items.push(item);
        }
        if items.len() == MAX_FILTERED_ITEMS || read == MAX_FILTERED_SCAN {
            return Ok((items, Some(id)));
        }
    }
    Ok((items, None))
}

/// This node's records of one filtered collection, as its report reads them.
struct OwnView<'a> {
    conn: &'a Connection,
    cid: Option<i64>,
    collection: &'a CollectionName,
    filters: PartialFilters,
    now_ms: u64,
}

impl OwnView<'_> {
    fn admits(&self, data: Option<&str>) -> bool {
        if !self.filters.filters(self.collection) {
            return true;
        }
        let fields = data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok());
        let fields = fields.as_ref().and_then(|v| v.as_object());
        self.filters.admits(self.collection, fields, self.now_ms)
    }
}

impl FilteredView for OwnView<'_> {
    type Error = StoreError;

    fn admitted(
        &mut self,
        after: Option<&RecordId>,
        upto: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let Some(cid) = self.cid else {
            return Ok(Vec::new());
        };
        // Streamed: only admitted records are kept, at most `limit`.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM records WHERE cid = ?1 AND rid > ?2
             AND (?3 IS NULL OR rid <= ?3) ORDER BY rid"
        ))?;
        let mut found = stmt.query(params![
            cid,
            after.map_or("", RecordId::as_str),
            upto.map(RecordId::as_str)
        ])?;
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(row) = found.next()?
        {
            let (item, data) = listed(row)?;
            if item.flags.alive && self.admits(data.as_deref()) {
                out.push(item);
            }
        }
        Ok(out)
    }

    fn held(&mut self, ids: &[RecordId]) -> Result<Vec<Item>, StoreError> {
        let Some(cid) = self.cid else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM records WHERE cid = ?1 AND rid = ?2"
        ))?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(row) = stmt
                .query_row(params![cid, id.as_str()], |row| Ok(listed(row)))
                .optional()?
            {
                out.push(row?.0);
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The filters that govern what `peer` and this node exchange of
    /// `collection`: this node's own if it takes only part of it, else the
    /// peer's if the peer does; `None` when both take it whole (the tree
    /// walk covers it).
    fn governing(
        &self,
        peer: &str,
        collection: &CollectionName,
    ) -> Result<Option<PartialFilters>, StoreError> {
        let own = self.own_filters()?;
        if own.filters(collection) {
            return Ok(Some(own));
        }
        let theirs = self.peer_filters(peer)?;
        Ok(theirs.filters(collection).then_some(theirs))
    }

    /// Whether the integrity report of `collection` with `peer` is the
    /// filtered one: this node, or the peer, takes only part of it.
    pub fn is_filtered_with(
        &self,
        peer: &str,
        collection: &CollectionName,
    ) -> Result<bool, StoreError> {
        Ok(self.governing(peer, collection)?.is_some())
    }

    /// Feeds one page of `peer`'s filtered listing of `collection` to
    /// `walk`, which compares it with this node's records of its range that
    /// the governing filter admits.
    pub fn filtered_receive(
        &self,
        peer: &str,
        collection: &CollectionName,
        walk: &mut FilteredWalk,
        items: Vec<Item>,
        next: Option<RecordId>,
    ) -> Result<(), FilteredError<StoreError>> {
        let filters = self
            .governing(peer, collection)
            .map_err(FilteredError::Local)?
            .unwrap_or_default();
        let mut view = OwnView {
            conn: &self.db.conn,
            cid: rows::collection_id(&self.db.conn, collection, false)
                .map_err(FilteredError::Local)?,
            collection,
            filters,
            now_ms: now_ms(),
        };
        walk.receive(&mut view, items, next)
    }
}
