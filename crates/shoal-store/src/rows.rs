//! Row-level persistence of one record: its `records` row holds the rendered
//! JSON, every slot version packed (each with the db_version that wrote it),
//! and the log position of its last change. Loading gives a [`RecordState`];
//! saving writes the row back only if a slot changed.
//!
//! The packed slot layout itself is `packed_slots.rs`'s. This module does
//! not decide merges (the core does) and does not open transactions
//! (callers do).

use crate::error::StoreError;
use crate::kept::{Kept, KeptStatements};
use crate::log_pos::{MAX_SEQ, first_key_of, version_of};
use crate::packed_slots::{pack, pack_digested, unpack_slots};
use crate::record_rows::RecordRow;
use crate::record_sql::Prior;
use crate::write_txn::WriteTxn;
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::gc::Held;
use shoal_core::recon::{Element, ItemFlags, ReconKey, StateDigest, element};
use shoal_core::{CollectionName, DbVersion, Hlc, Life, LogPosition, RecordId, RecordState, Slot};
use std::collections::BTreeMap;

/// The change-log positions a transaction writes at: a db_version (taken
/// only if something changes) and a sequence per record. A transaction of
/// more than [`MAX_SEQ`] changes goes on in the next version, so one may
/// take several, consecutive (`log_pos.rs`).
#[derive(Debug)]
pub(crate) struct TxnStamp {
    first: DbVersion,
    version: DbVersion,
    seq: u32,
}

impl TxnStamp {
    pub(crate) fn new(current: DbVersion) -> Self {
        let first = DbVersion(current.0 + 1);
        Self {
            first,
            version: first,
            seq: 0,
        }
    }

    /// The (last) version this transaction took, if it wrote anything.
    pub(crate) fn taken(&self) -> Option<DbVersion> {
        (self.seq > 0).then_some(self.version)
    }

    /// Every version this transaction took, first to last (none if it
    /// wrote nothing).
    pub(crate) fn versions(&self) -> impl Iterator<Item = DbVersion> + use<> {
        let last = self.taken().map_or(0, |v| v.0);
        (self.first.0..=last).map(DbVersion)
    }

    /// The next change's position; past [`MAX_SEQ`] changes, the
    /// transaction goes on in the next version.
    fn next(&mut self) -> LogPosition {
        if self.seq == MAX_SEQ {
            self.version = DbVersion(self.version.0 + 1);
            self.seq = 0;
        }
        self.seq += 1;
        LogPosition {
            version: self.version,
            seq: self.seq,
        }
    }
}

/// A record's slots as stored: each version with the db_version that wrote it.
#[derive(Debug, Clone)]
pub(crate) struct StoredSlots {
    pub(crate) state: RecordState,
    pub(crate) written_at: BTreeMap<Slot, DbVersion>,
    /// The state digest stored with the row (when loaded from one).
    pub(crate) digest: Option<StateDigest>,
    /// How many blobs the record references, and how many of them are absent.
    pub(crate) blobs: BlobCounts,
    /// Where the state came from: a row, the collected ledger, or nothing.
    pub(crate) held: Held,
}

impl Default for StoredSlots {
    fn default() -> Self {
        Self {
            state: RecordState::default(),
            written_at: BTreeMap::new(),
            digest: None,
            blobs: BlobCounts::default(),
            held: Held::Unknown,
        }
    }
}

/// A record's blob reference counts, as stored in its row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobCounts {
    pub(crate) refs: u32,
    pub(crate) missing: u32,
}

/// Where a saved state comes from, which decides how strictly it is checked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// A local write: the record's JSON is capped and its blob references
    /// must be well formed.
    Local {
        /// Largest canonical JSON of the whole record.
        record_cap: usize,
        /// Largest packed state of the record (every slot version, tombstones included).
        state_cap: usize,
    },
    /// Changes merged from a peer (checked per value on arrival).
    Remote,
}

pub(crate) fn unpack(blob: &[u8]) -> Result<StoredSlots, StoreError> {
    let mut written_at = BTreeMap::new();
    let mut slots = Vec::new();
    for (slot, version, dbv) in unpack_slots(blob)? {
        written_at.insert(slot.clone(), dbv);
        slots.push((slot, version));
    }
    Ok(StoredSlots {
        state: RecordState::from_slots(slots),
        written_at,
        digest: None,
        blobs: BlobCounts::default(),
        held: Held::Row,
    })
}

