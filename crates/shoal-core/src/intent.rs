//! Local writes: turns what a user asked for ([`Intent`]) into the slot versions
//! that express it, given the record's current [`RecordState`] and one fresh clock.
//!
//! Planning is pure; the store applies the planned versions through the same
//! merge path as remote changes. Fields whose value would not change are not
//! rewritten, so a put of an unchanged record produces no changes at all.

use crate::change::Slot;
use crate::clock::{Clock, Life};
use crate::error::CoreError;
use crate::field_names::FieldNames;
use crate::ids::{FieldName, MAX_MAP_KEY_LEN};
use crate::merge::RecordState;
use crate::slot_version::SlotVersion;
use crate::value::CanonicalJson;
use serde_json::{Map, Value};

/// A local write to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Make the record exactly this object: set the given fields, remove the
    /// others. Creates the record (or a new life of a deleted one) if needed.
    /// A field that is currently a map and is given an object is diffed entry by entry.
    Put(Map<String, Value>),
    /// Make a record that is not alive exactly this object (a new life of a
    /// deleted one). Refused with [`CoreError::RecordExists`] if it is alive:
    /// planned inside the write, so two creates, or a create and a merged
    /// peer change, cannot both find the record absent.
    Create(Map<String, Value>),
    /// Change only the given fields (JSON merge-patch at the top level: `null`
    /// removes a field). The record must be alive.
    Patch(Map<String, Value>),
    /// Delete the record. It must be alive.
    Delete,
    /// Set one entry of a map field; creates the record if needed.
    MapSet {
        /// The map field.
        field: FieldName,
        /// The entry key.
        key: String,
        /// The entry value.
        value: Value,
    },
    /// Remove one entry of a map field (a tombstone, so a peer's union cannot undo it).
    MapRemove {
        /// The map field.
        field: FieldName,
        /// The entry key.
        key: String,
    },
}

/// The slot versions a local write consists of, in application order.
pub type Plan = Vec<(Slot, SlotVersion)>;

/// Plans `intent` against `state`, stamping every version with `clock`.
///
/// Errors: [`CoreError::RecordNotFound`] for a patch, delete or entry removal
/// on a record that is not alive; [`CoreError::RecordExists`] for a create of
/// one that is; name errors for invalid field names.
pub fn plan(state: &RecordState, intent: &Intent, clock: Clock) -> Result<Plan, CoreError> {
    plan_naming(state, intent, clock, &mut FieldNames::for_plans(1))
}

/// [`plan`], taking the names of the fields it sets from `names`: a caller
/// planning many records (a batch) passes the same one to each, so a field
/// name is made once for them all.
pub fn plan_naming(
    state: &RecordState,
    intent: &Intent,
    clock: Clock,
    names: &mut FieldNames,
) -> Result<Plan, CoreError> {
    let mut out = plan_versions(state, intent, clock, names)?;
    // Each version names the one it replaces, so peers can tell this write
    // from a concurrent one (`conflict.rs`).
    for (slot, version) in &mut out {
        version.pred = match slot {
            Slot::Life => None,
            Slot::Field(_) | Slot::Entry(..) => state
                .slot(slot)
                .filter(|current| current.life == version.life)
                .map(|current| current.clock),
        };
    }
    Ok(out)
}

/// [`plan`] before the versions name their predecessors.
fn plan_versions(
    state: &RecordState,
    intent: &Intent,
    clock: Clock,
    names: &mut FieldNames,
) -> Result<Plan, CoreError> {
    if let Intent::MapSet { key, .. } | Intent::MapRemove { key, .. } = intent {
        check_key(key)?;
    }
    if matches!(intent, Intent::Create(_)) && state.is_alive() {
        return Err(CoreError::RecordExists);
    }
    let mut out = Plan::new();
    let life = if state.is_alive() {
        state.life()
    } else {
        match intent {
            Intent::Put(_) | Intent::Create(_) | Intent::MapSet { .. } => {
                let life = state.life().recreated();
                if life > Life::MAX {
                    // Only a peer's life at the bound gets here; a change
                    // past it would be refused by every peer.
                    return Err(CoreError::LifeExhausted);
                }
                out.push((
                    Slot::Life,
                    SlotVersion {
                        value: None,
                        clock,
                        life,
                        pred: None,
                    },
                ));
                life
            }
            Intent::Patch(_) | Intent::Delete | Intent::MapRemove { .. } => {
                return Err(CoreError::RecordNotFound);
            }
        }
    };
    let fresh = !state.is_alive();
    let version = |value: Option<CanonicalJson>| SlotVersion {
        value,
        clock,
        life,
        pred: None,
    };
    match intent {
        Intent::Put(object) | Intent::Create(object) => {
            let mut given = Vec::with_capacity(object.len());
            for (name, value) in object {
                let field = names.name(name)?;
                set_field(state, fresh, &field, Some(value), &version, &mut out)?;
                given.push(field);
            }
            if !fresh {
                for field in state.field_names() {
                    if !given.contains(field) {
                        set_field(state, fresh, field, None, &version, &mut out)?;
                    }
                }
            }
        }
        Intent::Patch(object) => {
            for (name, value) in object {
                let field = names.name(name)?;
                let value = (!value.is_null()).then_some(value);
                set_field(state, fresh, &field, value, &version, &mut out)?;
            }
        }
        Intent::Delete => {
            out.push((
                Slot::Life,
                SlotVersion {
                    value: None,
                    clock,
                    life: life.deleted(),
                    pred: None,
                },
            ));
        }
        Intent::MapSet { field, key, value } => {
            let slot = Slot::Entry(field.clone(), key.clone());
            let value = CanonicalJson::from_value(value);
            let is_map = !fresh && state.is_map_field(field);
            if is_map && state.slot(&slot).and_then(|v| v.value.as_ref()) == Some(&value) {
                return Ok(out);
            }
            if !fresh && !is_map {
                entries_from_register(state, field, key, &version, &mut out)?;
            }
            out.push((slot, version(Some(value))));
        }
        Intent::MapRemove { field, key } => {
            let slot = Slot::Entry(field.clone(), key.clone());
            if state.is_map_field(field) {
                if state.slot(&slot).is_some_and(|v| v.value.is_some()) {
                    out.push((slot, version(None)));
                }
            } else if register_object(state, field).is_some_and(|o| o.contains_key(key)) {
                entries_from_register(state, field, key, &version, &mut out)?;
                out.push((slot, version(None)));
            }
        }
    }
    Ok(out)
}

