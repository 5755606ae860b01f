//! How one record's merged state is stored in the browser: its slot versions
//! (every field, map entry and tombstone with its clock and life) as one
//! JSON text, the same content the native store keeps in its slot rows —
//! including, per slot version, the change-log position (`db_version`) of
//! the transaction that wrote it here, which a log read for a peer compares
//! with the peer's cursor (`SyncCursor::base`) exactly as the native store
//! does ([`StoredRecord`]).
//!
//! It owns the encoding only; it decides no merge (that is
//! `shoal_core::RecordState`'s) and touches no storage.

use crate::error::WebError;
use serde::{Deserialize, Serialize};
use shoal_core::{CanonicalJson, Clock, DbVersion, Life, RecordState, Slot, SlotVersion};
use std::collections::BTreeMap;

/// Most bytes a record's stored state may take, as on native nodes
/// (`shoal_store::DEFAULT_MAX_RECORD_BYTES`).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// One stored slot version.
#[derive(Serialize, Deserialize)]
struct StoredSlot {
    slot: Slot,
    value: Option<CanonicalJson>,
    clock: Clock,
    life: Life,
    /// The clock of the version its writer replaced (for the conflict
    /// journal); absent in rows written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pred: Option<Clock>,
    /// The db_version of the transaction that wrote this slot version here;
    /// absent in rows written before it was kept (then the row's own
    /// version stands for it, which at worst sends a peer a slot again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
}

/// One stored record: its merged state and, per slot, the db_version of
/// the transaction that wrote that slot version here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredRecord {
    /// The merged state.
    pub state: RecordState,
    /// Where each stored slot version was written (slots missing here were
    /// written at the row's version).
    pub written: BTreeMap<Slot, DbVersion>,
}

impl StoredRecord {
    /// The record back from its stored text; `row_version` is the row's
    /// change-log position (the stamp of slots stored without one).
    pub fn decode(text: &str, row_version: DbVersion) -> Result<Self, WebError> {
        let slots: Vec<StoredSlot> = serde_json::from_str(text)
            .map_err(|e| WebError::Corrupt(format!("record state: {e}")))?;
        let mut written = BTreeMap::new();
        let state = RecordState::from_slots(slots.into_iter().map(|s| {
            written.insert(s.slot.clone(), DbVersion(s.at.unwrap_or(row_version.0)));
            (
                s.slot,
                SlotVersion {
                    value: s.value,
                    clock: s.clock,
                    life: s.life,
                    pred: s.pred,
                },
            )
        }));
        written.retain(|slot, _| state.slot(slot).is_some());
        Ok(StoredRecord { state, written })
    }

    /// As stored text (every slot with its stamp).
    pub fn encode(&self) -> String {
        let slots: Vec<StoredSlot> = self
            .state
            .slots()
            .map(|(slot, version)| StoredSlot {
                slot: slot.clone(),
                value: version.value.clone(),
                clock: version.clock,
                life: version.life,
                pred: version.pred,
                at: self.written.get(slot).map(|v| v.0),
            })
            .collect();
        serde_json::to_string(&slots).expect("slot versions always encode")
    }

    /// Where the stored version of `slot` was written (`None`: no such slot).
    pub fn written_at(&self, slot: &Slot) -> Option<DbVersion> {
        self.state
            .slot(slot)
            .map(|_| self.written.get(slot).copied().unwrap_or_default())
    }

    /// This record after a transaction at `version` merged it to `state`:
    /// every slot version that is new or different is stamped `version`,
    /// the others keep their stamps.
    pub fn merged(&self, state: RecordState, version: DbVersion) -> StoredRecord {
        let written = state
            .slots()
            .map(|(slot, now)| {
                let kept = self
                    .state
                    .slot(slot)
                    .filter(|before| *before == now)
                    .and_then(|_| self.written.get(slot).copied());
                (slot.clone(), kept.unwrap_or(version))
            })
            .collect();
        StoredRecord { state, written }
    }
}

