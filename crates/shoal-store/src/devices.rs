//! Devices (issue 19) in the store: the owner key this node pinned, the
//! statements of the reserved devices collection read back as the core's
//! [`Registry`] (cached by their content, so signatures are checked once
//! per change of the collection), admission requests of refused peers, and
//! the registry a local write is checked against (the check itself, that
//! nothing but a valid signed statement goes into the devices collection
//! and a read-only device's writes are refused, is `device_writes.rs`).
//!
//! What a statement means is the core's (`shoal_core::devices`); this file
//! only persists and reads. It never signs: the caller brings signed
//! statements.

use crate::error::StoreError;
use crate::write_op::WriteOp;
use crate::{Store, now_ms, read::parse_object};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use shoal_core::devices::{
    DEVICES_COLLECTION, IssuerKey, Issuers, OWNER_RECORD, Registry, STATEMENT_FIELD, Signed,
    admissible,
};
use shoal_core::{Change, CollectionName, Intent, RecordId};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the local-write check trusts its last look at the registry
/// (a role change reaches local writes within this; sessions and the
/// sharing rules look every time).
const WRITE_CHECK_TTL: Duration = Duration::from_millis(250);

/// The registry as last read, by the digest of the statements it came from.
#[derive(Debug, Default)]
pub(crate) struct DeviceCache(Mutex<CacheState>);

#[derive(Debug, Default)]
struct CacheState {
    digest: Option<[u8; 32]>,
    registry: Option<Arc<Registry>>,
    /// When the local-write check last read the registry.
    write_checked: Option<Instant>,
}

/// A peer that proved the group secret but holds no admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// Its peer id.
    pub peer: String,
    /// When it first asked (wall ms).
    pub first_ms: u64,
    /// When it last asked (wall ms).
    pub last_ms: u64,
    /// How many times it was refused.
    pub attempts: u64,
}

/// The write that stores a signed statement in its own record of the
/// devices collection.
pub fn statement_op(signed: &Signed) -> Result<WriteOp, StoreError> {
    let mut fields = Map::new();
    fields.insert(STATEMENT_FIELD.into(), Value::String(signed.to_text()));
    Ok(WriteOp {
        collection: devices_collection(),
        id: RecordId::new(signed.statement.record_id())?,
        intent: Intent::Put(fields),
    })
}

/// The write of the owner record naming `key` (every device pins the first
/// one it sees); accepted only once `key` is pinned here.
pub fn owner_op(key: IssuerKey) -> Result<WriteOp, StoreError> {
    let mut fields = Map::new();
    fields.insert("key".into(), Value::String(key.to_hex()));
    Ok(WriteOp {
        collection: devices_collection(),
        id: RecordId::new(OWNER_RECORD)?,
        intent: Intent::Put(fields),
    })
}

/// The devices collection's name.
pub fn devices_collection() -> CollectionName {
    CollectionName::new(DEVICES_COLLECTION).expect("the devices collection name is valid")
}

impl Store {
    /// The owner key this node pinned (`None`: the group has no owner yet,
    /// as far as this node knows).
    pub fn device_owner(&self) -> Result<Option<IssuerKey>, StoreError> {
        pinned_owner(&self.db.conn, &self.path)
    }

