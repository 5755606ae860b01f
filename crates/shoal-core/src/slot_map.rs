//! [`SlotMap`]: the slot versions of one record, in slot order — a sorted
//! vector while the record has few slots, a B-tree once it has many.
//!
//! Most records have a handful of slots (their life and a few fields), and a
//! record's state is built and dropped for every write. A `BTreeMap`'s first
//! leaf holds eleven slots: about 1.25 KB, above glibc's per-thread cache
//! (1,032 bytes), so each state paid the allocator's slow path to make and
//! free it — about a tenth of a `put_many`'s instructions (callgrind). A
//! vector of a few slots is a small allocation. Past [`SMALL`] slots the
//! map moves to a `BTreeMap`, so a record of many slots (a large map
//! field) never pays a vector's linear insert for each slot merged out of
//! order.
//!
//! This module owns only the container; the merge rules (which version
//! wins, what a life purges) are `merge.rs`'s.

use crate::change::Slot;
use crate::slot_version::SlotVersion;
use std::collections::BTreeMap;
use std::collections::btree_map;

/// Slots a record keeps in a sorted vector; one more moves them to a B-tree.
pub(crate) const SMALL: usize = 32;

/// The slot versions of one record, sorted by slot, each slot at most once.
/// Two maps holding the same slots are equal whichever variant each is.
#[derive(Debug, Clone)]
pub(crate) enum SlotMap {
    /// Few slots, sorted by slot.
    Small(Vec<(Slot, SlotVersion)>),
    /// Once it has held more than [`SMALL`] slots (a purge of older
    /// lives may leave fewer; it stays a B-tree).
    Large(BTreeMap<Slot, SlotVersion>),
}

impl Default for SlotMap {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

impl PartialEq for SlotMap {
    /// Equal when they hold the same slots, however each keeps them.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for SlotMap {}

impl SlotMap {
    /// How many slots it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Small(slots) => slots.len(),
            Self::Large(slots) => slots.len(),
        }
    }

    /// The version stored for `slot`.
    pub(crate) fn get(&self, slot: &Slot) -> Option<&SlotVersion> {
        match self {
            Self::Small(slots) => slots
                .binary_search_by(|(s, _)| s.cmp(slot))
                .ok()
                .map(|at| &slots[at].1),
            Self::Large(slots) => slots.get(slot),
        }
    }

    /// Stores `version` for `slot` unless a version is stored there that
    /// `keeps` says stays; says whether it stored it.
    pub(crate) fn put_unless(
        &mut self,
        slot: Slot,
        version: SlotVersion,
        keeps: impl FnOnce(&SlotVersion, &SlotVersion) -> bool,
    ) -> bool {
        match self {
            Self::Small(slots) => {
                // Slots usually arrive in order (a stored state loads so, a
                // write's fields come sorted): the end is checked first.
                let at = match slots.last() {
                    Some((last, _)) if *last < slot => Err(slots.len()),
                    None => Err(0),
                    Some(_) => slots.binary_search_by(|(s, _)| s.cmp(&slot)),
                };
                match at {
                    Ok(at) if keeps(&slots[at].1, &version) => false,
                    Ok(at) => {
                        slots[at].1 = version;
                        true
                    }
                    Err(at) => {
                        slots.insert(at, (slot, version));
                        if slots.len() > SMALL {
                            *self = Self::Large(std::mem::take(slots).into_iter().collect());
                        }
                        true
                    }
                }
            }
            Self::Large(slots) => match slots.entry(slot) {
                btree_map::Entry::Occupied(current) if keeps(current.get(), &version) => false,
                btree_map::Entry::Occupied(mut current) => {
                    current.insert(version);
                    true
                }
                btree_map::Entry::Vacant(vacant) => {
                    vacant.insert(version);
                    true
                }
            },
        }
    }

