//! Changes held back: a peer's changes whose clock is further ahead of local
//! wall time than the allowed drift are not merged (they would drag this
//! node's HLC into the future) and not refused with their batch (one such
//! change would stop every other change behind it). They wait in the
//! `held_changes` table, with the peer they came from, until local time
//! catches up with them or the bound is raised, and are then merged like any
//! late change (merges do not depend on order).
//!
//! This module owns that table (created by schema step 5): adding to it within the
//! apply's transaction (bounded: past [`MAX_HELD_CHANGES`] or
//! [`MAX_HELD_BYTES`] in all, or a quarter of either from one peer, the
//! batch is refused by name), listing what is due,
//! and summing it up per peer. It decides nothing about merging (`apply.rs`).

use crate::error::StoreError;
use crate::{Store, now_ms};
use rusqlite::{Connection, params};
use shoal_core::Change;

/// Most changes held back at once, from all peers together.
pub const MAX_HELD_CHANGES: u64 = 100_000;
/// Most bytes of held-back changes at once (their encoded size).
pub const MAX_HELD_BYTES: u64 = 64 * 1024 * 1024;
/// What one peer may fill of either bound: a peer sending far-future
/// clocks must not fill the table and get every other peer's batch with one
/// such change refused.
const PEER_SHARE: u64 = 4;

/// Most held changes merged by one [`Store::release_held`] transaction.
const RELEASE_PAGE: usize = 1_000;

/// What is held back from one peer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeldBack {
    /// The peer the changes came from (its peer id text).
    pub peer: String,
    /// How many changes are held.
    pub changes: u64,
    /// The furthest wall clock among them (ms since the Unix epoch).
    pub max_wall_ms: u64,
}

impl HeldBack {
    /// How far the furthest held clock is ahead of `now_ms`.
    pub fn ahead_ms(&self, now_ms: u64) -> u64 {
        self.max_wall_ms.saturating_sub(now_ms)
    }
}

