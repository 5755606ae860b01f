//! The record-grouped encoding of a message's changes
//! ([`super::version::Feature::GroupedChanges`]): what follows a message's
//! body, in place of its changes, when both peers offer the feature.
//!
//! The protocol-2 layout repeats a change's collection, record id, log
//! position and full clocks for every slot it carries. Here the changes are
//! cut into runs of consecutive changes of one record at one position (a
//! *group*, in the order they came); a group names its collection by an
//! index into the message's table of collections, its id once and its
//! position as a difference from the previous group's; each slot names its
//! field by an index into the message's table of field names, and its clock
//! as "the same as the slot before" or a difference from it (writer by an
//! index into the table of sites); its `pred` is a difference from its own
//! clock. Differences wrap (two's complement), so every change round-trips
//! exactly, whatever its numbers.
//!
//! Decoding checks every index against its table and refuses anything else
//! (a clear [`FrameError::Garbage`]); the values, names and ids are checked
//! by their own types as in every other layout. This module owns only this
//! encoding; which layout a session uses is `layout.rs`'s.

use super::frame_error::FrameError;
use crate::change::{Change, LogPosition, Slot};
use crate::clock::{Clock, Hlc, Life};
use crate::ids::{CollectionName, FieldName, RecordId, SiteId};
use crate::value::CanonicalJson;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A clock on the wire, relative to the one before it in the message.
#[derive(Serialize, Deserialize)]
enum WireClock {
    /// The same clock as the previous slot's (or the zero clock, first).
    Same,
    /// Another clock: its HLC as a wrapping difference from the previous
    /// slot's, its writer as an index into the sites.
    Other { hlc: i64, site: u32 },
}

/// A slot on the wire, its field named by an index into the field names.
#[derive(Serialize, Deserialize)]
enum WireSlot<S> {
    Life,
    Field(u32),
    Entry(u32, S),
}

/// One slot version of a group, borrowed for encoding.
#[derive(Serialize)]
struct SlotOut<'a> {
    slot: WireSlot<&'a str>,
    value: Option<&'a str>,
    clock: WireClock,
    life: u64,
    /// `pred` as (a wrapping HLC difference from this slot's clock, site index).
    pred: Option<(i64, u32)>,
}

/// One slot version of a group, as decoded.
#[derive(Deserialize)]
struct SlotIn {
    slot: WireSlot<String>,
    value: Option<CanonicalJson>,
    clock: WireClock,
    life: u64,
    pred: Option<(i64, u32)>,
}

/// A run of changes of one record at one position, borrowed for encoding.
#[derive(Serialize)]
struct GroupOut<'a> {
    collection: u32,
    id: &'a str,
    /// (wrapping difference of the version from the previous group's, seq).
    position: (i64, u32),
    slots: Vec<SlotOut<'a>>,
}

/// A run of changes of one record at one position, as decoded.
#[derive(Deserialize)]
struct GroupIn {
    collection: u32,
    id: RecordId,
    position: (i64, u32),
    slots: Vec<SlotIn>,
}

/// The whole encoding, borrowed for encoding.
#[derive(Serialize)]
struct GroupedOut<'a> {
    collections: Vec<&'a str>,
    fields: Vec<&'a str>,
    sites: Vec<u64>,
    groups: Vec<GroupOut<'a>>,
}

/// The whole encoding, as decoded.
#[derive(Deserialize)]
struct GroupedIn {
    collections: Vec<CollectionName>,
    fields: Vec<FieldName>,
    sites: Vec<u64>,
    groups: Vec<GroupIn>,
}

/// A table of distinct values by first appearance, handing out indices.
struct Table<K> {
    index: HashMap<K, u32>,
    order: Vec<K>,
}

