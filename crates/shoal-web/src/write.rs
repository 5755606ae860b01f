//! One local write, decided in memory: given the record's stored state, the
//! node metadata, what the caller asked for and the wall time, the new state
//! and metadata to store — through `shoal_core::plan` and
//! `RecordState::apply`, the very rules native nodes use.
//!
//! Pure: the IndexedDB transaction (`idb/write_tx.rs`) loads the inputs and
//! stores the outputs in one transaction. Nothing here touches storage.

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::row::{MAX_RECORD_BYTES, StoredRecord};
use shoal_core::{
    Clock, CoreError, DEFAULT_MAX_DRIFT_MS, DbVersion, HlcGenerator, Intent, RecordState, plan,
};

/// What a write that changed something leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The record as stored after the write: its merged state and the
    /// version each slot was written at (what a later write of the same
    /// record in one transaction starts from).
    pub record: StoredRecord,
    /// Its stored text (already checked against [`MAX_RECORD_BYTES`]).
    pub encoded: String,
    /// The metadata after the write (clock used, version bumped).
    pub meta: NodeMeta,
}

/// Plans `intent` on the stored record. `Ok(None)`: nothing would change (a
/// put of the same value, removing an absent entry), so nothing is written
/// and the version does not move. The slot versions it writes are stamped
/// with the new version (`row.rs`), the others keep theirs.
pub fn local_write(
    meta: &NodeMeta,
    stored: &StoredRecord,
    intent: &Intent,
    now_ms: u64,
) -> Result<Option<Written>, WebError> {
    let mut state: RecordState = stored.state.clone();
    let mut clocks = HlcGenerator::new(meta.hlc, DEFAULT_MAX_DRIFT_MS);
    let clock = Clock {
        hlc: clocks.tick(now_ms),
        site: meta.site,
    };
    let versions = plan(&state, intent, clock)?;
    if versions.is_empty() {
        return Ok(None);
    }
    for (slot, version) in versions {
        if let Some(value) = &version.value {
            value.check_limits(MAX_RECORD_BYTES)?;
        }
        state.apply(slot, version);
    }
    let version = DbVersion(meta.version.0 + 1);
    let record = stored.merged(state, version);
    let encoded = record.encode();
    if encoded.len() > MAX_RECORD_BYTES {
        return Err(CoreError::RecordTooLarge {
            size: encoded.len(),
            cap: MAX_RECORD_BYTES,
        }
        .into());
    }
    let meta = NodeMeta {
        hlc: clocks.last(),
        version,
        ..meta.clone()
    };
    Ok(Some(Written {
        record,
        encoded,
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shoal_core::{FieldName, Hlc};

    fn rec(state: RecordState) -> StoredRecord {
        StoredRecord {
            state,
            ..StoredRecord::default()
        }
    }

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn writes_bump_the_version_and_clock_and_follow_the_core_rules() {
        let meta = NodeMeta::new([3; 32]);
        let put = Intent::Put(object(json!({"title": "milk", "done": false})));
        let first = local_write(&meta, &rec(RecordState::new()), &put, 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(first.meta.version, DbVersion(1));
        assert_eq!(first.meta.hlc, Hlc::new(1_000, 0));
        assert_eq!(
            first.record.state.render_json().unwrap(),
            r#"{"done":false,"title":"milk"}"#
        );

        // The same put changes nothing: no write, no version.
        assert_eq!(
            local_write(&first.meta, &first.record, &put, 1_000).unwrap(),
            None
        );

        // A clock that went backwards still issues a greater reading.
        let patch = Intent::Patch(object(json!({"done": true})));
        let second = local_write(&first.meta, &first.record, &patch, 500)
            .unwrap()
            .unwrap();
        assert_eq!(second.meta.hlc, Hlc::new(1_000, 1));
        assert_eq!(second.meta.version, DbVersion(2));

        let delete = local_write(&second.meta, &second.record, &Intent::Delete, 2_000)
            .unwrap()
            .unwrap();
        assert!(!delete.record.state.is_alive());
        // A patch of a deleted record is the core's not-found, and a create
        // of a live one its already-exists.
        let err = local_write(&delete.meta, &delete.record, &patch, 3_000).unwrap_err();
        assert_eq!(err.code(), "not-found");
        let create = Intent::Create(object(json!({"a": 1})));
        let err = local_write(&second.meta, &second.record, &create, 3_000).unwrap_err();
        assert_eq!(err.code(), "already-exists");

        let tags = FieldName::new("tags").unwrap();
        let set = Intent::MapSet {
            field: tags,
            key: "k".into(),
            value: json!(1),
        };
        let mapped = local_write(&delete.meta, &delete.record, &set, 3_000)
            .unwrap()
            .unwrap();
        assert_eq!(
            mapped.record.state.render_json().unwrap(),
            r#"{"tags":{"k":1}}"#
        );
    }

    #[test]
    fn a_record_over_the_cap_is_refused_whole() {
        let meta = NodeMeta::new([4; 32]);
        let big = "x".repeat(MAX_RECORD_BYTES + 1);
        let put = Intent::Put(object(json!({ "blob": big })));
        let err = local_write(&meta, &rec(RecordState::new()), &put, 1).unwrap_err();
        assert_eq!(err.code(), "payload-too-large");
    }
}
