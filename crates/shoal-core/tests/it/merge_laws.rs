//! Property tests for the merge laws of [`RecordState`] (DESIGN.md §1, docs/merge.md).
//!
//! The state a replica holds for one record must be a function of the *set* of
//! slot versions it has received: the same set in any order, in any grouping
//! (merged state by state) and with any duplication gives the same state, with
//! the same clocks. The checks here:
//!
//! - the state equals an independent model of that function (the greatest
//!   life seen; the greatest `Life` version; for every other slot, the greatest
//!   version among those written in the greatest life);
//! - commutative: any permutation of the versions gives the same state;
//! - associative: applying `A` then `B` equals applying `A ∪ B`, and merging
//!   states slot by slot (`merge(merge(a, b), c) == merge(a, merge(b, c))`,
//!   `merge(a, b) == merge(b, a)`) equals applying the union of their versions —
//!   versions a state purged never matter, because each was dominated by a
//!   version the state still holds;
//! - idempotent: re-applying any received version, or merging a state into
//!   itself, changes nothing; `Verdict::Applied` is returned exactly when the
//!   state changed; reloading a state from its own slots gives it back;
//! - no resurrection: a field version from an older life never shows in
//!   `render()`, a record whose greatest life is even renders `None`, a delete
//!   beats any edit of its life and a re-create beats the delete.
//!
//! Versions are generated over a small space (3 sites, a few HLC readings,
//! lives 1..=5, two fields and two map keys) so equal clocks and ties are
//! common. The value of a version is derived from `(slot, clock, life)`: two
//! *different* versions with the same slot, clock and life cannot exist in
//! reality (a clock is unique per writer per write), so the generator never
//! makes them.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};
use shoal_core::{
    CanonicalJson, Clock, FieldName, Hlc, Life, RecordState, SiteId, Slot, SlotVersion, Verdict,
};
use std::collections::BTreeMap;

const FIELDS: [&str; 2] = ["a", "tags"];
const KEYS: [&str; 2] = ["x", "y"];

type Version = (Slot, SlotVersion);

fn field(i: usize) -> FieldName {
    FieldName::new(FIELDS[i]).unwrap()
}

/// The one value a writer could have given `slot` at `clock` in `life`.
fn derived_value(slot: &Slot, clock: Clock, life: Life) -> Option<CanonicalJson> {
    let slot_code = match slot {
        Slot::Life => return None,
        Slot::Field(f) => u64::from(f.as_str().as_bytes()[0]),
        Slot::Entry(f, k) => u64::from(f.as_str().as_bytes()[0]) * 7 + u64::from(k.as_bytes()[0]),
    };
    let mix = slot_code
        .wrapping_mul(31)
        .wrapping_add(clock.hlc.packed().wrapping_mul(17))
        .wrapping_add(clock.site.0.wrapping_mul(13))
        .wrapping_add(life.0.wrapping_mul(7));
    let value = match mix % 6 {
        0 => return None, // tombstone
        1 => json!(mix),
        2 => json!(format!("s{mix}")),
        3 => json!(mix % 2 == 0),
        4 => json!({"n": mix, "w": clock.hlc.wall_ms()}),
        _ => json!([clock.site.0, life.0]),
    };
    Some(CanonicalJson::from_value(&value))
}

fn slot_strategy() -> impl Strategy<Value = Slot> {
    prop_oneof![
        1 => Just(Slot::Life),
        2 => (0..FIELDS.len()).prop_map(|f| Slot::Field(field(f))),
        2 => (0..FIELDS.len(), 0..KEYS.len())
            .prop_map(|(f, k)| Slot::Entry(field(f), KEYS[k].to_string())),
    ]
}

fn clock_strategy() -> impl Strategy<Value = Clock> {
    (1u64..=3, 0u16..=1, 1u64..=3).prop_map(|(wall, counter, site)| Clock {
        hlc: Hlc::new(wall, counter),
        site: SiteId(site),
    })
}

