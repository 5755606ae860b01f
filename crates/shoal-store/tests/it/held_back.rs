//! A log read for a peer names the collections the sharing rules made it
//! pass over (`LogRead::held_back`): the read moves past their records, so
//! the session must note them as held back from that peer, or a rule
//! widened later would never level them.

use shoal_core::{CollectionName, Intent, RecordId, ShareMode, SyncCursor};
use shoal_store::{Store, StoreConfig, WriteOp};
use std::collections::BTreeSet;

fn put(store: &mut Store, collection: &str, id: &str) {
    let op = WriteOp {
        collection: CollectionName::new(collection).expect("name"),
        id: RecordId::new(id).expect("id"),
        intent: Intent::Put(
            serde_json::json!({"n": 1})
                .as_object()
                .expect("object")
                .clone(),
        ),
    };
    store.write(vec![op]).expect("write");
}

#[test]
fn a_read_names_the_collections_the_rules_passed_over() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(dir.path().join("s.db"), StoreConfig::default()).expect("open");
    let diary = CollectionName::new("diary").expect("name");
    store
        .set_sharing("b", &diary, ShareMode::Receive)
        .expect("share");
    put(&mut store, "notes", "n1");
    put(&mut store, "diary", "d1");
    put(&mut store, "notes", "n2");

    let to_b = store
        .read_for_peer("b", SyncCursor::default(), 100, 1 << 20)
        .expect("read");
    assert_eq!(to_b.held_back, BTreeSet::from([diary.clone()]));
    assert!(
        to_b.changes
            .iter()
            .all(|c| c.collection.as_str() == "notes"),
        "{:?}",
        to_b.changes
    );
    assert!(!to_b.more);

    // Another peer gets everything: nothing passed over.
    let to_c = store
        .read_for_peer("c", SyncCursor::default(), 100, 1 << 20)
        .expect("read");
    assert!(to_c.held_back.is_empty());
    assert!(to_c.changes.iter().any(|c| c.collection == diary));

    // A read that stops before the diary record passes over nothing yet;
    // the next one, from where it stopped, does.
    let first = store
        .read_for_peer("b", SyncCursor::default(), 1, 1 << 20)
        .expect("read");
    assert!(first.more && first.held_back.is_empty(), "{first:?}");
    let cursor = SyncCursor::default().advance_within(first.upto, first.partial, first.more);
    let rest = store
        .read_for_peer("b", cursor, 100, 1 << 20)
        .expect("read");
    assert_eq!(rest.held_back, BTreeSet::from([diary]));
}