impl<K: std::hash::Hash + Eq + Copy> Table<K> {
    fn new() -> Self {
        Table {
            index: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn of(&mut self, key: K) -> u32 {
        *self.index.entry(key).or_insert_with(|| {
            self.order.push(key);
            (self.order.len() - 1) as u32
        })
    }
}

fn delta(now: u64, before: u64) -> i64 {
    now.wrapping_sub(before) as i64
}

fn undelta(delta: i64, before: u64) -> u64 {
    before.wrapping_add(delta as u64)
}

/// Appends the grouped encoding of `changes` to `out`.
pub(super) fn encode(changes: &[Change], out: &mut Vec<u8>) {
    let mut collections = Table::new();
    let mut fields = Table::new();
    let mut sites = Table::new();
    let mut groups: Vec<GroupOut<'_>> = Vec::new();
    let mut last: Option<(&CollectionName, &RecordId, LogPosition)> = None;
    let mut previous_version = 0u64;
    let mut previous_clock = Clock {
        hlc: Hlc::from_packed(0),
        site: SiteId(0),
    };
    let mut first = true;
    for change in changes {
        let key = (&change.collection, &change.id, change.position);
        if last != Some(key) {
            last = Some(key);
            groups.push(GroupOut {
                collection: collections.of(change.collection.as_str()),
                id: change.id.as_str(),
                position: (
                    delta(change.position.version.0, previous_version),
                    change.position.seq,
                ),
                slots: Vec::new(),
            });
            previous_version = change.position.version.0;
        }
        let slot = match &change.slot {
            Slot::Life => WireSlot::Life,
            Slot::Field(f) => WireSlot::Field(fields.of(f.as_str())),
            Slot::Entry(f, key) => WireSlot::Entry(fields.of(f.as_str()), key.as_str()),
        };
        let clock = if change.clock == previous_clock && !first {
            WireClock::Same
        } else {
            WireClock::Other {
                hlc: delta(change.clock.hlc.packed(), previous_clock.hlc.packed()),
                site: sites.of(change.clock.site.0),
            }
        };
        previous_clock = change.clock;
        first = false;
        let pred = change.pred.map(|p| {
            (
                delta(p.hlc.packed(), change.clock.hlc.packed()),
                sites.of(p.site.0),
            )
        });
        if let Some(group) = groups.last_mut() {
            group.slots.push(SlotOut {
                slot,
                value: change.value.as_ref().map(CanonicalJson::as_str),
                clock,
                life: change.life.0,
                pred,
            });
        }
    }
    let grouped = GroupedOut {
        collections: collections.order,
        fields: fields.order,
        sites: sites.order,
        groups,
    };
    // Encoding plain data into a Vec cannot fail.
    if let Ok(bytes) = postcard::to_extend(&grouped, std::mem::take(out)) {
        *out = bytes;
    }
}

/// Decodes the grouped changes at the start of `bytes`: the changes and the
/// bytes after them. Errors: unreadable bytes, or an index past its table.
pub(super) fn decode(bytes: &[u8]) -> Result<(Vec<Change>, &[u8]), FrameError> {
    let garbage = |why: String| FrameError::Garbage(format!("grouped changes {why}"));
    let (grouped, rest) = postcard::take_from_bytes::<GroupedIn>(bytes)
        .map_err(|e| garbage(format!("unreadable: {e}")))?;
    let GroupedIn {
        collections,
        fields,
        sites,
        groups,
    } = grouped;
    let pick = |table: &str, len: usize, i: u32| -> Result<usize, FrameError> {
        let i = i as usize;
        if i < len {
            Ok(i)
        } else {
            Err(garbage(format!("name {table} {i} of {len}")))
        }
    };
    let site = |i: u32| pick("site", sites.len(), i).map(|i| SiteId(sites[i]));
    let mut changes = Vec::with_capacity(groups.iter().map(|g| g.slots.len()).sum());
    let mut previous_version = 0u64;
    let mut previous_clock = Clock {
        hlc: Hlc::from_packed(0),
        site: SiteId(0),
    };
    let mut first = true;
    for group in groups {
        let collection = &collections[pick("collection", collections.len(), group.collection)?];
        let version = undelta(group.position.0, previous_version);
        previous_version = version;
        let position = LogPosition {
            version: crate::change::DbVersion(version),
            seq: group.position.1,
        };
        if group.slots.is_empty() {
            return Err(garbage("carry a record without changes".into()));
        }
        for wire in group.slots {
            let slot = match wire.slot {
                WireSlot::Life => Slot::Life,
                WireSlot::Field(f) => Slot::Field(fields[pick("field", fields.len(), f)?].clone()),
                WireSlot::Entry(f, key) => {
                    Slot::Entry(fields[pick("field", fields.len(), f)?].clone(), key)
                }
            };
            let clock = match wire.clock {
                WireClock::Same if first => {
                    return Err(garbage("repeat a clock before the first".into()));
                }
                WireClock::Same => previous_clock,
                WireClock::Other { hlc, site: s } => Clock {
                    hlc: Hlc::from_packed(undelta(hlc, previous_clock.hlc.packed())),
                    site: site(s)?,
                },
            };
            first = false;
            previous_clock = clock;
            let pred = match wire.pred {
                None => None,
                Some((hlc, s)) => Some(Clock {
                    hlc: Hlc::from_packed(undelta(hlc, clock.hlc.packed())),
                    site: site(s)?,
                }),
            };
            changes.push(Change {
                collection: collection.clone(),
                id: group.id.clone(),
                slot,
                value: wire.value,
                clock,
                life: Life(wire.life),
                position,
                pred,
            });
        }
    }
    Ok((changes, rest))
}
