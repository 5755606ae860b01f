//! App data versions: per collection, the data version and JSON Schema the
//! app on this node declares (`collection_schemas`, local to the node), the
//! check of every local write against them, and the flag on records a newer
//! app wrote.
//!
//! A declaration is **local**: it describes the app build running on this
//! machine, and machines upgrade one by one. Replicating it would make an
//! old app's writes fail a schema it cannot know, and hide which machine
//! runs what. What travels is each record's **stamp**: a local write to a
//! collection with a declared version sets the record's
//! [`DATA_VERSION_FIELD`] to it, in the same transaction, so the stamp syncs
//! with the record by every path (catch-up, push, pull, reconciliation,
//! relays through nodes that know nothing of versions). A record whose
//! stamp is above this node's declaration (or any stamp, with none
//! declared) is flagged by [`DataVersionCheck::newer`], never hidden or
//! dropped; a local write to it is refused while this node declares an
//! older version, so an old app cannot corrupt what a newer one wrote.
//!
//! It owns the table's rows, the compiled validators (cached; reloaded when
//! another connection committed) and the write-time checks; the write path
//! (`write.rs`) calls them, and it never touches sync.

use crate::error::StoreError;
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use shoal_core::{CollectionName, RecordId};
use std::collections::HashMap;
use std::sync::Arc;

/// The field that carries a record's data version (set by the store on
/// every local write to a collection with a declared version; excluded
/// from schema validation).
pub const DATA_VERSION_FIELD: &str = "$data_version";

/// A collection's declared data version and JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSchema {
    /// The data version (1 or more).
    pub version: u32,
    /// The JSON Schema every record of the collection must validate against.
    pub schema: Value,
}

/// A compiled declaration.
pub(crate) struct Declared {
    pub(crate) version: u32,
    validator: jsonschema::Validator,
}

/// The declarations, compiled, as of a `data_version` of the file.
#[derive(Default)]
pub(crate) struct SchemaCache {
    /// SQLite's `data_version` when loaded; `None`: load before use.
    loaded_at: Option<i64>,
    by_name: HashMap<String, Arc<Declared>>,
}

impl SchemaCache {
    /// Reloads the declarations if another connection committed since they
    /// were loaded (`data_version` is the head memo's, just refreshed).
    pub(crate) fn refresh(&mut self, tx: &Connection, data_version: i64) -> Result<(), StoreError> {
        if self.loaded_at == Some(data_version) {
            return Ok(());
        }
        let rows: Vec<(String, i64, String)> = tx
            .prepare_cached("SELECT collection, version, schema FROM collection_schemas")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        self.by_name.clear();
        for (collection, version, text) in rows {
            let schema: Value = serde_json::from_str(&text).map_err(|e| StoreError::BadSchema {
                collection: collection.clone(),
                detail: format!("stored schema is not JSON: {e}"),
            })?;
            let validator = compile(&collection, &schema)?;
            let declared = Declared {
                version: version as u32,
                validator,
            };
            self.by_name.insert(collection, Arc::new(declared));
        }
        self.loaded_at = Some(data_version);
        Ok(())
    }

    /// The declaration of `collection`, if any.
    pub(crate) fn get(&self, collection: &CollectionName) -> Option<Arc<Declared>> {
        self.by_name.get(collection.as_str()).cloned()
    }

    fn forget(&mut self) {
        self.loaded_at = None;
    }
}

fn compile(collection: &str, schema: &Value) -> Result<jsonschema::Validator, StoreError> {
    jsonschema::validator_for(schema).map_err(|e| StoreError::BadSchema {
        collection: collection.to_string(),
        detail: e.to_string(),
    })
}

/// A record's stamp: its [`DATA_VERSION_FIELD`] as a whole number (0 when absent).
pub fn stamp_of(record: &Map<String, Value>) -> u64 {
    record
        .get(DATA_VERSION_FIELD)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

impl Declared {
    /// Refuses a write to a record a newer app wrote.
    pub(crate) fn check_not_newer(
        &self,
        collection: &CollectionName,
        id: &RecordId,
        before: Option<&Map<String, Value>>,
    ) -> Result<(), StoreError> {
        let record = before.map_or(0, stamp_of);
        if record > u64::from(self.version) {
            return Err(StoreError::NewerDataVersion {
                collection: collection.to_string(),
                id: id.to_string(),
                record,
                declared: self.version,
            });
        }
        Ok(())
    }

    /// `fields` with the stamp set to this version.
    pub(crate) fn stamped(&self, mut fields: Map<String, Value>) -> Map<String, Value> {
        fields.insert(DATA_VERSION_FIELD.into(), Value::from(self.version));
        fields
    }

    /// Checks a live record's rendered fields (stamp left out) against the schema.
    pub(crate) fn validate(
        &self,
        collection: &CollectionName,
        id: &RecordId,
        rendered: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        let mut fields = rendered.clone();
        fields.remove(DATA_VERSION_FIELD);
        let instance = Value::Object(fields);
        let messages: Vec<String> = self
            .validator
            .iter_errors(&instance)
            .take(3)
            .map(|e| match e.instance_path().as_str() {
                "" => e.to_string(),
                path => format!("at {path}: {e}"),
            })
            .collect();
        if messages.is_empty() {
            return Ok(());
        }
        Err(StoreError::SchemaViolation {
            collection: collection.to_string(),
            id: id.to_string(),
            version: self.version,
            message: messages.join("; "),
        })
    }
}

/// How records of one collection compare with this node's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataVersionCheck {
    /// The version this node declares for the collection, if any.
    pub declared: Option<u32>,
}