/// Finds a collection's id, creating the collection if asked to.
pub(crate) fn collection_id(
    conn: &Connection,
    name: &CollectionName,
    create: bool,
) -> Result<Option<i64>, StoreError> {
    let mut find = conn.prepare_cached("SELECT cid FROM collections WHERE name = ?1")?;
    if let Some(cid) = find.query_row([name.as_str()], |r| r.get(0)).optional()? {
        return Ok(Some(cid));
    }
    if !create {
        return Ok(None);
    }
    conn.prepare_cached("INSERT INTO collections (name) VALUES (?1)")?
        .execute([name.as_str()])?;
    Ok(Some(conn.last_insert_rowid()))
}

/// Loads a record's slots; an unknown record loads as empty.
pub(crate) fn load(
    kept: &KeptStatements,
    cid: i64,
    id: &RecordId,
) -> Result<StoredSlots, StoreError> {
    let stored = kept.run(Kept::LoadRow, |s| {
        s.query_row(params![cid, id.as_str()], |r| {
            Ok(stored_from_row(
                r.get_ref(0)?.as_blob()?,
                r.get_ref(1)?.as_blob()?,
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .optional()
    })?;
    stored.unwrap_or_else(|| Ok(StoredSlots::default()))
}

/// A record's stored state from its row's `slots`, `digest`, `refs` and
/// `missing` columns.
pub(crate) fn stored_from_row(
    slots: &[u8],
    digest: &[u8],
    refs: u32,
    missing: u32,
) -> Result<StoredSlots, StoreError> {
    let mut stored = unpack(slots)?;
    stored.blobs = BlobCounts { refs, missing };
    stored.digest = <[u8; 16]>::try_from(digest).ok().map(StateDigest);
    Ok(stored)
}

/// Loads a record to merge into or write: its row, else — when the ledger
/// is in use — the tombstone the collected ledger keeps of it (`gc.rs`), so
/// a collected record merges exactly as its tombstone row did.
pub(crate) fn load_for_merge(
    conn: &Connection,
    kept: &KeptStatements,
    cid: i64,
    id: &RecordId,
    ledger_in_use: bool,
) -> Result<StoredSlots, StoreError> {
    let stored = load(kept, cid, id)?;
    if stored.held != Held::Unknown || !ledger_in_use {
        return Ok(stored);
    }
    let held = crate::gc_ledger::ledger_entry(conn, cid, id.as_str())?;
    Ok(match held.collected_state() {
        Some(state) => StoredSlots {
            state,
            held,
            ..StoredSlots::default()
        },
        None => stored,
    })
}

/// The `rkey` column for a key: the sign bit flipped, so SQLite's signed
/// order is the key's unsigned order.
pub(crate) fn key_column(key: ReconKey) -> i64 {
    (key.0 ^ (1 << 63)) as i64
}

/// A key back from its `rkey` column.
pub(crate) fn column_key(column: i64) -> ReconKey {
    ReconKey((column as u64) ^ (1 << 63))
}

/// The [`ReconKey`] of an id (the first 8 bytes of BLAKE3 of it), without
/// validating the id again.
pub(crate) fn recon_key(rid: &str) -> ReconKey {
    let mut out = [0u8; 8];
    out.copy_from_slice(&blake3::hash(rid.as_bytes()).as_bytes()[..8]);
    ReconKey(u64::from_be_bytes(out))
}

/// A `digest` column back as the record's state digest.
pub(crate) fn digest_column(blob: &[u8]) -> Result<StateDigest, StoreError> {
    <[u8; 16]>::try_from(blob)
        .map(StateDigest)
        .map_err(|_| StoreError::Corrupt {
            path: Default::default(),
            detail: format!("a record digest of {} bytes", blob.len()),
        })
}

/// What reconciliation knows of a record besides its digest: whether it is
/// alive, and whether a blob it references is absent here.
pub(crate) fn flags_of(life: Life, assets_missing: bool) -> ItemFlags {
    ItemFlags {
        alive: life.is_alive(),
        assets_missing,
    }
}

/// How a saved record moved in its collection's reconciliation tree.
///
/// It holds what the record's key and elements are hashed from, not the
/// hashes: they are computed only for a tree in memory
/// (`recon_index.rs`), so a write to a collection no peer has reconciled
/// yet skips two of the three BLAKE3 hashes it took per record.
#[derive(Debug, Clone)]
pub(crate) struct TreeDelta {
    pub(crate) cid: i64,
    pub(crate) id: RecordId,
    pub(crate) old: Option<Unhashed>,
    pub(crate) new: Unhashed,
}

impl TreeDelta {
    /// The record's place in the tree.
    pub(crate) fn key(&self) -> ReconKey {
        ReconKey::of(&self.id)
    }
}

/// A record's reconciliation element before it is hashed: its state
/// digest and flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unhashed {
    pub(crate) digest: StateDigest,
    pub(crate) flags: ItemFlags,
}

impl Unhashed {
    /// The element itself.
    pub(crate) fn element(self) -> Element {
        element(self.digest, self.flags)
    }
}

/// Writes `after` if any slot differs from `before`, with its blob
/// references; returns how the record moved in the reconciliation tree if it
/// did. A local write whose JSON would exceed the cap and grow the record,
/// whose packed state (tombstones included) would exceed the state cap and
/// grow, or with a malformed blob reference, is refused. (Merges are not capped as
/// a whole, so peers' concurrent fields can leave a record over the cap; a
/// local write that does not make it bigger is still allowed there.)
pub(crate) fn save(
    tx: &mut WriteTxn<'_>,
    cid: i64,
    id: &RecordId,
    before: &StoredSlots,
    after: &RecordState,
    stamp: &mut TxnStamp,
    origin: Origin,
) -> Result<Option<TreeDelta>, StoreError> {
    if *after == before.state {
        return Ok(None);
    }
    let at = stamp.next();
    let data = after.render_json();
    if let (
        Some(text),
        Origin::Local {
            record_cap: cap, ..
        },
    ) = (&data, origin)
        && text.len() > cap
        && text.len() > before.state.render_json().map_or(0, |old| old.len())
    {
        return Err(shoal_core::CoreError::ValueTooLarge {
            size: text.len(),
            cap,
        }
        .into());
    }
    let (blob, digest) = pack_digested(id, after, |slot, version| {
        match before.state.slot(slot) == Some(version) {
            true => before.written_at.get(slot).copied().unwrap_or(at.version),
            false => at.version,
        }
    });
    // Field tombstones are never collected, so the stored state is capped as a
    // whole; like the JSON cap, only a write that grows it past the cap is refused.
    if let Origin::Local { state_cap: cap, .. } = origin
        && blob.len() > cap
        && blob.len() > pack(&before.state, |_, _| at.version).len()
    {
        return Err(shoal_core::CoreError::RecordTooLarge {
            size: blob.len(),
            cap,
        }
        .into());
    }
    let old_flags = flags_of(before.state.life(), before.blobs.missing > 0);
    // A record out of the ledger has no reconciliation element to replace.
    let old = (before.held == Held::Row).then(|| {
        let digest = before
            .digest
            .unwrap_or_else(|| StateDigest::of(id, &before.state));
        Unhashed {
            digest,
            flags: old_flags,
        }
    });
    let local = matches!(origin, Origin::Local { .. });
    let refs = match crate::blob_refs::refs_of_rendered(data.as_deref(), local) {
        // A malformed reference a peer wrote earlier must not block local
        // edits of the record's other fields.
        Err(StoreError::BadBlobRef(_))
            if crate::blob_refs::refs_of_rendered(before.state.render_json().as_deref(), true)
                .is_err() =>
        {
            crate::blob_refs::refs_of_rendered(data.as_deref(), false)?
        }
        refs => refs?,
    };
    let blobs = if before.blobs.refs == 0 && refs.is_empty() {
        BlobCounts::default()
    } else {
        let missing = crate::blob_refs::replace_refs(tx, cid, id.as_str(), &refs)?;
        BlobCounts {
            refs: refs.len() as u32,
            missing,
        }
    };
    if let Held::Collected { .. } = before.held {
        crate::gc_ledger::unledger(tx, cid, id.as_str())?;
    }
    let new = Unhashed {
        digest,
        flags: flags_of(after.life(), blobs.missing > 0),
    };
    tx.push_row(RecordRow {
        prior: match before.held {
            Held::Row => Prior::Present,
            Held::Collected { .. } | Held::Unknown => Prior::Absent,
        },
        cid,
        rid: id.clone(),
        life: after.life().0 as i64,
        data,
        slots: blob,
        pos: crate::log_pos::key_of_row(at)?,
        digest: digest.0,
        refs: blobs.refs,
        missing: blobs.missing,
    })?;
    Ok(Some(TreeDelta {
        cid,
        id: id.clone(),
        old,
        new,
    }))
}

/// After a transaction removed record rows (tombstone collection, a
/// partial replica's drop), maybe the log's newest: the log's head is the
/// version of the greatest key and opening restores the clock from that
/// version's clocks, so both are kept here — `version` as the log floor, `clock` as the clock
/// mark (`clock_mark.rs`). Neither ever moves back.
pub(crate) fn keep_head(
    conn: &Connection,
    version: DbVersion,
    clock: Hlc,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('log_floor', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([version.0.to_be_bytes().to_vec()])?;
    crate::clock_mark::save(conn, clock)
}

/// The end of the change log as committed (by any process): the last
/// db_version (at least the `log_floor` a same-identity restore set, see
/// `backup::skip_log`) and the highest clock written in it.
pub(crate) fn log_head(conn: &Connection) -> Result<(DbVersion, Hlc), StoreError> {
    let floor = log_floor(conn)?;
    let (version, hlc) = log_end(conn)?;
    Ok((version.max(floor), hlc))
}

/// The log floor [`keep_head`] or a same-identity restore
/// (`backup::skip_log`) set: version 0 if none.
pub(crate) fn log_floor(conn: &Connection) -> Result<DbVersion, StoreError> {
    let floor: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'log_floor'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(DbVersion(
        floor
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes),
    ))
}

/// The last db_version written in the log and the highest clock there.
fn log_end(conn: &Connection) -> Result<(DbVersion, Hlc), StoreError> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT max(pos) FROM records")?
        .query_row([], |r| r.get(0))?;
    let Some(last) = last else {
        return Ok((DbVersion(0), Hlc::default()));
    };
    // The rows of the last version: from its first key on.
    let mut stmt = conn.prepare_cached("SELECT dbv, slots FROM records WHERE pos >= ?1")?;
    let mut rows = stmt.query([first_key_of(version_of(last))])?;
    let (mut version, mut hlc) = (DbVersion(0), Hlc::default());
    while let Some(row) = rows.next()? {
        version = DbVersion(row.get::<_, i64>(0)? as u64);
        let slots = unpack(&row.get::<_, Vec<u8>>(1)?)?;
        if let Some(clock) = slots.state.max_clock() {
            hlc = hlc.max(clock.hlc);
        }
    }
    Ok((version, hlc))
}

/// What a store remembers of the file between transactions — the log head
/// and whether the collected ledger holds anything — so it reads them again
/// only when another connection has committed. Every call that looks for
/// such a commit goes through [`HeadMemo::refresh`], so whichever sees it
/// first brings both up to date.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadMemo {
    /// SQLite's `data_version` when the head was last read.
    pub(crate) data_version: i64,
    /// Whether the collected ledger holds any record (`gc_ledger.rs`):
    /// merges and writes consult it only then.
    pub(crate) ledger_in_use: bool,
}

impl HeadMemo {
    /// If another connection committed since we last looked, continue its log,
    /// order our clock after its writes, read the ledger's use again (the
    /// other may have collected tombstones), and return true. Inside a write
    /// transaction this is race-free; outside one it only catches up on what
    /// is committed.
    pub(crate) fn refresh(
        &mut self,
        tx: &Connection,
        kept: &KeptStatements,
        db_version: &mut DbVersion,
        hlc: &mut shoal_core::HlcGenerator,
    ) -> Result<bool, StoreError> {
        let now = kept_data_version(kept)?;
        if now == self.data_version {
            return Ok(false);
        }
        let (head, head_hlc) = log_head(tx)?;
        *db_version = (*db_version).max(head);
        // The log's last transaction may hold clocks older than one the
        // other connection issued or saw (it merged older changes after a
        // write of its own): that one is in the clock mark.
        hlc.raise_to(head_hlc.max(crate::clock_mark::load(tx)?));
        self.ledger_in_use = crate::gc_ledger::ledger_in_use(tx)?;
        self.data_version = now;
        Ok(true)
    }
}

/// SQLite's `data_version`: it moves whenever another connection commits.
/// From the statement cache; a write asks through the kept statement
/// ([`kept_data_version`]), this is for the rarer reads (opening, the
/// sharing rules).
pub(crate) fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(crate::kept::DATA_VERSION)?
        .query_row([], |r| r.get(0))?)
}

/// [`data_version`] by the store's kept statement (every write asks).
pub(crate) fn kept_data_version(kept: &KeptStatements) -> Result<i64, StoreError> {
    kept.run(Kept::DataVersion, |s| {
        s.query_row([], |r| r.get(0)).map_err(StoreError::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_past_the_changes_a_version_holds_goes_on_in_the_next() {
        let mut stamp = TxnStamp::new(DbVersion(6));
        assert_eq!(stamp.taken(), None, "nothing written, no version taken");
        assert_eq!(stamp.versions().count(), 0);
        let mut last = stamp.next();
        assert_eq!((last.version, last.seq), (DbVersion(7), 1));
        for _ in 1..MAX_SEQ {
            last = stamp.next();
        }
        assert_eq!((last.version, last.seq), (DbVersion(7), MAX_SEQ));
        let next = stamp.next();
        assert_eq!((next.version, next.seq), (DbVersion(8), 1));
        assert!(next > last);
        assert_eq!(stamp.taken(), Some(DbVersion(8)));
        assert_eq!(
            stamp.versions().collect::<Vec<_>>(),
            [DbVersion(7), DbVersion(8)]
        );
    }
}
