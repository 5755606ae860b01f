//! The store's side of devices (issue 19), on real database files: a group
//! without an owner checks nothing; the devices collection takes only valid
//! signed statements; the first owner key is pinned and another refused; a
//! device admitted read-only cannot write there; the registry narrows the
//! sharing rules for peers not admitted, read-only or revoked.

use serde_json::{Value, json};
use shoal_core::devices::{Admission, DeviceRole, OwnerKey, Revocation, Statement};
use shoal_core::{CollectionName, Direction, Intent, RecordId};
use shoal_store::{Store, StoreConfig, StoreError, WriteOp, owner_op, statement_op};
use std::collections::BTreeMap;

fn put(collection: &str, id: &str, value: Value) -> WriteOp {
    let Value::Object(map) = value else { panic!() };
    WriteOp {
        collection: CollectionName::new(collection).unwrap(),
        id: RecordId::new(id).unwrap(),
        intent: Intent::Put(map),
    }
}

fn admit(device: &str, role: DeviceRole, ms: u64) -> Statement {
    Statement::Admit(Admission {
        device: device.into(),
        role,
        collections: BTreeMap::new(),
        admitted_ms: ms,
        device_key: None,
        name: String::new(),
    })
}

#[test]
fn statements_pinning_read_only_writes_and_narrowed_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db"), StoreConfig::default()).unwrap();
    let own = store.identity().peer_id().to_string();
    let tasks = CollectionName::new("tasks").unwrap();

    // No owner: nothing checked, every peer gets the rules' default.
    assert!(store.device_registry().unwrap().is_none());
    store.write([put("tasks", "t1", json!({"a": 1}))]).unwrap();
    assert!(
        store
            .sharing()
            .unwrap()
            .allows("anyone", &tasks, Direction::ToPeer)
    );

    // Junk in the devices collection is refused by name.
    let junk = store.write([put("shoal_devices", "adm.x.1", json!({"statement": "hi"}))]);
    assert!(matches!(junk, Err(StoreError::Devices(_))), "{junk:?}");
    let other = store.write([put("shoal_devices", "owner", json!({"key": "00"}))]);
    assert!(
        matches!(other, Err(StoreError::ReservedCollection { .. })),
        "{other:?}"
    );

    // The owner key is pinned; another one is refused.
    let owner = OwnerKey::from_seed([1; 32]);
    store.pin_device_owner(owner.public()).unwrap();
    assert!(
        store
            .pin_device_owner(OwnerKey::from_seed([2; 32]).public())
            .is_err()
    );
    let forged = admit(&own, DeviceRole::Member, 5).sign(&OwnerKey::from_seed([2; 32]));
    store
        .write([
            owner_op(owner.public()).unwrap(),
            statement_op(&forged).unwrap(),
        ])
        .unwrap();
    let registry = store.device_registry().unwrap().unwrap();
    assert_eq!(
        registry.refused().len(),
        1,
        "a statement by another key does not count"
    );
    assert!(
        !store
            .sharing()
            .unwrap()
            .allows("stranger", &tasks, Direction::ToPeer)
    );

    // This device admitted read-only: its writes are refused (after the
    // local-write check's 250 ms), the devices collection still takes statements.
    let ro = admit(&own, DeviceRole::ReadOnly, 10).sign(&owner);
    store.write([statement_op(&ro).unwrap()]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let refused = store.write([put("tasks", "t2", json!({"a": 2}))]);
    assert!(
        matches!(refused, Err(StoreError::ReadOnlyDevice { .. })),
        "{refused:?}"
    );
    assert!(
        store
            .get(&tasks, &RecordId::new("t2").unwrap())
            .unwrap()
            .is_none()
    );

    // A read-only peer: sent to, never received from; a revoked one: nothing.
    let kiosk = admit("kiosk", DeviceRole::ReadOnly, 11).sign(&owner);
    let lost = admit("laptop", DeviceRole::Member, 11).sign(&owner);
    let revoke = Statement::Revoke(Revocation {
        device: "laptop".into(),
        revoked_ms: 12,
    })
    .sign(&owner);
    for s in [&kiosk, &lost, &revoke] {
        store.write([statement_op(s).unwrap()]).unwrap();
    }
    let rules = store.sharing().unwrap();
    assert!(rules.allows("kiosk", &tasks, Direction::ToPeer));
    assert!(!rules.allows("kiosk", &tasks, Direction::FromPeer));
    assert!(!rules.allows("laptop", &tasks, Direction::ToPeer));
    assert!(!rules.allows("laptop", &tasks, Direction::FromPeer));
    // Reopened, the pin and the statements are still there.
    drop(store);
    let store = Store::open(dir.path().join("s.db"), StoreConfig::default()).unwrap();
    assert_eq!(store.device_owner().unwrap(), Some(owner.public()));
    assert!(
        !store
            .sharing()
            .unwrap()
            .allows("laptop", &tasks, Direction::ToPeer)
    );
}
