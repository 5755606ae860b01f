//! JSON bodies a user writes a record with (`shoal_core::plan`): the text
//! of a put, create, JSON merge-patch or map-entry write, parsed as the CLI
//! and the HTTP API parse it, planned against a record state built from the
//! input (fields, map entries, tombstones, several lives), applied, and
//! scanned for blob references (`refs_in`).
//!
//! Checked: no panic; a planned write, applied with a newer clock, shows
//! what was written — every scalar field of a put or patch holds its value,
//! a patch's `null` removes its field, a map write shows its entry.

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use shoal_core::blob::refs_in;
use shoal_core::{
    CanonicalJson, Clock, FieldName, Hlc, Intent, Life, RecordState, SiteId, SlotVersion, plan,
};
use shoal_fuzz::build;

fn state(u: &mut Unstructured) -> RecordState {
    let mut state = RecordState::new();
    for _ in 0..u.int_in_range(0..=8usize).unwrap_or(0) {
        let Ok(slot) = build::slot(u) else { break };
        let value = match slot {
            shoal_core::Slot::Life => None,
            _ if u.ratio(1, 4).unwrap_or(false) => None,
            _ => build::json(u, 2)
                .ok()
                .map(|v| CanonicalJson::from_value(&v)),
        };
        let version = SlotVersion {
            value,
            clock: Clock {
                hlc: Hlc::from_packed(u.int_in_range(0..=1000).unwrap_or(0)),
                site: SiteId(1),
            },
            life: Life(u.int_in_range(1..=3).unwrap_or(1)),
            pred: None,
        };
        state.apply(slot, version);
    }
    state
}

fn apply(state: &RecordState, intent: &Intent) -> Option<RecordState> {
    let newest = state.max_clock().map_or(0, |c| c.hlc.packed());
    let clock = Clock {
        hlc: Hlc::from_packed(newest.checked_add(1)?),
        site: SiteId(2),
    };
    let planned = plan(state, intent, clock).ok()?;
    let mut after = state.clone();
    for (slot, version) in planned {
        after.apply(slot, version);
    }
    Some(after)
}

fn shows(after: &RecordState, object: &Map<String, Value>, null_removes: bool) {
    let rendered = after.render().expect("a written record is alive");
    for (name, value) in object {
        match value {
            Value::Null if null_removes => {
                assert!(!rendered.contains_key(name), "{name} not removed")
            }
            Value::Object(_) => {}
            _ => assert_eq!(rendered.get(name), Some(value), "field {name}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(mode >> 2).min(rest.len());
    let (state_bytes, text) = rest.split_at(split);
    let state = state(&mut Unstructured::new(state_bytes));
    let Ok(value) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    let _ = refs_in(&value);
    let _ = CanonicalJson::parse(&value.to_string(), 1 << 20);
    match (mode % 4, &value) {
        (0, Value::Object(object)) => {
            if let Some(after) = apply(&state, &Intent::Put(object.clone())) {
                shows(&after, object, false);
            }
        }
        (1, Value::Object(object)) => {
            if let Some(after) = apply(&state, &Intent::Patch(object.clone())) {
                shows(&after, object, true);
            }
        }
        (2, Value::Object(object)) => {
            if let Some(after) = apply(&state, &Intent::Create(object.clone())) {
                shows(&after, object, false);
            }
        }
        (3, Value::Array(parts)) => {
            let (Some(Value::String(field)), Some(Value::String(key)), Some(v)) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return;
            };
            let Ok(field) = FieldName::new(field.as_str()) else {
                return;
            };
            let intent = Intent::MapSet {
                field: field.clone(),
                key: key.clone(),
                value: v.clone(),
            };
            if let Some(after) = apply(&state, &intent) {
                let entries = after.entries(&field);
                let shown = entries
                    .iter()
                    .find(|(k, _)| *k == key.as_str())
                    .and_then(|(_, e)| e.value.clone());
                assert_eq!(shown, Some(CanonicalJson::from_value(v)), "entry {key}");
            }
            let remove = Intent::MapRemove {
                field,
                key: key.clone(),
            };
            let _ = apply(&state, &remove);
        }
        _ => {}
    }
});
