//! The merge rules, as a pure in-memory model of one record: [`RecordState`].
//!
//! The store loads a record's slots into a `RecordState`, applies local or
//! remote slot versions through [`RecordState::apply`], and writes back the
//! difference — so there is exactly one implementation of the rules:
//!
//! - a slot version is ordered by `(life, clock)`; only a strictly greater one
//!   replaces the stored one (equal is a no-op, so re-applying changes nothing);
//! - the record's life is the greatest life seen in any slot version; when it
//!   grows, slots written in older lives are purged, and versions from an older
//!   life are ignored — a stale edit can never resurrect a deleted record;
//! - the resulting state is a function of the *set* of versions received, so
//!   merge is commutative, associative and idempotent.
//!
//! This module must not read clocks, touch storage, or know about the wire.

use crate::change::{Change, LogPosition, Slot};
use crate::clock::{Clock, Life};
use crate::conflict::Conflict;
use crate::ids::{CollectionName, FieldName, RecordId};
use crate::slot_map::SlotMap;
use crate::slot_version::SlotVersion;
use crate::value::CanonicalJson;
use serde_json::{Map, Value};

/// What applying a slot version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The version is now the stored one.
    Applied,
    /// Ignored: written in a life older than the record's current life.
    StaleLife,
    /// Ignored: the stored version is equal or newer.
    NotNewer,
}

/// The merged state of one record: its life and its live slot versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordState {
    life: Life,
    slots: SlotMap,
}

impl RecordState {
    /// A record this replica has never seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a state from stored slot versions (as the store loads it).
    pub fn from_slots(slots: impl IntoIterator<Item = (Slot, SlotVersion)>) -> Self {
        let mut state = Self::new();
        for (slot, version) in slots {
            state.apply(slot, version);
        }
        state
    }

    /// The record's causal length.
    pub fn life(&self) -> Life {
        self.life
    }

    /// Whether the record is alive.
    pub fn is_alive(&self) -> bool {
        self.life.is_alive()
    }

    /// The stored slot versions, in slot order.
    pub fn slots(&self) -> impl Iterator<Item = (&Slot, &SlotVersion)> {
        self.slots.iter()
    }

    /// The record's full state as changes, one per stored slot version in
    /// slot order (no log position: a full state read outside the log), for
    /// a peer to merge or a caller to show.
    pub fn to_changes(&self, collection: &CollectionName, id: &RecordId) -> Vec<Change> {
        self.slots()
            .map(|(slot, version)| Change {
                collection: collection.clone(),
                id: id.clone(),
                slot: slot.clone(),
                value: version.value.clone(),
                clock: version.clock,
                life: version.life,
                position: LogPosition::default(),
                pred: version.pred,
            })
            .collect()
    }

    /// The stored version of one slot.
    pub fn slot(&self, slot: &Slot) -> Option<&SlotVersion> {
        self.slots.get(slot)
    }

    /// Merges one slot version into the record, as [`apply`](Self::apply),
    /// and says whether that settled a conflict: a field or map entry value
    /// replaced by, or losing to, a concurrent one ([`crate::conflict`]).
    /// Nothing is copied unless there is a conflict.
    pub fn apply_noting(
        &mut self,
        slot: Slot,
        version: SlotVersion,
    ) -> (Verdict, Option<Conflict>) {
        let conflict = match &slot {
            Slot::Life => None,
            Slot::Field(_) | Slot::Entry(..) => self
                .slots
                .get(&slot)
                .and_then(|current| Conflict::between(&slot, current, &version)),
        };
        (self.apply(slot, version), conflict)
    }

    /// Merges one slot version into the record.
    pub fn apply(&mut self, slot: Slot, version: SlotVersion) -> Verdict {
        let is_life_slot = matches!(slot, Slot::Life);
        if !is_life_slot && version.life < self.life {
            return Verdict::StaleLife;
        }
        if version.life > self.life {
            if self
                .slots
                .get(&slot)
                .is_some_and(|current| version.rank() <= current.rank())
            {
                return Verdict::NotNewer;
            }
            self.life = version.life;
            let life = self.life;
            self.slots
                .retain(|s, v| matches!(s, Slot::Life) || v.life >= life);
            self.slots.put_unless(slot, version, |_, _| false);
            return Verdict::Applied;
        }
        // The common case, the record's life unchanged: one look-up finds
        // the slot both to compare and to write.
        if self
            .slots
            .put_unless(slot, version, |current, new| new.rank() <= current.rank())
        {
            Verdict::Applied
        } else {
            Verdict::NotNewer
        }
    }

    /// The newest clock on any slot (the record's last write).
    pub fn max_clock(&self) -> Option<Clock> {
        self.slots.iter().map(|(_, v)| v.clock).max()
    }

