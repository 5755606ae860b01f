//! [`Edit`] and [`Written`]: one local write to one record as a value, and
//! what a committed write reports — its db_version and the clock it stamped
//! (what `Collection::write` takes and returns; the HTTP API and the CLI
//! reply with both).
//!
//! It only describes writes and turns them into the core's intents after
//! checking field names; it must not touch the store.

use crate::error::Error;
use serde_json::{Map, Value};
use shoal_core::{Clock, CoreError, DbVersion, FieldName, Intent};

/// One local write to one record (see the [`Collection`](crate::Collection)
/// method of the same name for what each does).
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Make the record exactly this JSON object ([`Collection::put`](crate::Collection::put)).
    Put(Value),
    /// Create the record as this object only if it is not alive
    /// ([`Collection::create`](crate::Collection::create)).
    Create(Value),
    /// Change the given fields of a live record; `null` removes one
    /// ([`Collection::patch`](crate::Collection::patch)).
    Patch(Value),
    /// Delete a live record ([`Collection::delete`](crate::Collection::delete)).
    Delete,
    /// Set one entry of a map field ([`Collection::map_set`](crate::Collection::map_set)).
    MapSet {
        /// The map field.
        field: String,
        /// The entry key.
        key: String,
        /// The entry value.
        value: Value,
    },
    /// Remove one entry of a map field ([`Collection::map_remove`](crate::Collection::map_remove)).
    MapRemove {
        /// The map field.
        field: String,
        /// The entry key.
        key: String,
    },
}

impl Edit {
    /// The core's intent for this edit; a body that is not an object or a
    /// bad field name is refused here.
    pub(crate) fn into_intent(self) -> Result<Intent, Error> {
        Ok(match self {
            Edit::Put(value) => Intent::Put(object(value)?),
            Edit::Create(value) => Intent::Create(object(value)?),
            Edit::Patch(fields) => Intent::Patch(object(fields)?),
            Edit::Delete => Intent::Delete,
            Edit::MapSet { field, key, value } => Intent::MapSet {
                field: FieldName::new(&field)?,
                key,
                value,
            },
            Edit::MapRemove { field, key } => Intent::MapRemove {
                field: FieldName::new(&field)?,
                key,
            },
        })
    }
}

/// What a committed write changed: the db_version its transaction took and
/// the clock every field version it wrote carries (the clock `shoal log`
/// and Sync Details show for those fields until a newer write replaces them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The db_version of the transaction (its last, for a write of more
    /// than 1,048,575 changes).
    pub version: DbVersion,
    /// The clock stamped on what it wrote (of the last record it changed,
    /// for a write of several records).
    pub clock: Clock,
}

impl Written {
    /// Just the db_version (what the older write methods return).
    pub fn version(written: Option<Written>) -> Option<DbVersion> {
        written.map(|w| w.version)
    }
}

/// A JSON object, or [`CoreError::NotAnObject`].
pub(crate) fn object(value: Value) -> Result<Map<String, Value>, CoreError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(CoreError::NotAnObject {
            got: json_type(&other),
        }),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