    /// Pins `key` as the owner key if none is pinned; returns the key pinned
    /// now (the older one wins).
    fn pin_owner(&self, key: IssuerKey) -> Result<IssuerKey, StoreError> {
        self.db
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO device_owner (id, public, pinned_ms) VALUES (1, ?1, ?2)",
            )?
            .execute(params![key.to_hex(), now_ms() as i64])?;
        Ok(self.device_owner()?.unwrap_or(key))
    }

    /// The owner key named by the replicated owner record, if any.
    fn owner_record(&self) -> Result<Option<IssuerKey>, StoreError> {
        let id = RecordId::new(OWNER_RECORD)?;
        let Some(fields) = self.get(&devices_collection(), &id)? else {
            return Ok(None);
        };
        Ok(fields
            .get("key")
            .and_then(Value::as_str)
            .and_then(|t| IssuerKey::from_hex(t).ok()))
    }

    /// The group's device registry, or `None` while the group has no owner
    /// (then nothing is checked: groups made before devices keep working).
    /// The first owner record this node sees is pinned, and a later one
    /// naming another key is ignored.
    pub fn device_registry(&self) -> Result<Option<Arc<Registry>>, StoreError> {
        let owner = match self.device_owner()? {
            Some(owner) => owner,
            None => match self.owner_record()? {
                Some(key) => self.pin_owner(key)?,
                None => return Ok(None),
            },
        };
        let mut records: Vec<(String, String)> = Vec::new();
        if let Some(cid) = self.collection_id(&devices_collection())? {
            let mut stmt = self.db.conn.prepare_cached(
                "SELECT rid, data FROM records WHERE cid = ?1 AND data IS NOT NULL ORDER BY rid",
            )?;
            let mut rows = stmt.query([cid])?;
            while let Some(row) = rows.next()? {
                let rid: String = row.get(0)?;
                if rid == OWNER_RECORD {
                    continue;
                }
                let fields = parse_object(&row.get::<_, String>(1)?)?;
                let text = fields
                    .get(STATEMENT_FIELD)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                records.push((rid, text));
            }
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&owner.0);
        for (rid, text) in &records {
            hasher.update(&(rid.len() as u64).to_le_bytes());
            hasher.update(rid.as_bytes());
            hasher.update(&(text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        let digest = *hasher.finalize().as_bytes();
        let mut cache = self.devices.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.digest == Some(digest)
            && let Some(registry) = &cache.registry
        {
            return Ok(Some(registry.clone()));
        }
        let registry = Arc::new(Registry::evaluate(
            owner,
            records.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        ));
        cache.digest = Some(digest);
        cache.registry = Some(registry.clone());
        Ok(Some(registry))
    }

    /// Pins `key` as this group's owner key (the owner's machine, as it
    /// makes or imports the key). Refused if another owner is pinned.
    pub fn pin_device_owner(&self, key: IssuerKey) -> Result<(), StoreError> {
        match self.pin_owner(key)? {
            pinned if pinned == key => Ok(()),
            pinned => Err(StoreError::Devices(format!(
                "this group already has another owner key ({}); import its recovery code instead",
                pinned.short()
            ))),
        }
    }

    /// Notes that `peer` proved the group secret but holds no admission.
    pub fn note_device_request(&self, peer: &str) -> Result<(), StoreError> {
        let now = now_ms() as i64;
        self.db
            .conn
            .prepare_cached(
                "INSERT INTO device_requests (peer, first_ms, last_ms, attempts)
                 VALUES (?1, ?2, ?2, 1)
                 ON CONFLICT (peer) DO UPDATE SET last_ms = ?2, attempts = attempts + 1",
            )?
            .execute(params![peer, now])?;
        Ok(())
    }

    /// The admission requests waiting, oldest first (at most 1,024).
    pub fn device_requests(&self) -> Result<Vec<DeviceRequest>, StoreError> {
        let mut stmt = self.db.conn.prepare_cached(
            "SELECT peer, first_ms, last_ms, attempts FROM device_requests
             ORDER BY first_ms, peer LIMIT 1024",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceRequest {
                peer: r.get(0)?,
                first_ms: r.get::<_, i64>(1)? as u64,
                last_ms: r.get::<_, i64>(2)? as u64,
                attempts: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The peers this node has synced with (a cursor kept for them): the
    /// members a group that gets an owner admits at once.
    pub fn synced_peers(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .db
            .conn
            .prepare_cached("SELECT DISTINCT peer FROM peer_cursors ORDER BY peer LIMIT 4096")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets `peer`'s request (approved or revoked).
    pub fn forget_device_request(&self, peer: &str) -> Result<(), StoreError> {
        self.db
            .conn
            .prepare_cached("DELETE FROM device_requests WHERE peer = ?1")?
            .execute([peer])?;
        Ok(())
    }

    /// Leaves out of a batch from another replica the changes to the
    /// devices collection no replica takes (a delete, a cleared field, a
    /// statement not signed by the owner or an admin:
    /// `shoal_core::devices::admissible`); returns the rest and how many
    /// were left out.
    pub(crate) fn admissible_changes<'c>(
        &self,
        changes: Vec<&'c Change>,
    ) -> Result<(Vec<&'c Change>, usize), StoreError> {
        if !changes
            .iter()
            .any(|c| c.collection.as_str() == DEVICES_COLLECTION)
        {
            return Ok((changes, 0));
        }
        let issuers = self
            .device_registry()?
            .map_or(Issuers::NoOwner, |r| r.issuers())
            .with_admins_in(&changes);
        let before = changes.len();
        let kept: Vec<&Change> = changes
            .into_iter()
            .filter(|c| admissible(c, &issuers))
            .collect();
        let left_out = before - kept.len();
        Ok((kept, left_out))
    }

    /// The registry a local write is checked against (`device_writes.rs`):
    /// the cached one if it was read within [`WRITE_CHECK_TTL`], else read
    /// again; `None` while the group has no owner.
    pub(crate) fn write_registry(&self) -> Result<Option<Arc<Registry>>, StoreError> {
        let mut cache = self.devices.0.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cache
            .write_checked
            .is_some_and(|at| at.elapsed() < WRITE_CHECK_TTL);
        if fresh {
            return Ok(cache.registry.clone());
        }
        cache.write_checked = Some(Instant::now());
        drop(cache);
        let registry = self.device_registry()?;
        if registry.is_none() {
            self.devices
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .registry = None;
        }
        Ok(registry)
    }
}

/// The owner key pinned in the file behind `conn` (at `path`, for errors).
pub(crate) fn pinned_owner(
    conn: &Connection,
    path: &Path,
) -> Result<Option<IssuerKey>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT public FROM device_owner WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        IssuerKey::from_hex(&t).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("pinned owner key: {e}"),
        })
    })
    .transpose()
}
