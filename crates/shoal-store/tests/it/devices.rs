//! The store's side of devices (issue 19), on real database files: a group
//! without an owner checks nothing; the devices collection takes only valid
//! signed statements; the first owner key is pinned and another refused; a
//! device admitted read-only cannot write there; the registry narrows the
//! sharing rules for peers not admitted, read-only or revoked, and does so
//! at once for statements merged from a peer.

use serde_json::{Value, json};
use shoal_core::devices::{Admission, DeviceRole, OwnerKey, Revocation, Statement};
use shoal_core::{Change, CollectionName, Direction, Intent, RecordId, SyncCursor};
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

/// A member that may write cannot, through sync, delete a revocation,
/// clear it, or overwrite it with a statement of its own signing: the
/// replica leaves those changes out (`shoal_core::devices::admissible`),
/// while a later statement the owner signed is still taken.
#[test]
fn a_revocation_survives_a_members_delete_and_overwrite_by_sync() {
    use shoal_core::{
        CanonicalJson, Change, Clock, FieldName, Hlc, Life, LogPosition, SiteId, Slot, SyncCursor,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db"), StoreConfig::default()).unwrap();
    let owner = OwnerKey::from_seed([1; 32]);
    let revoked = "12D3KooWRevokedLaptop";
    let revocation = Statement::Revoke(Revocation {
        device: revoked.into(),
        revoked_ms: 10,
    })
    .sign(&owner);
    store.pin_device_owner(owner.public()).unwrap();
    store
        .write([
            owner_op(owner.public()).unwrap(),
            statement_op(&revocation).unwrap(),
            statement_op(&admit("12D3KooWMember", DeviceRole::Member, 3).sign(&owner)).unwrap(),
        ])
        .unwrap();
    let is_revoked = |store: &Store| {
        let registry = store.device_registry().unwrap().unwrap();
        registry
            .devices()
            .get(revoked)
            .is_some_and(|e| e.revocation.is_some())
    };
    assert!(is_revoked(&store));

    let later = Clock {
        hlc: Hlc::new(shoal_store_now_ms() + 1_000, 0),
        site: SiteId(99),
    };
    let change = |slot: Slot, value: Option<Value>, life: u64| Change {
        collection: CollectionName::new("shoal_devices").unwrap(),
        id: RecordId::new(format!("rev.{revoked}")).unwrap(),
        slot,
        value: value.map(|v| CanonicalJson::from_value(&v)),
        clock: later,
        life: Life(life),
        position: LogPosition::default(),
        pred: None,
    };
    let statement = || Slot::Field(FieldName::new("statement").unwrap());
    let member = OwnerKey::from_seed([7; 32]);
    let own_signing = Statement::Revoke(Revocation {
        device: revoked.into(),
        revoked_ms: 10,
    })
    .sign(&member);
    let attack = [
        change(Slot::Life, None, 2),
        change(statement(), None, 1),
        change(statement(), Some(json!(own_signing.to_text())), 1),
        change(
            Slot::Field(FieldName::new("extra").unwrap()),
            Some(json!(1)),
            1,
        ),
    ];
    for one in attack {
        let report = store
            .apply_from(
                "12D3KooWMember",
                std::slice::from_ref(&one),
                SyncCursor::default(),
            )
            .unwrap();
        assert_eq!(report.not_admissible, 1, "{one:?} taken");
        assert!(is_revoked(&store), "{one:?} undid the revocation");
    }
    let record = store
        .get(
            &CollectionName::new("shoal_devices").unwrap(),
            &RecordId::new(format!("rev.{revoked}")).unwrap(),
        )
        .unwrap();
    assert!(record.is_some(), "the revocation record is still alive");

    // The owner's own later statement in that record is taken.
    let again = Statement::Revoke(Revocation {
        device: revoked.into(),
        revoked_ms: 5,
    })
    .sign(&owner);
    let report = store
        .apply_from(
            "12D3KooWMember",
            &[change(statement(), Some(json!(again.to_text())), 1)],
            SyncCursor::default(),
        )
        .unwrap();
    assert_eq!(report.not_admissible, 0);
    assert!(is_revoked(&store));
}

fn shoal_store_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The device B of the test below.
const DEVICE_B: &str = "12D3KooWDeviceB";

/// What `store` sends device B after `cursor`, and the cursor after it.
fn log_after(store: &Store, cursor: SyncCursor) -> (Vec<Change>, SyncCursor) {
    let read = store
        .read_for_peer(DEVICE_B, cursor, 100_000, 1 << 24)
        .unwrap();
    assert!(!read.more);
    let next = cursor.advance_within(read.upto, read.partial, read.more);
    (read.changes, next)
}

/// A store of `owner`'s group (owner pinned, owner record written) that
/// holds the owner's admission of each of `members`.
fn in_group(path: &std::path::Path, owner: &OwnerKey, members: &[&str]) -> Store {
    let mut store = Store::open(path, StoreConfig::default()).unwrap();
    store.pin_device_owner(owner.public()).unwrap();
    let admissions = members
        .iter()
        .map(|m| statement_op(&admit(m, DeviceRole::Member, 1).sign(owner)).unwrap());
    store
        .write(std::iter::once(owner_op(owner.public()).unwrap()).chain(admissions))
        .unwrap();
    store
}

#[test]
fn device_statements_merged_from_a_peer_change_the_sharing_rules_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let owner = OwnerKey::from_seed([5; 32]);
    let laptop = "12D3KooWLaptop";
    let mut a = in_group(&dir.path().join("a.db"), &owner, &[laptop, DEVICE_B]);
    // B is in the group and knows A as a member.
    let device_a = "12D3KooWDeviceA";
    let mut b = in_group(&dir.path().join("b.db"), &owner, &[device_a]);
    let admitted = |store: &Store| {
        let rules = store.sharing().unwrap();
        let registry = rules.devices().expect("the group has an owner");
        registry
            .devices()
            .get(laptop)
            .is_some_and(|e| e.revocation.is_none())
    };
    // Merges A's changes into B: each batch taken, nothing refused.
    let merge = |b: &mut Store, changes: &[Change]| {
        let report = b
            .apply_from(device_a, changes, SyncCursor::default())
            .unwrap();
        assert!(
            report.applied > 0 && report.not_admissible == 0,
            "{report:?}"
        );
        report.applied
    };
    let (changes, cursor) = log_after(&a, SyncCursor::default());
    merge(&mut b, &changes);
    assert!(admitted(&b));
    // An ordinary batch: the rules read above still hold.
    a.write([put("notes", "n1", json!({"t": 1}))]).unwrap();
    let (changes, cursor) = log_after(&a, cursor);
    assert_eq!(merge(&mut b, &changes), changes.len());
    assert!(admitted(&b));
    // The owner revokes the laptop: the next rules B uses say so.
    let revocation = Statement::Revoke(Revocation {
        device: laptop.into(),
        revoked_ms: 10,
    })
    .sign(&owner);
    a.write([statement_op(&revocation).unwrap()]).unwrap();
    let (changes, _) = log_after(&a, cursor);
    merge(&mut b, &changes);
    assert!(!admitted(&b), "the revocation is in B's rules at once");
    assert!(!b.sharing().unwrap().allows(
        laptop,
        &CollectionName::new("notes").unwrap(),
        Direction::ToPeer
    ));
}