impl DataVersionCheck {
    /// The record's data version if a newer app than this node's wrote it
    /// (its stamp is above the declared version, or any stamp with none
    /// declared): the record is kept and synced, but flagged.
    pub fn newer(&self, record: &Map<String, Value>) -> Option<u64> {
        let stamp = stamp_of(record);
        (stamp > u64::from(self.declared.unwrap_or(0))).then_some(stamp)
    }
}

impl Store {
    /// Declares `version` and `schema` for `collection` on this node: from
    /// now on every local write to it must leave a record that validates,
    /// and is stamped with `version`. Refused (nothing changes): a schema
    /// that does not compile, version 0, or a version below the one
    /// declared (an older app must not take the collection back).
    pub fn set_collection_schema(
        &mut self,
        collection: &CollectionName,
        version: u32,
        schema: &Value,
    ) -> Result<(), StoreError> {
        let bad = |detail: String| StoreError::BadSchema {
            collection: collection.to_string(),
            detail,
        };
        if version == 0 {
            return Err(bad("data versions start at 1".into()));
        }
        compile(collection.as_str(), schema)?;
        let tx = WriteTxn::begin(&mut self.db)?;
        let current: Option<i64> = tx
            .prepare_cached("SELECT version FROM collection_schemas WHERE collection = ?1")?
            .query_row([collection.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(current) = current
            && (version as i64) < current
        {
            return Err(bad(format!(
                "data version {version} is older than the declared {current} (an older app?); \
                 remove the declaration first to go back on purpose"
            )));
        }
        tx.prepare_cached(
            "INSERT INTO collection_schemas (collection, version, schema, set_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (collection) DO UPDATE
             SET version = excluded.version, schema = excluded.schema, set_ms = excluded.set_ms",
        )?
        .execute(params![
            collection.as_str(),
            version,
            schema.to_string(),
            now_ms() as i64
        ])?;
        tx.commit()?;
        self.schemas.forget();
        Ok(())
    }

    /// Removes `collection`'s declaration; returns whether there was one.
    pub fn remove_collection_schema(
        &mut self,
        collection: &CollectionName,
    ) -> Result<bool, StoreError> {
        let removed = self
            .db
            .conn
            .prepare_cached("DELETE FROM collection_schemas WHERE collection = ?1")?
            .execute([collection.as_str()])?;
        self.schemas.forget();
        Ok(removed > 0)
    }

    /// `collection`'s declaration on this node, if any.
    pub fn collection_schema(
        &self,
        collection: &CollectionName,
    ) -> Result<Option<CollectionSchema>, StoreError> {
        let row: Option<(i64, String)> = self
            .db
            .conn
            .prepare_cached("SELECT version, schema FROM collection_schemas WHERE collection = ?1")?
            .query_row([collection.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(version, text)| {
            let schema = serde_json::from_str(&text).map_err(|e| StoreError::BadSchema {
                collection: collection.to_string(),
                detail: format!("stored schema is not JSON: {e}"),
            })?;
            Ok(CollectionSchema {
                version: version as u32,
                schema,
            })
        })
        .transpose()
    }

    /// Every declaration on this node, by collection name.
    pub fn collection_schemas(&self) -> Result<Vec<(String, CollectionSchema)>, StoreError> {
        let names: Vec<String> = self
            .db
            .conn
            .prepare_cached("SELECT collection FROM collection_schemas ORDER BY collection")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for name in names {
            let collection = CollectionName::new(name.clone())?;
            if let Some(schema) = self.collection_schema(&collection)? {
                out.push((name, schema));
            }
        }
        Ok(out)
    }

    /// What flags `collection`'s records written by a newer app.
    pub fn data_version_check(
        &self,
        collection: &CollectionName,
    ) -> Result<DataVersionCheck, StoreError> {
        Ok(DataVersionCheck {
            declared: self.collection_schema(collection)?.map(|s| s.version),
        })
    }
}
