//! Property tests of conflict detection (`shoal_core::conflict`, docs/merge.md
//! "Conflicts") against the ground truth of causality.
//!
//! Three sites hold one record (a field `f` and a map field `m` with keys
//! `x`, `y`). Random steps: a site writes a value (through `plan`, as a
//! local write does, with a Lamport clock), or a site merges another site's
//! whole state (`apply_noting`, as a catch-up does). Beside it the test keeps
//! each site's causal history — every version it wrote or received, and
//! everything the sender had seen — and each version's history when it was
//! written. Checked:
//!
//! - soundness: every reported conflict's lost version was *not* in the
//!   kept version's history (a sequential edit is never reported), its kept
//!   version is the one stored after the merge, and the two values differ;
//! - completeness where both met: when a merge replaces a site's stored
//!   version by one whose writer had not seen it, or an incoming version
//!   that its stored version's writer had not seen loses, the merge reports
//!   exactly that pair;
//! - reporting changes nothing: `apply_noting` leaves the same state as `apply`.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, json};
use shoal_core::{Clock, FieldName, Hlc, Intent, RecordState, SiteId, Slot, SlotVersion, plan};
use std::collections::{BTreeMap, BTreeSet};

const SITES: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    /// Site writes `value` to `f` (slot 0) or to `m[x]`/`m[y]` (slots 1, 2).
    Write { site: usize, slot: u8, value: u8 },
    /// `to` merges `from`'s whole state.
    Sync { from: usize, to: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..SITES, 0u8..3, 0u8..3).prop_map(|(site, slot, value)| Step::Write {
            site,
            slot,
            value
        }),
        (0..SITES, 0..SITES)
            .prop_filter("two sites", |(a, b)| a != b)
            .prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

fn intent(slot: u8, value: u8) -> Intent {
    match slot {
        0 => {
            let mut body = Map::new();
            body.insert("f".into(), json!(value));
            Intent::Patch(body)
        }
        key => Intent::MapSet {
            field: FieldName::new("m").unwrap(),
            key: if key == 1 { "x" } else { "y" }.into(),
            value: json!(value),
        },
    }
}

struct World {
    states: Vec<RecordState>,
    /// Every version (by clock) each site wrote or causally received.
    seen: Vec<BTreeSet<Clock>>,
    /// Each version's writer's history when it was written.
    past: BTreeMap<Clock, BTreeSet<Clock>>,
    tick: u64,
    /// Conflicts reported so far.
    reported: usize,
}

impl World {
    /// Every site holds the record as created by site 0.
    fn new() -> Self {
        let mut world = World {
            states: vec![RecordState::new(); SITES],
            seen: vec![BTreeSet::new(); SITES],
            past: BTreeMap::new(),
            tick: 0,
            reported: 0,
        };
        let mut body = Map::new();
        body.insert("f".into(), json!("base"));
        world.write(0, Intent::Put(body));
        for to in 1..SITES {
            world.sync(0, to);
        }
        world
    }

    fn write(&mut self, site: usize, intent: Intent) {
        self.tick += 1;
        let clock = Clock {
            hlc: Hlc::new(self.tick, 0),
            site: SiteId(site as u64 + 1),
        };
        let planned = plan(&self.states[site], &intent, clock).unwrap();
        self.past.insert(clock, self.seen[site].clone());
        self.seen[site].insert(clock);
        for (slot, version) in planned {
            let (_, conflict) = self.states[site].apply_noting(slot, version);
            assert_eq!(conflict, None, "a local write is never a conflict");
        }
    }

    fn sync(&mut self, from: usize, to: usize) {
        let incoming: Vec<(Slot, SlotVersion)> = self.states[from]
            .slots()
            .map(|(s, v)| (s.clone(), v.clone()))
            .collect();
        let mut plain = self.states[to].clone();
        for (slot, version) in incoming {
            let stored = self.states[to].slot(&slot).cloned();
            let (_, conflict) = self.states[to].apply_noting(slot.clone(), version.clone());
            plain.apply(slot.clone(), version.clone());
            let expected = stored.as_ref().and_then(|stored| {
                if matches!(slot, Slot::Life)
                    || stored.life != version.life
                    || stored.clock == version.clock
                    || stored.value == version.value
                {
                    return None;
                }
                let (lo, hi) = if stored.clock < version.clock {
                    (stored, &version)
                } else {
                    (&version, stored)
                };
                let hi_saw_lo = self.past[&hi.clock].contains(&lo.clock);
                // Where both met, an unseen value lost: reported — unless
                // the writer of `hi` had seen a newer value than `lo`, which
                // is then a conflict settled where that one met `lo`.
                let settled_elsewhere = hi.pred.is_some_and(|p| p >= lo.clock);
                (!hi_saw_lo && !settled_elsewhere).then(|| (hi.clone(), lo.clone()))
            });
            if let Some(c) = &conflict {
                self.reported += 1;
                assert!(
                    !self.past[&c.kept.clock].contains(&c.lost.clock),
                    "a sequential edit reported as a conflict: {c:?}"
                );
                assert_ne!(c.kept.value, c.lost.value);
                assert_eq!(self.states[to].slot(&slot), Some(&c.kept));
            }
            assert_eq!(
                conflict.map(|c| (c.kept, c.lost)),
                expected,
                "merge of {slot:?} at site {to}"
            );
        }
        assert_eq!(self.states[to], plain, "reporting changes nothing");
        let from_seen = self.seen[from].clone();
        self.seen[to].extend(from_seen);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/conflict_laws.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn conflicts_are_exactly_the_unseen_overwrites(steps in prop::collection::vec(step(), 1..40)) {
        let mut world = World::new();
        for step in steps {
            match step {
                Step::Write { site, slot, value } => world.write(site, intent(slot, value)),
                Step::Sync { from, to } => world.sync(from, to),
            }
        }
    }

    /// With every write made after merging every other site (no concurrency
    /// at all), nothing is ever reported.
    #[test]
    fn sequential_histories_report_nothing(writes in prop::collection::vec((0..SITES, 0u8..3, 0u8..3), 1..20)) {
        let mut world = World::new();
        for (site, slot, value) in writes {
            for from in (0..SITES).filter(|&f| f != site) {
                world.sync(from, site);
            }
            world.write(site, intent(slot, value));
        }
        for to in 0..SITES {
            for from in (0..SITES).filter(|&f| f != to) {
                world.sync(from, to);
            }
        }
        prop_assert_eq!(world.reported, 0);
    }
}

/// Two sites that wrote apart and then exchange their states (each read
/// before either merges, as two catch-ups do) both report the pair.
#[test]
fn two_sites_that_wrote_apart_both_report_it() {
    let mut pair = World::new();
    pair.write(1, intent(0, 1));
    pair.write(2, intent(0, 2));
    let unmerged_two = pair.states[2].clone();
    pair.sync(1, 2);
    let merged_two = std::mem::replace(&mut pair.states[2], unmerged_two);
    pair.sync(2, 1);
    pair.states[2] = merged_two;
    assert_eq!(pair.reported, 2);
    assert_eq!(pair.states[1], pair.states[2]);
}