/// Adds `changes` from `peer` within the caller's transaction, or refuses
/// them whole if the table would pass its bounds.
pub(crate) fn hold(tx: &Connection, peer: &str, changes: &[&Change]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let encoded: Vec<Vec<u8>> = changes
        .iter()
        .map(|c| {
            encode(c).map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })
        })
        .collect::<Result<_, _>>()?;
    let (count, bytes, peer_count, peer_bytes): (i64, i64, i64, i64) = tx
        .prepare_cached(
            "SELECT count(*), coalesce(sum(bytes), 0),
                    count(*) FILTER (WHERE peer = ?1),
                    coalesce(sum(bytes) FILTER (WHERE peer = ?1), 0)
             FROM held_changes",
        )?
        .query_row([peer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let (adding, adding_bytes) = (
        changes.len() as u64,
        encoded.iter().map(|e| e.len() as u64).sum::<u64>(),
    );
    let past = |held: i64, add: u64, max: u64| held as u64 + add > max;
    let refusal = if past(peer_count, adding, MAX_HELD_CHANGES / PEER_SHARE)
        || past(peer_bytes, adding_bytes, MAX_HELD_BYTES / PEER_SHARE)
    {
        Some((peer_count, MAX_HELD_CHANGES / PEER_SHARE, true))
    } else if past(count, adding, MAX_HELD_CHANGES) || past(bytes, adding_bytes, MAX_HELD_BYTES) {
        Some((count, MAX_HELD_CHANGES, false))
    } else {
        None
    };
    if let Some((held, max, per_peer)) = refusal {
        return Err(StoreError::HeldFull {
            held: held as u64,
            max,
            per_peer,
        });
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO held_changes (peer, wall_ms, bytes, change) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (change, bytes) in changes.iter().zip(encoded) {
        insert.execute(params![
            peer,
            change.clock.hlc.wall_ms() as i64,
            bytes.len() as i64,
            bytes
        ])?;
    }
    Ok(())
}

/// Encodes a held change: its own encoding, then its `pred` (the change's
/// encoding leaves `pred` out; appending it gives the bytes of a `Change`
/// with `pred` as its last field).
fn encode(change: &Change) -> Result<Vec<u8>, postcard::Error> {
    let bytes = postcard::to_allocvec(change)?;
    postcard::to_extend(&change.pred, bytes)
}

/// Decodes a held change. A row written before changes carried `pred` (its
/// last bytes) has nothing after the change: read as `None`.
fn decode(bytes: &[u8]) -> Result<Change, postcard::Error> {
    let (mut change, rest) = postcard::take_from_bytes::<Change>(bytes)?;
    change.pred = if rest.is_empty() {
        None
    } else {
        postcard::from_bytes(rest)?
    };
    Ok(change)
}

/// Removes released rows within the caller's transaction.
pub(crate) fn forget(tx: &Connection, rows: &[i64]) -> Result<(), StoreError> {
    let mut delete = tx.prepare_cached("DELETE FROM held_changes WHERE n = ?1")?;
    for n in rows {
        delete.execute([n])?;
    }
    Ok(())
}

impl Store {
    /// Sets the largest distance a remote clock may be ahead of local wall
    /// time; changes held back under a lower bound are merged by the next
    /// [`release_held`](Self::release_held) if they now fit.
    pub fn set_max_drift_ms(&mut self, max_drift_ms: u64) {
        self.config.max_drift_ms = max_drift_ms;
        self.hlc.set_max_drift_ms(max_drift_ms);
    }

    /// What is held back, per peer, furthest clock first.
    pub fn held_back(&self) -> Result<Vec<HeldBack>, StoreError> {
        let mut stmt = self.db.conn.prepare_cached(
            "SELECT peer, count(*), max(wall_ms) FROM held_changes GROUP BY peer
             ORDER BY max(wall_ms) DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(HeldBack {
                peer: r.get(0)?,
                changes: r.get::<_, i64>(1)? as u64,
                max_wall_ms: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Merges held-back changes whose clock is now within the drift bound
    /// (up to a page of them per call, in arrival order), in one transaction
    /// that also removes them from the table. Changes of collections the
    /// sending peer's rule no longer lets in are dropped (counted as not
    /// shared). Returns what merging did.
    pub fn release_held(&mut self) -> Result<crate::ApplyReport, StoreError> {
        let limit = now_ms().saturating_add(self.config.max_drift_ms);
        let rows: Vec<(i64, String, Vec<u8>)> = self
            .db
            .conn
            .prepare_cached(
                "SELECT n, peer, change FROM held_changes WHERE wall_ms <= ?1 ORDER BY n LIMIT ?2",
            )?
            .query_map(params![limit as i64, RELEASE_PAGE as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            return Ok(crate::ApplyReport::default());
        }
        let rules = self.sharing()?;
        let mut changes = Vec::new();
        let mut not_shared = 0;
        for (_, peer, bytes) in &rows {
            // Written by this module from a validated change: a row that does
            // not decode is damage, and is dropped rather than kept forever.
            let Ok(change) = decode(bytes) else {
                tracing::warn!(%peer, "dropping an undecodable held change");
                continue;
            };
            if rules.allows(peer, &change.collection, shoal_core::Direction::FromPeer) {
                changes.push(change);
            } else {
                not_shared += 1;
            }
        }
        let released: Vec<i64> = rows.iter().map(|(n, _, _)| *n).collect();
        self.apply_held(changes, not_shared, &released)
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use shoal_core::{
        Change, Clock, CollectionName, Hlc, Life, LogPosition, RecordId, SiteId, Slot,
    };

    #[test]
    fn a_held_change_keeps_its_pred_and_an_older_row_still_decodes() {
        let clock = Clock {
            hlc: Hlc::new(5, 1),
            site: SiteId(9),
        };
        let mut change = Change {
            collection: CollectionName::new("notes").unwrap(),
            id: RecordId::new("n1").unwrap(),
            slot: Slot::Life,
            value: None,
            clock,
            life: Life(1),
            position: LogPosition::default(),
            pred: None,
        };
        let mut bytes = encode(&change).unwrap();
        assert_eq!(decode(&bytes).unwrap(), change);
        // The older layout: the same without the trailing `pred`.
        assert_eq!(bytes.pop(), Some(0));
        assert_eq!(decode(&bytes).unwrap(), change);
        change.pred = Some(clock);
        assert_eq!(decode(&encode(&change).unwrap()).unwrap(), change);
    }
}
