//! The HTTP API's shapes for data: collections, records, the change feed's
//! events and blobs (see docs/http-api.md). Shapes only: no handler logic.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shoal::Written;
use utoipa::ToSchema;

/// `GET /api/collections`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectionsReply {
    /// Every collection this node holds a record of, by name.
    pub collections: Vec<CollectionInfo>,
}

/// One collection's counts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectionInfo {
    /// Its name.
    pub name: String,
    /// Live records.
    pub live: u64,
    /// Deleted records (tombstones).
    pub deleted: u64,
}

/// One record: `GET /api/collections/{c}/records/{id}` and each row of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordBody {
    /// Its id.
    pub id: String,
    /// Its fields.
    #[schema(value_type = Object)]
    pub value: Value,
    /// Set when a newer app wrote the record: its data version (the
    /// `$data_version` field), above the one this node's app declares for
    /// the collection. The record is kept and synced; this node's app may
    /// not understand it. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_data_version: Option<u64>,
}

/// A collection's declared data version and JSON Schema on this node:
/// `GET`/`PUT /api/collections/{c}/schema`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaBody {
    /// The data version (1 or more; never lower than the one declared).
    pub version: u32,
    /// The JSON Schema every record must validate against.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// `GET /api/collections/{c}/records`: one page in id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordsPage {
    /// The records.
    pub records: Vec<RecordBody>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// `POST /api/collections/{c}/records` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecord {
    /// The id; a random one (32 hex digits) when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The fields (a JSON object).
    #[schema(value_type = Object)]
    pub value: Value,
}

/// The reply to a write (create, put, patch, delete, a map entry set or
/// removed) — over HTTP and from the CLI's `--json`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WriteReply {
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// The db_version written; `None` when nothing changed.
    pub db_version: Option<u64>,
    /// The clock the write stamped on every field version it wrote,
    /// `WALL_MS.COUNTER@SITE` (as `shoal log` and Sync Details show clocks);
    /// `None` when nothing changed.
    pub clock: Option<String>,
}

impl WriteReply {
    /// The reply to a write of `collection/id` that wrote `written`.
    pub fn new(collection: &str, id: &str, written: Option<Written>) -> Self {
        WriteReply {
            collection: collection.to_string(),
            id: id.to_string(),
            db_version: written.map(|w| w.version.0),
            clock: written.map(|w| w.clock.to_string()),
        }
    }
}

/// The `data` of one change-feed event (`event: change`, `id: <db_version>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeData {
    /// The commit that last changed the record.
    pub db_version: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// `local` (written here) or `remote` (merged from a peer).
    pub origin: String,
}

/// A blob reference, as `POST /api/blobs` returns it and records hold it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlobRefBody {
    /// The BLAKE3 hash, 64 hex digits.
    #[serde(rename = "$blob")]
    pub blob: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type, when the upload gave one.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

/// `GET /api/blobs`: one page in hash order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlobsReply {
    /// The blobs.
    pub blobs: Vec<BlobRow>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// One blob: held here, or (`?missing=true`) referenced and not here yet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlobRow {
    /// The BLAKE3 hash, 64 hex digits.
    pub hash: String,
    /// Size in bytes (for a missing blob, as its references state it).
    pub size: u64,
    /// Held blobs: how many live records reference it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<u64>,
    /// Held blobs: when it arrived (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_ms: Option<u64>,
    /// Missing blobs: the collections of the records referencing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    /// Missing blobs: where the running node's fetch of it stands, when
    /// it has tried (absent: not looked at yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<BlobTransferInfo>,
    /// Missing blobs on a node with blobs on demand: `true` — it stays on
    /// the peers that hold it until it is opened (`GET /api/blobs/{hash}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<bool>,
}

/// Where the node's fetch of a missing blob stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobTransferInfo {
    /// `fetching` (from `peer`), `awaiting-direct` (only relayed peers
    /// could send it and it is over `relay_max`: it waits for a direct
    /// connection) or `failed` (retried after a pause; `error` says why).
    pub state: String,
    /// The peer it is being fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The largest blob fetched through a relay, for `awaiting-direct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_max: Option<u64>,
    /// Verified bytes held so far.
    pub verified_bytes: u64,
}

impl From<&shoal::BlobTransfer> for BlobTransferInfo {
    fn from(t: &shoal::BlobTransfer) -> Self {
        let (state, peer, error, relay_max) = match &t.state {
            shoal::BlobState::Fetching { peer } => ("fetching", Some(peer.to_string()), None, None),
            shoal::BlobState::AwaitingDirect { relay_max } => {
                ("awaiting-direct", None, None, Some(*relay_max))
            }
            shoal::BlobState::Failed { error } => ("failed", None, Some(error.clone()), None),
        };
        BlobTransferInfo {
            state: state.into(),
            peer,
            error,
            relay_max,
            verified_bytes: t.verified_bytes,
        }
    }
}