/// One valid slot version: a `Life` version in any life 1..=5 without a value;
/// a field or entry version only in an odd (alive) life.
fn version_strategy() -> impl Strategy<Value = Version> {
    (slot_strategy(), clock_strategy(), 0u64..5).prop_map(|(slot, clock, l)| {
        let life = match slot {
            Slot::Life => Life(l + 1),
            _ => Life([1, 3, 5][(l % 3) as usize]),
        };
        let value = derived_value(&slot, clock, life);
        (
            slot,
            SlotVersion {
                value,
                clock,
                life,
                pred: None,
            },
        )
    })
}

fn versions(max: usize) -> impl Strategy<Value = Vec<Version>> {
    prop::collection::vec(version_strategy(), 0..max)
}

fn state_of<'a>(versions: impl IntoIterator<Item = &'a Version>) -> RecordState {
    let mut state = RecordState::new();
    for (slot, version) in versions {
        state.apply(slot.clone(), version.clone());
    }
    state
}

/// Merges `from` into `into` the way a replica would with a peer's full state:
/// by applying each stored slot version.
fn merge_into(into: &mut RecordState, from: &RecordState) {
    for (slot, version) in from.slots() {
        into.apply(slot.clone(), version.clone());
    }
}

fn merged(a: &RecordState, b: &RecordState) -> RecordState {
    let mut out = a.clone();
    merge_into(&mut out, b);
    out
}

fn rank(v: &SlotVersion) -> (Life, Clock) {
    (v.life, v.clock)
}

/// The model: what the state after receiving `set` must hold, computed
/// directly from the set rather than by folding `apply`.
fn model(set: &[Version]) -> (Life, BTreeMap<Slot, SlotVersion>) {
    let life = set.iter().map(|(_, v)| v.life).max().unwrap_or_default();
    let mut slots: BTreeMap<Slot, SlotVersion> = BTreeMap::new();
    for (slot, version) in set {
        let eligible = matches!(slot, Slot::Life) || version.life == life;
        if !eligible {
            continue;
        }
        let better = match slots.get(slot) {
            Some(current) => rank(version) > rank(current),
            None => true,
        };
        if better {
            slots.insert(slot.clone(), version.clone());
        }
    }
    (life, slots)
}

fn slots_of(state: &RecordState) -> BTreeMap<Slot, SlotVersion> {
    state.slots().map(|(s, v)| (s.clone(), v.clone())).collect()
}

