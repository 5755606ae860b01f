//! The HTTP API's shapes for peers and sharing: forgetting a peer, the
//! sharing rules, and one record's Sync Details (see docs/http-api.md).
//! Shapes only: no handler logic.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `DELETE /api/peers/{peer}` reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ForgetReply {
    /// The peer forgotten.
    pub peer: String,
    /// Lines of `peers.txt` removed.
    pub removed: u64,
}

/// `GET /api/sharing` (and the reply to `PUT /api/sharing` and
/// `PUT /api/sharing/local-only`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharingReply {
    /// The mode of a collection with a peer no rule names: `both`.
    pub default: String,
    /// Collections that never leave this node.
    pub local_only: Vec<String>,
    /// The rules set, by peer then collection.
    pub rules: Vec<SharingRule>,
}

/// One sharing rule (also `PUT /api/sharing`'s body).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingRule {
    /// A peer id, or `*` for every peer without a rule of its own.
    pub peer: String,
    /// The collection.
    pub collection: String,
    /// `both`, `send`, `receive` or `none`.
    pub mode: String,
}

/// `PUT /api/sharing/local-only` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLocalOnly {
    /// The collection.
    pub collection: String,
    /// Whether it never leaves this node.
    pub local_only: bool,
}

/// `GET /api/collections/{c}/records/{id}/sync?peer=P`: one record on both
/// sides.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncDetails {
    /// The collection.
    pub collection: String,
    /// The record id.
    pub id: String,
    /// The peer compared with.
    pub peer: String,
    /// `in-sync`, `local-only`, `peer-only`, `diverged` or `assets-missing`.
    pub status: String,
    /// What this node holds (`None`: never seen here).
    pub local: Option<Side>,
    /// What the peer holds (`None`: never seen there).
    pub remote: Option<Side>,
}

/// One side's state of a record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Side {
    /// Whether the record is alive (not deleted) on this side.
    pub alive: bool,
    /// Its fields as they show; `None` when deleted.
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    /// Its causal length (odd: alive, even: deleted).
    pub life: u64,
    /// Every slot version, in slot order.
    pub slots: Vec<SlotInfo>,
    /// Blobs the record references that are not on this side (always empty
    /// for the peer's side: the peer does not say).
    pub missing_blobs: Vec<String>,
}

/// One slot version: the life, a field, or one entry of a map field.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SlotInfo {
    /// `life`, the field name, or `field[key]` for a map entry.
    pub slot: String,
    /// `life`, `field` or `entry`.
    pub kind: String,
    /// The field (`None` for the life slot).
    pub field: Option<String>,
    /// The map key (entries only).
    pub key: Option<String>,
    /// The value; `None` for the life slot and for a removed field or entry.
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    /// The writer's clock, `WALL_MS.COUNTER@SITE` (ordered by HLC, then site).
    pub clock: String,
    /// The wall-clock part of the clock (ms since the Unix epoch).
    pub wall_ms: u64,
    /// The site id of the writer (16 hex digits).
    pub site: String,
    /// The life it was written in.
    pub life: u64,
}
