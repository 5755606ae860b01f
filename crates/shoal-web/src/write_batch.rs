//! A transaction's local writes decided in memory, in call order: which
//! stored rows they need (each record once, however often it is written),
//! and — given those rows and the node metadata — each write's outcome, the
//! rows to store and the metadata after them. A later write of a record
//! starts from what an earlier one of the batch left; a write the core
//! refuses (a patch of a missing record, say) gets its own error and
//! leaves nothing, the others are unaffected.
//!
//! Pure: the storage's write transaction (`idb/write_tx.rs`,
//! `sql/write_tx.rs`) loads the rows, calls [`decide`] and stores what it
//! answers, all in one transaction. Each single write is write.rs's.

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use crate::write::local_write;
use shoal_core::{CollectionName, DbVersion, Intent, RecordId};
use std::collections::HashMap;

/// One local write: a record and what to do to it.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    /// The record's collection.
    pub collection: CollectionName,
    /// The record's id.
    pub id: RecordId,
    /// What to do to it.
    pub intent: Intent,
}

/// A committed write.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The change-log position it was written at.
    pub version: DbVersion,
    /// The record as it now reads (`None`: deleted).
    pub value: Option<String>,
}

/// What one write of a transaction came to: committed (`None`: nothing
/// changed, so nothing was written), or refused by the core with nothing
/// of it written.
pub type WriteOutcome = Result<Option<Committed>, WebError>;

/// The records a batch writes, each once: their storage keys
/// (`keys::record_key`) in first-written order, and for each write the
/// index of its record's key.
#[derive(Debug, Clone, PartialEq)]
pub struct Needed {
    /// The keys to load, each once.
    pub keys: Vec<String>,
    /// For each write, the index in `keys` of its record.
    pub of_write: Vec<usize>,
}

/// The rows `writes` need.
pub fn needed(writes: &[WriteRequest]) -> Needed {
    let mut keys = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let of_write = writes
        .iter()
        .map(|w| {
            let key = crate::keys::record_key(&w.collection, &w.id);
            *index.entry(key).or_insert_with_key(|key| {
                keys.push(key.clone());
                keys.len() - 1
            })
        })
        .collect();
    Needed { keys, of_write }
}

/// A row to store: the write that made it, its log position and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct RowToStore {
    /// The index of the write in the batch (its collection and id).
    pub write: usize,
    /// The change-log position it is written at.
    pub version: DbVersion,
    /// The record's stored text (row.rs).
    pub encoded: String,
}

/// What a batch came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// One outcome per write, in order.
    pub outcomes: Vec<WriteOutcome>,
    /// The rows to store, in write order (a record written twice is here
    /// twice; the later row is the one that stays).
    pub rows: Vec<RowToStore>,
    /// The metadata after the writes, `None` when nothing was written
    /// (stored with the rows on IndexedDB; kept in memory by the SQLite
    /// store, whose rows carry it: `sql/head.rs`).
    pub meta: Option<NodeMeta>,
}

/// Decides `writes` in order against `stored` (one entry per key of
/// [`needed`], in its order: the decoded row, a new record's default, or
/// the error that refuses every write of that record).
pub fn decide(
    mut node: NodeMeta,
    mut stored: Vec<Result<StoredRecord, WebError>>,
    needed: &Needed,
    writes: &[WriteRequest],
    now_ms: u64,
) -> Decided {
    let mut outcomes = Vec::with_capacity(writes.len());
    let mut rows = Vec::new();
    for (at, (write, &slot)) in writes.iter().zip(&needed.of_write).enumerate() {
        let outcome = match &stored[slot] {
            Ok(record) => local_write(&node, record, &write.intent, now_ms),
            Err(error) => Err(error.clone()),
        };
        outcomes.push(match outcome {
            Err(error) => Err(error),
            Ok(None) => Ok(None),
            Ok(Some(written)) => {
                let version = written.meta.version;
                rows.push(RowToStore {
                    write: at,
                    version,
                    encoded: written.encoded,
                });
                node = written.meta;
                let value = written.record.state.render_json();
                stored[slot] = Ok(written.record);
                Ok(Some(Committed { version, value }))
            }
        });
    }
    let meta = (!rows.is_empty()).then_some(node);
    Decided {
        outcomes,
        rows,
        meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    fn put(id: &str, value: serde_json::Value) -> WriteRequest {
        WriteRequest {
            collection: CollectionName::new("notes").unwrap(),
            id: RecordId::new(id).unwrap(),
            intent: Intent::Put(object(value)),
        }
    }

    #[test]
    fn a_record_written_twice_is_loaded_once_and_the_second_write_starts_from_the_first() {
        let writes = [
            put("a", json!({"t": 1})),
            put("b", json!({"t": 2})),
            put("a", json!({"t": 3})),
        ];
        let needed = needed(&writes);
        assert_eq!(needed.keys, ["notes/a", "notes/b"]);
        assert_eq!(needed.of_write, [0, 1, 0]);
        let node = NodeMeta::new([3; 32]);
        let start = node.version;
        let stored = vec![Ok(StoredRecord::default()), Ok(StoredRecord::default())];
        let decided = decide(node, stored, &needed, &writes, 1_000);
        let versions: Vec<u64> = decided
            .outcomes
            .iter()
            .map(|o| o.as_ref().unwrap().as_ref().unwrap().version.0)
            .collect();
        assert_eq!(versions, [start.0 + 1, start.0 + 2, start.0 + 3]);
        assert_eq!(decided.rows.len(), 3);
        assert_eq!(decided.rows[2].write, 2);
        assert_eq!(decided.meta.unwrap().version.0, start.0 + 3);
        let last = decided.outcomes[2].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(last.value.as_deref(), Some(r#"{"t":3}"#));
    }

    #[test]
    fn a_refused_write_and_an_undecodable_row_leave_the_others_alone() {
        let patch_missing = WriteRequest {
            intent: Intent::Patch(object(json!({"t": 1}))),
            ..put("gone", json!({}))
        };
        let writes = [
            patch_missing,
            put("bad", json!({"t": 1})),
            put("ok", json!({"t": 2})),
        ];
        let needed = needed(&writes);
        let stored = vec![
            Ok(StoredRecord::default()),
            Err(WebError::Corrupt("row".into())),
            Ok(StoredRecord::default()),
        ];
        let decided = decide(NodeMeta::new([4; 32]), stored, &needed, &writes, 1_000);
        assert!(matches!(decided.outcomes[0], Err(WebError::Invalid(_))));
        assert_eq!(decided.outcomes[1], Err(WebError::Corrupt("row".into())));
        assert!(matches!(decided.outcomes[2], Ok(Some(_))));
        assert_eq!(decided.rows.len(), 1);
        assert_eq!(decided.rows[0].write, 2);
    }

    #[test]
    fn nothing_changed_writes_no_row_and_no_metadata() {
        let writes = [put("a", json!({"t": 1}))];
        let needed = needed(&writes);
        let first = decide(
            NodeMeta::new([5; 32]),
            vec![Ok(StoredRecord::default())],
            &needed,
            &writes,
            1_000,
        );
        let meta = first.meta.unwrap();
        let record = StoredRecord::decode(&first.rows[0].encoded, meta.version).unwrap();
        let again = decide(meta, vec![Ok(record)], &needed, &writes, 2_000);
        assert_eq!(again.outcomes, [Ok(None)]);
        assert!(again.rows.is_empty());
        assert_eq!(again.meta, None);
    }
}