    /// Keeps only the slots `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Slot, &SlotVersion) -> bool) {
        match self {
            Self::Small(slots) => slots.retain(|(s, v)| keep(s, v)),
            Self::Large(slots) => slots.retain(|s, v| keep(s, v)),
        }
    }

    /// Every slot, in slot order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        match self {
            Self::Small(slots) => Iter::Small(slots.iter()),
            Self::Large(slots) => Iter::Large(slots.range(..)),
        }
    }

    /// The slots from `start` on, in slot order.
    pub(crate) fn from(&self, start: &Slot) -> Iter<'_> {
        match self {
            Self::Small(slots) => {
                let at = slots.partition_point(|(s, _)| s < start);
                Iter::Small(slots[at..].iter())
            }
            Self::Large(slots) => Iter::Large(slots.range(start..)),
        }
    }
}

/// The slots of a [`SlotMap`], in slot order.
pub(crate) enum Iter<'a> {
    Small(std::slice::Iter<'a, (Slot, SlotVersion)>),
    Large(btree_map::Range<'a, Slot, SlotVersion>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Slot, &'a SlotVersion);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Small(slots) => slots.next().map(|(s, v)| (s, v)),
            Self::Large(slots) => slots.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, Hlc, Life};
    use crate::ids::{FieldName, SiteId};
    use proptest::prelude::*;

    fn version(t: u64) -> SlotVersion {
        SlotVersion {
            value: None,
            clock: Clock {
                hlc: Hlc::new(t, 0),
                site: SiteId(1),
            },
            life: Life(1),
            pred: None,
        }
    }

    fn slot(kind: u8, name: u8, key: u8) -> Slot {
        let field = FieldName::new(format!("f{name}")).unwrap();
        match kind % 3 {
            0 => Slot::Life,
            1 => Slot::Field(field),
            _ => Slot::Entry(field, format!("k{key}")),
        }
    }

    proptest! {
        /// Whatever the order and however many slots, it holds what a
        /// `BTreeMap` given the same puts holds, and reads the same.
        #[test]
        fn behaves_as_a_btree_map(
            puts in prop::collection::vec((any::<u8>(), 0u8..8, 0u8..40, 0u64..5), 0..120),
            cut in 0u64..5,
        ) {
            let mut map = SlotMap::default();
            let mut model = BTreeMap::new();
            for (kind, name, key, t) in puts {
                let s = slot(kind, name, key);
                let keeps = |current: &SlotVersion, new: &SlotVersion| new.clock <= current.clock;
                let want = model.get(&s).is_none_or(|current| !keeps(current, &version(t)));
                if want {
                    model.insert(s.clone(), version(t));
                }
                prop_assert_eq!(map.put_unless(s, version(t), keeps), want);
                prop_assert_eq!(map.len(), model.len());
            }
            prop_assert!(map.iter().eq(model.iter()));
            let start = slot(2, 3, 20);
            prop_assert!(map.from(&start).eq(model.range(start.clone()..)));
            for s in model.keys() {
                prop_assert_eq!(map.get(s), model.get(s));
            }
            prop_assert_eq!(map.get(&slot(2, 9, 0)), None);
            // Nothing was removed yet, so its size now is the most it held.
            prop_assert_eq!(matches!(map, SlotMap::Large(_)), model.len() > SMALL);
            map.retain(|_, v| v.clock.hlc >= Hlc::new(cut, 0));
            model.retain(|_, v| v.clock.hlc >= Hlc::new(cut, 0));
            prop_assert!(map.iter().eq(model.iter()));
            let rebuilt = SlotMap::Small(model.into_iter().collect());
            prop_assert_eq!(&map, &rebuilt);
        }
    }

    #[test]
    fn moves_to_a_btree_past_small_and_keeps_order() {
        let mut map = SlotMap::default();
        for i in (0..=SMALL as u8).rev() {
            assert!(matches!(map, SlotMap::Small(_)), "small up to {SMALL}");
            map.put_unless(slot(1, i, 0), version(1), |_, _| true);
        }
        assert!(matches!(map, SlotMap::Large(_)));
        assert_eq!(map.len(), SMALL + 1);
        let names: Vec<_> = map.iter().map(|(s, _)| s.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