    /// The value a field shows: a map field shows its live entries when an entry
    /// is newer than the field's register; otherwise the register's value.
    pub fn field_value(&self, field: &FieldName) -> Option<Value> {
        if self.is_map_field(field) {
            let map: Map<String, Value> = self
                .entries(field)
                .into_iter()
                .filter_map(|(k, v)| v.value.as_ref().map(|val| (k.to_string(), val.to_value())))
                .collect();
            Some(Value::Object(map))
        } else {
            self.slots
                .get(&Slot::Field(field.clone()))
                .and_then(|r| r.value.as_ref())
                .map(CanonicalJson::to_value)
        }
    }

    /// Whether the field currently shows as a map (its entries win over its register).
    pub fn is_map_field(&self, field: &FieldName) -> bool {
        let register = self.slots.get(&Slot::Field(field.clone()));
        let newest_entry = self.entries(field).iter().map(|(_, v)| v.clock).max();
        match (newest_entry, register) {
            (Some(entry), Some(reg)) => entry > reg.clock,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The entry slots of a map field, live and tombstoned, by key.
    pub fn entries(&self, field: &FieldName) -> Vec<(&str, &SlotVersion)> {
        let start = Slot::Entry(field.clone(), String::new());
        self.slots
            .from(&start)
            .map_while(|(slot, v)| match slot {
                Slot::Entry(f, key) if f == field => Some((key.as_str(), v)),
                _ => None,
            })
            .collect()
    }

    /// The names of all fields with any slot (register or entries).
    pub fn field_names(&self) -> Vec<&FieldName> {
        let mut names: Vec<&FieldName> = self
            .slots
            .iter()
            .filter_map(|(s, _)| match s {
                Slot::Life => None,
                Slot::Field(f) | Slot::Entry(f, _) => Some(f),
            })
            .collect();
        // Register slots sort before entry slots, so equal names need not be adjacent.
        names.sort();
        names.dedup();
        names
    }

    /// The record as a JSON object, or `None` if it is deleted or absent.
    pub fn render(&self) -> Option<Map<String, Value>> {
        if !self.is_alive() {
            return None;
        }
        let mut out = Map::new();
        for field in self.field_names() {
            if let Some(value) = self.field_value(field) {
                out.insert(field.to_string(), value);
            }
        }
        Some(out)
    }

    /// The record as canonical JSON text (identical to encoding [`render`](Self::render)),
    /// written straight from the stored canonical values without re-parsing them.
    pub fn render_json(&self) -> Option<String> {
        if !self.is_alive() {
            return None;
        }
        if !self.slots.iter().any(|(s, _)| matches!(s, Slot::Entry(..))) {
            return Some(self.render_registers());
        }
        let mut out = String::from("{");
        let mut first = true;
        for field in self.field_names() {
            let start = out.len();
            if !first {
                out.push(',');
            }
            push_key(&mut out, field.as_str());
            let written = if self.is_map_field(field) {
                out.push('{');
                let mut first_entry = true;
                for (key, entry) in self.entries(field) {
                    if let Some(value) = &entry.value {
                        if !first_entry {
                            out.push(',');
                        }
                        push_key(&mut out, key);
                        out.push_str(value.as_str());
                        first_entry = false;
                    }
                }
                out.push('}');
                true
            } else {
                match self
                    .slots
                    .get(&Slot::Field(field.clone()))
                    .and_then(|r| r.value.as_ref())
                {
                    Some(value) => {
                        out.push_str(value.as_str());
                        true
                    }
                    None => false,
                }
            };
            if written {
                first = false;
            } else {
                out.truncate(start);
            }
        }
        out.push('}');
        Some(out)
    }
}

impl RecordState {
    /// [`render_json`](Self::render_json) of a record without map entries:
    /// every field is its register, and the slots are already in field-name
    /// order (`Slot` orders `Life`, then `Field`s by name), so one pass
    /// writes them.
    fn render_registers(&self) -> String {
        let size: usize = self
            .slots
            .iter()
            .map(|(slot, v)| match (slot, &v.value) {
                (Slot::Field(f), Some(value)) => f.as_str().len() + value.as_str().len() + 4,
                _ => 0,
            })
            .sum();
        let mut out = String::with_capacity(size + 2);
        out.push('{');
        for (slot, version) in self.slots.iter() {
            if let (Slot::Field(field), Some(value)) = (slot, &version.value) {
                if out.len() > 1 {
                    out.push(',');
                }
                push_key(&mut out, field.as_str());
                out.push_str(value.as_str());
            }
        }
        out.push('}');
        out
    }
}

/// Appends `"key":` with JSON string escaping (serde_json's: only `"`, `\\`
/// and control characters are escaped, so a key without them is copied).
fn push_key(out: &mut String, key: &str) {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        out.push_str(&Value::String(key.to_string()).to_string());
    }
    out.push(':');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Hlc;
    use crate::ids::SiteId;

    fn clock(t: u64, site: u64) -> Clock {
        Clock {
            hlc: Hlc::new(t, 0),
            site: SiteId(site),
        }
    }
    fn field(name: &str) -> Slot {
        Slot::Field(FieldName::new(name).unwrap())
    }
    fn set(v: &str, t: u64, life: u64) -> SlotVersion {
        SlotVersion {
            value: Some(CanonicalJson::parse(v, 1000).unwrap()),
            clock: clock(t, 1),
            life: Life(life),
            pred: None,
        }
    }
    fn life(t: u64, l: u64) -> SlotVersion {
        SlotVersion {
            value: None,
            clock: clock(t, 1),
            life: Life(l),
            pred: None,
        }
    }

    #[test]
    fn equal_clock_is_a_no_op() {
        let mut r = RecordState::new();
        assert_eq!(r.apply(field("a"), set("1", 5, 1)), Verdict::Applied);
        assert_eq!(r.apply(field("a"), set("1", 5, 1)), Verdict::NotNewer);
        assert_eq!(r.apply(field("a"), set("2", 4, 1)), Verdict::NotNewer);
    }

    #[test]
    fn stale_edit_after_delete_does_not_resurrect() {
        let mut r = RecordState::new();
        r.apply(Slot::Life, life(1, 1));
        r.apply(field("a"), set("1", 1, 1));
        r.apply(Slot::Life, life(2, 2));
        assert_eq!(r.apply(field("a"), set("9", 99, 1)), Verdict::StaleLife);
        assert_eq!(r.render(), None);
        // re-create wins over the delete and shows no stale fields
        r.apply(Slot::Life, life(3, 3));
        r.apply(field("b"), set("2", 3, 3));
        assert_eq!(r.render().unwrap().len(), 1);
    }

    #[test]
    fn render_json_matches_render() {
        let mut r = RecordState::new();
        r.apply(Slot::Life, life(1, 1));
        r.apply(field("b"), set("{\"z\":1,\"a\":[true]}", 2, 1));
        r.apply(field("a\"q"), set("\"x\"", 3, 1));
        r.apply(
            field("gone"),
            SlotVersion {
                value: None,
                clock: clock(4, 1),
                life: Life(1),
                pred: None,
            },
        );
        let tags = FieldName::new("tags").unwrap();
        r.apply(Slot::Entry(tags.clone(), "k\n".into()), set("1", 5, 1));
        r.apply(
            Slot::Entry(tags.clone(), "dead".into()),
            SlotVersion {
                value: None,
                clock: clock(6, 1),
                life: Life(1),
                pred: None,
            },
        );
        let expected = Value::Object(r.render().unwrap()).to_string();
        assert_eq!(r.render_json().unwrap(), expected);
        // Without map entries (the one-pass path), escaped keys and tombstones included.
        let mut plain = RecordState::new();
        plain.apply(Slot::Life, life(1, 1));
        plain.apply(field("b"), set("[1,2]", 2, 1));
        plain.apply(field("a\"q\\"), set("\"x\"", 3, 1));
        plain.apply(
            field("gone"),
            SlotVersion {
                value: None,
                clock: clock(4, 1),
                life: Life(1),
                pred: None,
            },
        );
        plain.apply(field("é"), set("null", 5, 1));
        let expected = Value::Object(plain.render().unwrap()).to_string();
        assert_eq!(plain.render_json().unwrap(), expected);
        let mut empty = RecordState::new();
        empty.apply(Slot::Life, life(1, 1));
        assert_eq!(empty.render_json().unwrap(), "{}");
        r.apply(Slot::Life, life(7, 2));
        assert_eq!(r.render_json(), None);
    }

    #[test]
    fn map_entries_win_over_older_register() {
        let mut r = RecordState::new();
        r.apply(Slot::Life, life(1, 1));
        let tags = FieldName::new("tags").unwrap();
        r.apply(Slot::Entry(tags.clone(), "red".into()), set("true", 2, 1));
        r.apply(Slot::Entry(tags.clone(), "blue".into()), set("true", 3, 1));
        assert_eq!(
            r.field_value(&tags).unwrap(),
            serde_json::json!({"red": true, "blue": true})
        );
        r.apply(Slot::Field(tags.clone()), set("\"plain\"", 4, 1));
        assert_eq!(r.field_value(&tags).unwrap(), serde_json::json!("plain"));
    }
}
