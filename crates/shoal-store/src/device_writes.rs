//! The local-write rules of devices, checked op by op as a write plans its
//! ops: a write to the devices collection must be a valid signed statement
//! in its own record (or the owner record naming the pinned key); a device
//! admitted read-only for a collection writes nothing there.
//!
//! It owns the check only. The registry a write is checked against is
//! taken once, before the write's transaction begins (`devices.rs` reads
//! and caches it); this file must not write.

use crate::Store;
use crate::devices::pinned_owner;
use crate::error::StoreError;
use crate::write_op::WriteOp;
use rusqlite::Connection;
use serde_json::Value;
use shoal_core::Intent;
use shoal_core::devices::{
    DEVICES_COLLECTION, IssuerKey, OWNER_RECORD, Registry, STATEMENT_FIELD, Signed,
};
use std::path::Path;
use std::sync::Arc;

/// What one write may write here: the registry as the write began, with
/// this node's peer id in it (`None` while the group has no owner: then
/// only the devices collection is checked).
pub(crate) struct DeviceWrites {
    rules: Option<(Arc<Registry>, String)>,
}

impl Store {
    /// The rules for the write about to begin.
    pub(crate) fn device_writes(&self) -> Result<DeviceWrites, StoreError> {
        let rules = self
            .write_registry()?
            .map(|registry| (registry, self.identity.peer_id().to_string()));
        Ok(DeviceWrites { rules })
    }
}

impl DeviceWrites {
    /// Refuses `op` if the rules forbid it; `conn` (the write's own, inside
    /// its transaction) reads the pinned owner key, for the file at `path`.
    pub(crate) fn check(
        &self,
        conn: &Connection,
        path: &Path,
        op: &WriteOp,
    ) -> Result<(), StoreError> {
        if op.collection.as_str() == DEVICES_COLLECTION {
            return check_statement(conn, path, op);
        }
        match &self.rules {
            Some((registry, own)) if !registry.local_write_allowed(own, &op.collection) => {
                Err(StoreError::ReadOnlyDevice {
                    collection: op.collection.to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A write to the devices collection: one field, a valid signed statement
/// (or, in the owner record, the pinned owner key).
fn check_statement(conn: &Connection, path: &Path, op: &WriteOp) -> Result<(), StoreError> {
    let reserved = || StoreError::ReservedCollection {
        collection: DEVICES_COLLECTION.to_string(),
    };
    let Intent::Put(fields) = &op.intent else {
        return Err(reserved());
    };
    if fields.len() != 1 {
        return Err(reserved());
    }
    if op.id.as_str() == OWNER_RECORD {
        let key = fields
            .get("key")
            .and_then(Value::as_str)
            .and_then(|t| IssuerKey::from_hex(t).ok())
            .ok_or_else(reserved)?;
        return match pinned_owner(conn, path)? {
            Some(pinned) if pinned == key => Ok(()),
            _ => Err(reserved()),
        };
    }
    let text = fields
        .get(STATEMENT_FIELD)
        .and_then(Value::as_str)
        .ok_or_else(reserved)?;
    Signed::from_text(op.id.as_str(), text)
        .map(|_| ())
        .map_err(|e| StoreError::Devices(format!("refused statement: {e}")))
}