/// The record's state as stored text, every slot stamped at the row's own
/// version (what a local write of a new record stores).
pub fn encode_state(state: &RecordState) -> String {
    StoredRecord {
        state: state.clone(),
        written: BTreeMap::new(),
    }
    .encode()
}

/// The record's state back from stored text (its values re-checked as canonical).
pub fn decode_state(text: &str) -> Result<RecordState, WebError> {
    StoredRecord::decode(text, DbVersion(0)).map(|r| r.state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{FieldName, Hlc, SiteId};

    #[test]
    fn a_state_with_fields_entries_and_tombstones_round_trips() {
        let clock = |ms| Clock {
            hlc: Hlc::new(ms, 0),
            site: SiteId(7),
        };
        let v = |value: Option<&str>, ms| SlotVersion {
            value: value.map(|t| CanonicalJson::from_trusted(t.to_string())),
            clock: clock(ms),
            life: Life(1),
            pred: (ms > 2).then(|| clock(ms - 1)),
        };
        let title = FieldName::new("title").unwrap();
        let tags = FieldName::new("tags").unwrap();
        let state = RecordState::from_slots([
            (Slot::Life, v(None, 1)),
            (Slot::Field(title), v(Some("\"milk\""), 2)),
            (Slot::Entry(tags.clone(), "a".into()), v(Some("true"), 3)),
            (Slot::Entry(tags, "b".into()), v(None, 4)),
        ]);
        let text = encode_state(&state);
        assert_eq!(decode_state(&text).unwrap(), state);
        assert_eq!(
            state.render_json().unwrap(),
            r#"{"tags":{"a":true},"title":"milk"}"#
        );
    }

    #[test]
    fn stamps_round_trip_and_a_merge_stamps_only_what_changed() {
        let clock = |ms| Clock {
            hlc: Hlc::new(ms, 0),
            site: SiteId(7),
        };
        let v = |value: &str, ms| SlotVersion {
            value: Some(CanonicalJson::from_trusted(value.to_string())),
            clock: clock(ms),
            life: Life(1),
            pred: None,
        };
        let life = SlotVersion {
            value: None,
            clock: clock(1),
            life: Life(1),
            pred: None,
        };
        let a = Slot::Field(FieldName::new("a").unwrap());
        let b = Slot::Field(FieldName::new("b").unwrap());
        let state = RecordState::from_slots([(Slot::Life, life), (a.clone(), v("1", 2))]);
        let first = StoredRecord::default().merged(state.clone(), DbVersion(4));
        assert_eq!(first.written_at(&a), Some(DbVersion(4)));
        let mut next = state;
        next.apply(b.clone(), v("2", 3));
        let second = first.merged(next, DbVersion(9));
        assert_eq!(
            second.written_at(&a),
            Some(DbVersion(4)),
            "unchanged keeps its stamp"
        );
        assert_eq!(second.written_at(&b), Some(DbVersion(9)));
        assert_eq!(second.written_at(&Slot::Life), Some(DbVersion(4)));
        let back = StoredRecord::decode(&second.encode(), DbVersion(1)).unwrap();
        assert_eq!(back, second);
        // A row stored without stamps takes the row's version for each slot.
        let old = StoredRecord::decode(&encode_state(&second.state), DbVersion(6)).unwrap();
        assert_eq!(old.written_at(&a), Some(DbVersion(6)));
    }

    #[test]
    fn damaged_text_is_a_corrupt_error_not_a_panic() {
        assert!(matches!(decode_state("[{]"), Err(WebError::Corrupt(_))));
        // A value that is not canonical is refused too.
        let bad = r#"[{"slot":"Life","value":null,"clock":{"hlc":1,"site":1},"life":1},{"slot":{"Field":"a"},"value":"{ }","clock":{"hlc":1,"site":1},"life":1}]"#;
        assert!(matches!(decode_state(bad), Err(WebError::Corrupt(_))));
    }
}
