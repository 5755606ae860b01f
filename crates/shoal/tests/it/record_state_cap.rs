//! The bound on tombstones: a local write that would grow a record's stored
//! state (every slot version, the tombstones of removed map entries
//! included) past `max_record_bytes` is refused by name and writes nothing;
//! a write that does not grow it still goes, and a delete clears it.

use serde_json::{Map, Value, json};
use shoal::{CoreError, Error, Store, StoreConfig, StoreOptions};

#[test]
fn a_write_that_grows_a_record_past_the_state_cap_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 64 * 1024;
    let store = Store::open_with(
        dir.path().join("capped.db"),
        StoreOptions {
            config: StoreConfig {
                max_record_bytes: cap,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let c = store.collection("lists").unwrap();
    c.map_set("r", "m", "seed", json!(1)).unwrap();
    let key = |round: usize, i: usize| format!("{round}-{i:03}-{}", "k".repeat(100));
    let mut refused = None;
    for round in 0..20 {
        let entries: Map<String, Value> = (0..100).map(|i| (key(round, i), json!(1))).collect();
        let (version, held) = (store.db_version(), c.get("r").unwrap());
        if let Err(e) = c.put("r", json!({ "m": entries })) {
            assert_eq!(store.db_version(), version, "nothing was written");
            assert_eq!(c.get("r").unwrap(), held);
            refused = Some(e);
            break;
        }
        if let Err(e) = c.put("r", json!({ "m": {} })) {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the tombstones reach the cap");
    assert!(
        matches!(refused, Error::Invalid(CoreError::RecordTooLarge { cap: c, .. }) if c == cap),
        "{refused:?}"
    );
    // A write that does not grow it still goes, and a delete clears it.
    let before = store.record_changes("lists", "r").unwrap().unwrap().len();
    c.delete("r").unwrap();
    let after = store.record_changes("lists", "r").unwrap().unwrap().len();
    assert!(
        after < before,
        "the delete cleared the tombstones: {before} → {after}"
    );
    c.map_set("r", "m", "fresh", json!(1)).unwrap();
}