/// The model of what a record renders, from its greatest-life versions only:
/// a field is a map when an entry is newer than its register.
fn model_render(set: &[Version]) -> Option<Map<String, Value>> {
    let (life, slots) = model(set);
    if !life.is_alive() {
        return None;
    }
    let mut out = Map::new();
    for name in FIELDS {
        let f = FieldName::new(name).unwrap();
        let register = slots.get(&Slot::Field(f.clone()));
        let entries: Vec<(&str, &SlotVersion)> = KEYS
            .iter()
            .filter_map(|k| {
                slots
                    .get(&Slot::Entry(f.clone(), k.to_string()))
                    .map(|v| (*k, v))
            })
            .collect();
        let newest_entry = entries.iter().map(|(_, v)| v.clock).max();
        let is_map = match (newest_entry, register) {
            (Some(e), Some(r)) => e > r.clock,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if is_map {
            let map: Map<String, Value> = entries
                .iter()
                .filter_map(|(k, v)| v.value.as_ref().map(|x| (k.to_string(), x.to_value())))
                .collect();
            out.insert(name.to_string(), Value::Object(map));
        } else if let Some(value) = register.and_then(|r| r.value.as_ref()) {
            out.insert(name.to_string(), value.to_value());
        }
    }
    Some(out)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // The default (next to lib.rs) cannot be found from an integration test.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/merge_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The folded state is exactly the model's function of the set.
    #[test]
    fn state_is_the_model_function_of_the_set(set in versions(24)) {
        let state = state_of(&set);
        let (life, slots) = model(&set);
        prop_assert_eq!(state.life(), life);
        prop_assert_eq!(slots_of(&state), slots);
        prop_assert_eq!(state.render(), model_render(&set));
    }

    /// Any permutation of the same versions (duplicates included) gives the same state.
    #[test]
    fn apply_is_commutative(
        (set, shuffled) in versions(24).prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let a = state_of(&set);
        let b = state_of(&shuffled);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.render(), b.render());
        prop_assert_eq!(a.max_clock(), b.max_clock());
    }

    /// Receiving A then B is receiving A ∪ B; merging states slot by slot
    /// groups any way and in any order, and equals receiving the union.
    #[test]
    fn merge_is_associative(a in versions(14), b in versions(14), c in versions(14)) {
        let union_ab: Vec<Version> = a.iter().chain(&b).cloned().collect();
        let union_abc: Vec<Version> = union_ab.iter().chain(&c).cloned().collect();

        // A then B, one version at a time, is the union.
        let mut then = state_of(&a);
        for (slot, version) in &b {
            then.apply(slot.clone(), version.clone());
        }
        prop_assert_eq!(&then, &state_of(&union_ab));

        // Merging whole states: the purged versions of A never matter.
        let (sa, sb, sc) = (state_of(&a), state_of(&b), state_of(&c));
        prop_assert_eq!(&merged(&sa, &sb), &state_of(&union_ab));
        prop_assert_eq!(&merged(&sa, &sb), &merged(&sb, &sa));
        let left = merged(&merged(&sa, &sb), &sc);
        let right = merged(&sa, &merged(&sb, &sc));
        prop_assert_eq!(&left, &right);
        prop_assert_eq!(&left, &state_of(&union_abc));
    }

    /// Re-applying anything already received changes nothing; `Applied` is
    /// returned exactly when the state changes.
    #[test]
    fn apply_is_idempotent(set in versions(24), extra in version_strategy()) {
        let state = state_of(&set);
        for (slot, version) in &set {
            let mut again = state.clone();
            let verdict = again.apply(slot.clone(), version.clone());
            prop_assert_ne!(verdict, Verdict::Applied, "re-applying {:?} {:?}", slot, version);
            prop_assert_eq!(&again, &state);
        }
        prop_assert_eq!(&merged(&state, &state), &state);

        // Applying the whole set twice in a row is applying it once.
        let doubled: Vec<Version> = set.iter().chain(&set).cloned().collect();
        prop_assert_eq!(&state_of(&doubled), &state);

        // The verdict tells the truth, and a second application is a no-op.
        let mut next = state.clone();
        let verdict = next.apply(extra.0.clone(), extra.1.clone());
        prop_assert_eq!(verdict == Verdict::Applied, next != state, "verdict {:?}", verdict);
        let before = next.clone();
        prop_assert_ne!(next.apply(extra.0.clone(), extra.1.clone()), Verdict::Applied);
        prop_assert_eq!(&next, &before);
    }

    /// Reloading a state from its own slots (as the store does), in any
    /// order, gives the same state back.
    #[test]
    fn reload_from_slots_round_trips(
        (set, order) in versions(24).prop_flat_map(|v| {
            let n = state_of(&v).slots().count();
            (Just(v), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        })
    ) {
        let state = state_of(&set);
        let stored: Vec<Version> = state.slots().map(|(s, v)| (s.clone(), v.clone())).collect();
        prop_assert_eq!(&RecordState::from_slots(stored.clone()), &state);
        let shuffled: Vec<Version> = order.iter().map(|&i| stored[i].clone()).collect();
        prop_assert_eq!(&RecordState::from_slots(shuffled), &state);
    }

    /// Nothing from an older life shows: every stored field/entry version is
    /// of the current life, and dropping every older-life field/entry version
    /// from the set changes nothing. A greatest life that is even renders None.
    #[test]
    fn older_lives_never_show(set in versions(24)) {
        let state = state_of(&set);
        let life = state.life();
        for (slot, version) in state.slots() {
            if !matches!(slot, Slot::Life) {
                prop_assert_eq!(version.life, life, "slot {:?} kept from an older life", slot);
            }
        }
        let current_only: Vec<Version> = set
            .iter()
            .filter(|(slot, v)| matches!(slot, Slot::Life) || v.life == life)
            .cloned()
            .collect();
        prop_assert_eq!(&state_of(&current_only), &state);
        prop_assert_eq!(state.render(), state_of(&current_only).render());
        if life.is_alive() {
            prop_assert!(state.render().is_some());
        } else {
            prop_assert_eq!(state.render(), None);
        }
        // A late older-life edit is refused and leaves the state alone.
        if life.0 > 1 {
            let mut late = state.clone();
            let stale_life = if life.0 % 2 == 0 { Life(life.0 - 1) } else { Life(life.0 - 2) };
            let clock = Clock { hlc: Hlc::new(1_000, 0), site: SiteId(9) }; // newer than any generated
            let slot = Slot::Field(field(0));
            let value = derived_value(&slot, clock, stale_life);
            let verdict = late.apply(slot, SlotVersion { value, clock, life: stale_life, pred: None,  });
            prop_assert_eq!(verdict, Verdict::StaleLife);
            prop_assert_eq!(&late, &state);
        }
    }

    /// Delete wins over any edit of its life, whatever the clocks; a re-create
    /// wins over the delete and shows none of the older life's fields; order of
    /// arrival does not matter.
    #[test]
    fn delete_wins_and_recreate_starts_clean(
        set in versions(16),
        delete_clock in clock_strategy(),
        recreate_clock in clock_strategy(),
        new_field in version_strategy(),
    ) {
        let top = set.iter().map(|(_, v)| v.life).max().unwrap_or_default();
        let alive = top.recreated();
        let deleted = alive.deleted();
        let recreated = deleted.recreated();
        let delete = (Slot::Life, SlotVersion { value: None, clock: delete_clock, life: deleted, pred: None,  });

        // Delete, in any position among the set, renders None.
        let mut with_delete = set.clone();
        with_delete.push(delete.clone());
        let state = state_of(&with_delete);
        prop_assert_eq!(state.life(), deleted);
        prop_assert_eq!(state.render(), None);
        prop_assert_eq!(&state, &state_of(with_delete.iter().rev()));

        // Re-create: only versions of the new life show.
        let recreate = (Slot::Life, SlotVersion { value: None, clock: recreate_clock, life: recreated, pred: None,  });
        let (slot, mut version) = new_field;
        if matches!(slot, Slot::Life) {
            return Ok(());
        }
        version.life = recreated;
        version.value = derived_value(&slot, version.clock, recreated);
        let mut all = with_delete.clone();
        all.push(recreate.clone());
        all.push((slot.clone(), version.clone()));
        let state = state_of(&all);
        prop_assert_eq!(state.life(), recreated);
        let rendered = state.render().expect("a re-created record is alive");
        let expected = state_of([&recreate, &(slot, version)]).render().unwrap();
        prop_assert_eq!(&rendered, &expected);
        prop_assert_eq!(&state, &state_of(all.iter().rev()));
    }
}

/// Equal clocks on the same slot are a no-op, not a replacement (the `>=` bug).
#[test]
fn equal_rank_is_a_no_op() {
    let slot = Slot::Field(field(0));
    let clock = Clock {
        hlc: Hlc::new(5, 0),
        site: SiteId(1),
    };
    let v = SlotVersion {
        value: derived_value(&slot, clock, Life(1)),
        clock,
        life: Life(1),
        pred: None,
    };
    let mut state = RecordState::new();
    assert_eq!(state.apply(slot.clone(), v.clone()), Verdict::Applied);
    let before = state.clone();
    assert_eq!(state.apply(slot, v), Verdict::NotNewer);
    assert_eq!(state, before);
}

/// A field version may arrive before the `Life` version of its life (a split
/// transaction); the record is alive at that life either way.
#[test]
fn field_before_its_life_version() {
    let slot = Slot::Field(field(0));
    let clock = Clock {
        hlc: Hlc::new(7, 0),
        site: SiteId(2),
    };
    let value = SlotVersion {
        value: Some(CanonicalJson::from_value(&json!(1))),
        clock,
        life: Life(3),
        pred: None,
    };
    let life = SlotVersion {
        value: None,
        clock,
        life: Life(3),
        pred: None,
    };
    let delete = SlotVersion {
        value: None,
        clock: Clock {
            hlc: Hlc::new(9, 0),
            site: SiteId(1),
        },
        life: Life(2),
        pred: None,
    };
    let versions = [
        (Slot::Life, delete),
        (slot.clone(), value),
        (Slot::Life, life),
    ];
    let expected = state_of(&versions);
    assert_eq!(expected.life(), Life(3));
    assert_eq!(expected.render().unwrap()["a"], json!(1));
    for perm in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let state = state_of(perm.iter().map(|&i| &versions[i]));
        assert_eq!(state, expected, "order {perm:?}");
    }
}
