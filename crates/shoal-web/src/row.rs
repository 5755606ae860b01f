//! How one record's merged state is stored in the browser: its slot versions
//! (every field, map entry and tombstone with its clock and life) as one
//! JSON text, the same content the native store keeps in its slot rows.
//!
//! It owns the encoding only; it decides no merge (that is
//! `shoal_core::RecordState`'s) and touches no storage.

use crate::error::WebError;
use serde::{Deserialize, Serialize};
use shoal_core::{CanonicalJson, Clock, Life, RecordState, Slot, SlotVersion};

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
}

/// The record's state as stored text.
pub fn encode_state(state: &RecordState) -> String {
    let slots: Vec<StoredSlot> = state
        .slots()
        .map(|(slot, version)| StoredSlot {
            slot: slot.clone(),
            value: version.value.clone(),
            clock: version.clock,
            life: version.life,
            pred: version.pred,
        })
        .collect();
    serde_json::to_string(&slots).expect("slot versions always encode")
}

/// The record's state back from stored text (its values re-checked as canonical).
pub fn decode_state(text: &str) -> Result<RecordState, WebError> {
    let slots: Vec<StoredSlot> =
        serde_json::from_str(text).map_err(|e| WebError::Corrupt(format!("record state: {e}")))?;
    Ok(RecordState::from_slots(slots.into_iter().map(|s| {
        (
            s.slot,
            SlotVersion {
                value: s.value,
                clock: s.clock,
                life: s.life,
                pred: s.pred,
            },
        )
    })))
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
    fn damaged_text_is_a_corrupt_error_not_a_panic() {
        assert!(matches!(decode_state("[{]"), Err(WebError::Corrupt(_))));
        // A value that is not canonical is refused too.
        let bad = r#"[{"slot":"Life","value":null,"clock":{"hlc":1,"site":1},"life":1},{"slot":{"Field":"a"},"value":"{ }","clock":{"hlc":1,"site":1},"life":1}]"#;
        assert!(matches!(decode_state(bad), Err(WebError::Corrupt(_))));
    }
}
