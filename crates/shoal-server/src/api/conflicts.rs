//! The HTTP API's shapes for the conflict journal: `GET /api/conflicts`
//! (docs/http-api.md). Shapes and how a journal entry is shown; no handler
//! logic, no store access.

use serde::{Deserialize, Serialize};
use shoal::{ConflictSide, JournalledConflict, Slot};
use utoipa::ToSchema;

/// `GET /api/conflicts`: this node's conflict journal, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConflictsReply {
    /// The entries.
    pub conflicts: Vec<ConflictInfo>,
}

/// One journal entry: a value that lost a merge to a concurrent edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConflictInfo {
    /// Its place in this node's journal (increasing).
    pub n: i64,
    /// When it was journalled: ms since the Unix epoch, this node's clock.
    pub at_ms: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// The field; `null` for the record itself (a write that lost to a delete).
    pub field: Option<String>,
    /// The map entry's key when the conflict was over one entry of a map
    /// field; `null` for a whole field.
    pub key: Option<String>,
    /// The value the record holds after the merge.
    pub kept: ConflictValue,
    /// The value the merge dropped: write it again to restore it.
    pub lost: ConflictValue,
}

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConflictValue {
    /// The value (`null` when `removed`).
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// Whether this side removed the field or entry (or deleted the record).
    pub removed: bool,
    /// Its clock, `WALL_MS.COUNTER@SITE`.
    pub clock: String,
    /// The site that wrote it (the part of `clock` after `@`).
    pub site: String,
    /// The clock's wall time, ms since the Unix epoch.
    pub wall_ms: u64,
}

impl ConflictValue {
    fn of(side: &ConflictSide) -> Self {
        Self {
            value: side
                .value
                .as_ref()
                .map_or(serde_json::Value::Null, |v| v.to_value()),
            removed: side.value.is_none(),
            clock: side.clock.to_string(),
            site: side.clock.site.to_string(),
            wall_ms: side.clock.hlc.wall_ms(),
        }
    }
}

impl From<&JournalledConflict> for ConflictInfo {
    fn from(c: &JournalledConflict) -> Self {
        let e = &c.entry;
        let (field, key) = match &e.slot {
            Slot::Life => (None, None),
            Slot::Field(f) => (Some(f.to_string()), None),
            Slot::Entry(f, k) => (Some(f.to_string()), Some(k.clone())),
        };
        Self {
            n: c.n,
            at_ms: e.at_ms,
            collection: e.collection.to_string(),
            id: e.id.to_string(),
            field,
            key,
            kept: ConflictValue::of(&e.kept),
            lost: ConflictValue::of(&e.lost),
        }
    }
}