/// The field's register value, if it is a JSON object.
fn register_object(state: &RecordState, field: &FieldName) -> Option<Map<String, Value>> {
    match state
        .slot(&Slot::Field(field.clone()))?
        .value
        .as_ref()?
        .to_value()
    {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// Turns a field that holds a plain object into a map field: each of its keys
/// (but `except`, which the caller writes) becomes an entry, so a map write
/// on it keeps the keys it had instead of hiding them.
fn entries_from_register(
    state: &RecordState,
    field: &FieldName,
    except: &str,
    version: &dyn Fn(Option<CanonicalJson>) -> SlotVersion,
    out: &mut Plan,
) -> Result<(), CoreError> {
    for (key, value) in register_object(state, field).unwrap_or_default() {
        if key != except {
            check_key(&key)?;
            out.push((
                Slot::Entry(field.clone(), key),
                version(Some(CanonicalJson::from_value(&value))),
            ));
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), CoreError> {
    if key.len() > MAX_MAP_KEY_LEN {
        return Err(CoreError::InvalidMapKey { len: key.len() });
    }
    Ok(())
}

/// Plans setting (or, with `None`, removing) one field.
fn set_field(
    state: &RecordState,
    fresh: bool,
    field: &FieldName,
    value: Option<&Value>,
    version: &dyn Fn(Option<CanonicalJson>) -> SlotVersion,
    out: &mut Plan,
) -> Result<(), CoreError> {
    if fresh {
        if let Some(value) = value {
            out.push((
                Slot::Field(field.clone()),
                version(Some(CanonicalJson::from_value(value))),
            ));
        }
        return Ok(());
    }
    if state.is_map_field(field) {
        let entries = state.entries(field);
        match value {
            Some(Value::Object(new_entries)) => {
                for (key, value) in new_entries {
                    check_key(key)?;
                    let value = CanonicalJson::from_value(value);
                    // Entries come in key order: a lookup, not a scan, so a
                    // big map (or many tombstones) does not make a put quadratic.
                    let current = entries
                        .binary_search_by(|(k, _)| (*k).cmp(key.as_str()))
                        .ok()
                        .map(|i| &entries[i]);
                    if current.and_then(|(_, v)| v.value.as_ref()) != Some(&value) {
                        out.push((
                            Slot::Entry(field.clone(), key.clone()),
                            version(Some(value)),
                        ));
                    }
                }
                for (key, current) in &entries {
                    if current.value.is_some() && !new_entries.contains_key(*key) {
                        out.push((Slot::Entry(field.clone(), key.to_string()), version(None)));
                    }
                }
                return Ok(());
            }
            other => {
                // Replacing a map by a plain value (or removing it): tombstone its
                // live entries too, so a later entry write cannot revive them.
                for (key, current) in &entries {
                    if current.value.is_some() {
                        out.push((Slot::Entry(field.clone(), key.to_string()), version(None)));
                    }
                }
                let value = other.map(CanonicalJson::from_value);
                out.push((Slot::Field(field.clone()), version(value)));
                return Ok(());
            }
        }
    }
    let value = value.map(CanonicalJson::from_value);
    let current = state.slot(&Slot::Field(field.clone()));
    let shown = current.and_then(|v| v.value.as_ref());
    if shown != value.as_ref() {
        out.push((Slot::Field(field.clone()), version(value)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Hlc;
    use crate::ids::SiteId;
    use serde_json::json;

    fn clock(t: u64) -> Clock {
        Clock {
            hlc: Hlc::new(t, 0),
            site: SiteId(1),
        }
    }
    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }
    fn run(state: &mut RecordState, intent: Intent, t: u64) -> usize {
        let planned = plan(state, &intent, clock(t)).unwrap();
        let n = planned.len();
        for (slot, v) in planned {
            state.apply(slot, v);
        }
        n
    }

    #[test]
    fn create_only_where_no_live_record_is() {
        let mut r = RecordState::new();
        assert_eq!(run(&mut r, Intent::Create(obj(json!({"a": 1}))), 1), 2);
        assert_eq!(
            plan(&r, &Intent::Create(obj(json!({"a": 2}))), clock(2)),
            Err(CoreError::RecordExists)
        );
        assert_eq!(r.render().unwrap(), obj(json!({"a": 1})));
        run(&mut r, Intent::Delete, 3);
        // A deleted record may be created again, as a new life.
        assert_eq!(run(&mut r, Intent::Create(obj(json!({"b": 2}))), 4), 2);
        assert_eq!(r.life().0, 3);
        assert_eq!(r.render().unwrap(), obj(json!({"b": 2})));
    }

    #[test]
    fn put_put_patch_delete_recreate() {
        let mut r = RecordState::new();
        assert_eq!(run(&mut r, Intent::Put(obj(json!({"a": 1, "b": 2}))), 1), 3);
        assert_eq!(run(&mut r, Intent::Put(obj(json!({"a": 1, "b": 2}))), 2), 0);
        assert_eq!(run(&mut r, Intent::Put(obj(json!({"a": 1}))), 3), 1);
        assert_eq!(r.render().unwrap(), obj(json!({"a": 1})));
        run(&mut r, Intent::Patch(obj(json!({"c": true, "a": null}))), 4);
        assert_eq!(r.render().unwrap(), obj(json!({"c": true})));
        run(&mut r, Intent::Delete, 5);
        assert_eq!(r.render(), None);
        assert_eq!(
            plan(&r, &Intent::Delete, clock(6)),
            Err(CoreError::RecordNotFound)
        );
        run(&mut r, Intent::Put(obj(json!({"z": 0}))), 7);
        assert_eq!(r.life().0, 3);
        assert_eq!(r.render().unwrap(), obj(json!({"z": 0})));
    }

    #[test]
    fn map_writes_on_a_plain_object_keep_its_keys() {
        let mut r = RecordState::new();
        let tags = FieldName::new("tags").unwrap();
        run(
            &mut r,
            Intent::Put(obj(json!({"tags": {"x": 1, "z": 3}}))),
            1,
        );
        run(
            &mut r,
            Intent::MapSet {
                field: tags.clone(),
                key: "y".into(),
                value: json!(2),
            },
            2,
        );
        assert_eq!(
            r.field_value(&tags).unwrap(),
            json!({"x": 1, "y": 2, "z": 3})
        );
        let mut r = RecordState::new();
        run(&mut r, Intent::Put(obj(json!({"tags": {"x": 1}}))), 1);
        run(
            &mut r,
            Intent::MapRemove {
                field: tags.clone(),
                key: "x".into(),
            },
            2,
        );
        assert_eq!(r.field_value(&tags).unwrap(), json!({}));
        let mut r = RecordState::new();
        run(&mut r, Intent::Put(obj(json!({"tags": "plain"}))), 1);
        assert_eq!(
            run(
                &mut r,
                Intent::MapRemove {
                    field: tags.clone(),
                    key: "x".into()
                },
                2
            ),
            0,
            "not a map: nothing to remove"
        );
        assert_eq!(r.field_value(&tags).unwrap(), json!("plain"));
    }

    #[test]
    fn two_puts_of_one_record_in_sequence_apply_in_order() {
        let mut r = RecordState::new();
        run(&mut r, Intent::Put(obj(json!({"a": 1}))), 1);
        run(&mut r, Intent::Put(obj(json!({"b": 2}))), 2);
        assert_eq!(r.render().unwrap(), obj(json!({"b": 2})));
    }

    #[test]
    fn put_diffs_map_fields() {
        let mut r = RecordState::new();
        let tags = FieldName::new("tags").unwrap();
        run(
            &mut r,
            Intent::MapSet {
                field: tags.clone(),
                key: "a".into(),
                value: json!(1),
            },
            1,
        );
        run(
            &mut r,
            Intent::MapSet {
                field: tags.clone(),
                key: "b".into(),
                value: json!(2),
            },
            2,
        );
        let n = run(
            &mut r,
            Intent::Put(obj(json!({"tags": {"a": 1, "c": 3}}))),
            3,
        );
        assert_eq!(n, 2, "one entry added, one removed, none rewritten");
        assert!(r.is_map_field(&tags));
        assert_eq!(r.field_value(&tags).unwrap(), json!({"a": 1, "c": 3}));
    }
}
