//! The checks the convergence harness makes on one store: reads against the
//! full state, the change log against the current slots, and a local write
//! against what its intent means.

use super::{obj, ok};
use crate::convergence_model::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use shoal_core::{CollectionName, DbVersion, RecordId, RecordState};
use shoal_store::Store;

/// `get`, `list` and `status` agree with the full state.
pub fn check_reads(store: &Store, full: &Full) -> Result<(), TestCaseError> {
    for ((c, id), state) in full {
        prop_assert_eq!(
            ok(store.get(c, id), "get")?,
            state.render(),
            "get {}/{}",
            c,
            id
        );
        prop_assert_eq!(
            &ok(store.record_state(c, id), "record_state")?,
            &(state.life().0 > 0).then(|| state.clone())
        );
    }
    for name in COLLECTIONS {
        let c = CollectionName::new(name).unwrap();
        let page = ok(store.list(&c, "", None, 100), "list")?;
        let expected: Vec<(RecordId, Map<String, Value>)> = full
            .iter()
            .filter(|((col, _), _)| *col == c)
            .filter_map(|((_, id), state)| state.render().map(|r| (id.clone(), r)))
            .collect();
        prop_assert_eq!(page.records, expected, "list {}", name);
        prop_assert_eq!(page.next, None);
    }
    let status = ok(store.status(), "status")?;
    for collection in status.collections {
        let live = full
            .iter()
            .filter(|((c, _), s)| *c == collection.name && s.is_alive())
            .count() as u64;
        let deleted = full
            .iter()
            .filter(|((c, _), s)| *c == collection.name && !s.is_alive())
            .count() as u64;
        prop_assert_eq!((collection.live, collection.deleted), (live, deleted));
    }
    Ok(())
}

/// The change log holds exactly the current slot versions (no history, no
/// purged slot), in increasing positions: slots of one record share its
/// position, different records never do.
pub fn check_log(store: &Store, full: &Full) -> Result<(), TestCaseError> {
    let log = ok(
        store
            .changes_since(DbVersion(0))
            .collect::<Result<Vec<_>, _>>(),
        "changes_since",
    )?;
    let ordered = log.windows(2).all(|w| {
        let same_record = (&w[0].collection, &w[0].id) == (&w[1].collection, &w[1].id);
        if same_record {
            w[0].position == w[1].position
        } else {
            w[0].position < w[1].position
        }
    });
    prop_assert!(ordered, "log out of order");
    prop_assert!(log.iter().all(|c| c.position.version <= store.db_version()));
    let mut from_log: Vec<String> = log
        .iter()
        .map(|c| {
            format!(
                "{}/{} {:?} {:?} {} {}",
                c.collection, c.id, c.slot, c.value, c.clock, c.life
            )
        })
        .collect();
    let mut from_state: Vec<String> = full
        .iter()
        .flat_map(|((c, id), state)| {
            state.slots().map(move |(slot, v)| {
                format!("{c}/{id} {slot:?} {:?} {} {}", v.value, v.clock, v.life)
            })
        })
        .collect();
    from_log.sort();
    from_state.sort();
    prop_assert_eq!(from_log, from_state, "the log is not the current state");
    Ok(())
}

/// What a local edit must have done to the record, seen through `get`.
pub fn check_local(
    edit: &Edit,
    before: Option<&Map<String, Value>>,
    state: Option<&RecordState>,
    after: Option<&Map<String, Value>>,
) -> Result<(), TestCaseError> {
    let is_map = |f: usize| state.is_some_and(|s| s.is_alive() && s.is_map_field(&field(f)));
    match edit {
        Edit::Put(body) => prop_assert_eq!(after, Some(body), "{:?}", edit),
        Edit::Patch(patch) => {
            let mut expected = before.cloned().expect("a patch needs a live record");
            for (k, v) in patch {
                if v.is_null() {
                    expected.remove(k);
                } else {
                    expected.insert(k.clone(), v.clone());
                }
            }
            prop_assert_eq!(after, Some(&expected), "{:?}", edit);
        }
        Edit::Delete => prop_assert_eq!(after, None, "{:?}", edit),
        Edit::MapSet {
            field: f,
            key,
            value,
        } => {
            let after = after.expect("map_set leaves the record alive");
            let (name, key) = (FIELDS[*f], KEYS[*key]);
            match before {
                None => prop_assert_eq!(after, &obj(json!({name: {key: value}})), "{:?}", edit),
                Some(before) if is_map(*f) => {
                    let mut expected = before.clone();
                    expected[name][key] = value.clone();
                    prop_assert_eq!(after, &expected, "{:?}", edit);
                }
                Some(before) => {
                    // A plain field turns into a map; the new entry shows.
                    prop_assert_eq!(&after[name][key], value, "{:?}", edit);
                    prop_assert_eq!(without(after, name), without(before, name), "{:?}", edit);
                }
            }
        }
        Edit::MapRemove { field: f, key } => {
            let before = before.expect("map_remove needs a live record");
            let after = after.expect("map_remove leaves the record alive");
            let (name, key) = (FIELDS[*f], KEYS[*key]);
            if is_map(*f) {
                let mut expected = before.clone();
                expected[name]
                    .as_object_mut()
                    .expect("a map field shows an object")
                    .remove(key);
                prop_assert_eq!(after, &expected, "{:?}", edit);
            } else {
                prop_assert_eq!(without(after, name), without(before, name), "{:?}", edit);
            }
        }
    }
    Ok(())
}

fn without(record: &Map<String, Value>, name: &str) -> Map<String, Value> {
    let mut record = record.clone();
    record.remove(name);
    record
}
