//! Row-level persistence of one record: loading its [`RecordState`] from the
//! `records` and `slots` tables and writing back exactly what changed, stamped
//! with the transaction's change-log position.
//!
//! This is the only module that knows how a [`Slot`] maps to columns. It does
//! not decide merges (the core does) and does not open transactions (callers do).

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::{
    CanonicalJson, Clock, CollectionName, DbVersion, FieldName, Hlc, Life, RecordId, RecordState,
    SiteId, Slot, SlotVersion,
};

/// The change-log position a transaction writes at: one db_version for the whole
/// transaction (taken only if something changes) and a sequence within it.
#[derive(Debug)]
pub(crate) struct TxnStamp {
    version: DbVersion,
    seq: u32,
}

impl TxnStamp {
    pub(crate) fn new(current: DbVersion) -> Self {
        Self {
            version: DbVersion(current.0 + 1),
            seq: 0,
        }
    }

    /// The version this transaction took, if it wrote anything.
    pub(crate) fn taken(&self) -> Option<DbVersion> {
        (self.seq > 0).then_some(self.version)
    }

    fn next(&mut self) -> (i64, i64) {
        self.seq += 1;
        (self.version.0 as i64, i64::from(self.seq))
    }
}

/// The end of the change log as committed (by any process): the last
/// db_version and the highest clock written in it.
pub(crate) fn log_head(conn: &Connection) -> Result<(DbVersion, Hlc), StoreError> {
    let (dbv, hlc): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT dbv, MAX(hlc) FROM slots WHERE dbv = (SELECT MAX(dbv) FROM slots)")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((
        DbVersion(dbv.unwrap_or(0) as u64),
        Hlc::from_packed(hlc.unwrap_or(0) as u64),
    ))
}

/// Starts a write transaction that takes the write lock at once (so another
/// process cannot commit between our read of the log head and our commit).
pub(crate) fn begin_write(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// A record as loaded inside a transaction.
#[derive(Debug)]
pub(crate) struct Loaded {
    rk: Option<i64>,
    pub(crate) state: RecordState,
}

pub(crate) fn slot_columns(slot: &Slot) -> (i64, &str, &str) {
    match slot {
        Slot::Life => (0, "", ""),
        Slot::Field(f) => (1, f.as_str(), ""),
        Slot::Entry(f, k) => (2, f.as_str(), k.as_str()),
    }
}

pub(crate) fn slot_from_columns(kind: i64, field: String, key: String) -> Result<Slot, StoreError> {
    Ok(match kind {
        0 => Slot::Life,
        1 => Slot::Field(FieldName::new(field)?),
        2 => Slot::Entry(FieldName::new(field)?, key),
        other => {
            return Err(StoreError::Corrupt {
                path: Default::default(),
                detail: format!("unknown slot kind {other}"),
            });
        }
    })
}

/// Decodes `(value, hlc, site, life)` columns into a slot version.
pub(crate) fn version_from_columns(
    value: Option<String>,
    hlc: i64,
    site: i64,
    life: i64,
) -> Result<SlotVersion, StoreError> {
    let value = value.map(CanonicalJson::try_from).transpose()?;
    Ok(SlotVersion {
        value,
        clock: Clock {
            hlc: Hlc::from_packed(hlc as u64),
            site: SiteId(site as u64),
        },
        life: Life(life as u64),
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

/// Loads a record's state; an unknown record loads as empty.
pub(crate) fn load(conn: &Connection, cid: i64, id: &RecordId) -> Result<Loaded, StoreError> {
    let rk: Option<i64> = conn
        .prepare_cached("SELECT rk FROM records WHERE cid = ?1 AND rid = ?2")?
        .query_row(params![cid, id.as_str()], |r| r.get(0))
        .optional()?;
    let state = match rk {
        Some(rk) => load_state(conn, rk)?,
        None => RecordState::new(),
    };
    Ok(Loaded { rk, state })
}

/// Loads all slot versions of the record with row key `rk`.
pub(crate) fn load_state(conn: &Connection, rk: i64) -> Result<RecordState, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, field, key, value, hlc, site, life FROM slots WHERE rk = ?1",
    )?;
    let mut rows = stmt.query([rk])?;
    let mut slots = Vec::new();
    while let Some(row) = rows.next()? {
        let slot = slot_from_columns(row.get(0)?, row.get(1)?, row.get(2)?)?;
        let version = version_from_columns(row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)?;
        slots.push((slot, version));
    }
    Ok(RecordState::from_slots(slots))
}

/// Writes the difference between `before` and `after`; returns whether anything changed.
pub(crate) fn save(
    conn: &Connection,
    cid: i64,
    id: &RecordId,
    before: &Loaded,
    after: &RecordState,
    stamp: &mut TxnStamp,
) -> Result<bool, StoreError> {
    let changed: Vec<(&Slot, &SlotVersion)> = after
        .slots()
        .filter(|(slot, version)| before.state.slot(slot) != Some(*version))
        .collect();
    let removed: Vec<&Slot> = before
        .state
        .slots()
        .map(|(slot, _)| slot)
        .filter(|slot| after.slot(slot).is_none())
        .collect();
    if changed.is_empty() && removed.is_empty() {
        return Ok(false);
    }
    let data = after
        .render()
        .map(|object| serde_json::Value::Object(object).to_string());
    let life = after.life().0 as i64;
    let rk = match before.rk {
        Some(rk) => {
            conn.prepare_cached("UPDATE records SET life = ?2, data = ?3 WHERE rk = ?1")?
                .execute(params![rk, life, data])?;
            rk
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO records (cid, rid, life, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![cid, id.as_str(), life, data])?;
            conn.last_insert_rowid()
        }
    };
    if !removed.is_empty() {
        let mut delete = conn.prepare_cached(
            "DELETE FROM slots WHERE rk = ?1 AND kind = ?2 AND field = ?3 AND key = ?4",
        )?;
        for slot in removed {
            let (kind, field, key) = slot_columns(slot);
            delete.execute(params![rk, kind, field, key])?;
        }
    }
    let mut upsert = conn.prepare_cached(
        "INSERT OR REPLACE INTO slots (rk, kind, field, key, value, hlc, site, life, dbv, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (slot, version) in changed {
        let (kind, field, key) = slot_columns(slot);
        let (dbv, seq) = stamp.next();
        upsert.execute(params![
            rk,
            kind,
            field,
            key,
            version.value.as_ref().map(CanonicalJson::as_str),
            version.clock.hlc.packed() as i64,
            version.clock.site.0 as i64,
            version.life.0 as i64,
            dbv,
            seq,
        ])?;
    }
    Ok(true)
}
