//! Tests of the registry: signatures, issuers, roles, revocation, order
//! independence (proptest).

use super::*;
use crate::devices::{CollectionRole, MAX_NAME_LEN, OwnerKey};
use proptest::prelude::*;

fn owner() -> OwnerKey {
    OwnerKey::from_seed([7; 32])
}

fn admit(device: &str, role: DeviceRole, ms: u64) -> Statement {
    Statement::Admit(Admission {
        device: device.to_string(),
        role,
        collections: BTreeMap::new(),
        admitted_ms: ms,
        device_key: None,
        name: String::new(),
    })
}

fn revoke(device: &str, ms: u64) -> Statement {
    Statement::Revoke(Revocation {
        device: device.to_string(),
        revoked_ms: ms,
    })
}

fn stored(s: Signed) -> (String, String) {
    (s.statement.record_id(), s.to_text())
}

fn eval(owner: &OwnerKey, records: &[(String, String)]) -> Registry {
    Registry::evaluate(
        owner.public(),
        records.iter().map(|(a, b)| (a.as_str(), b.as_str())),
    )
}

fn tasks() -> CollectionName {
    CollectionName::new("tasks").unwrap()
}

#[test]
fn an_owner_signed_admission_admits_and_a_revocation_is_final() {
    let o = owner();
    let mut records = vec![stored(admit("peerA", DeviceRole::Member, 10).sign(&o))];
    let r = eval(&o, &records);
    assert!(matches!(r.access("peerA"), DeviceAccess::Admitted(a) if a.role == DeviceRole::Member));
    assert_eq!(r.access("peerB"), DeviceAccess::NotAdmitted);
    records.push(stored(revoke("peerA", 20).sign(&o)));
    // A newer admission does not undo a revocation.
    records.push(stored(admit("peerA", DeviceRole::Member, 30).sign(&o)));
    assert_eq!(eval(&o, &records).access("peerA"), DeviceAccess::Revoked);
    assert_eq!(
        eval(&o, &records).restrict("peerA", &tasks(), ShareMode::Both),
        ShareMode::None
    );
}

#[test]
fn forged_unsigned_misplaced_and_foreign_statements_are_refused() {
    let o = owner();
    let stranger = OwnerKey::from_seed([8; 32]);
    let (id, text) = stored(admit("peerA", DeviceRole::Member, 10).sign(&o));
    // Signed by someone else.
    let foreign = stored(admit("peerF", DeviceRole::Member, 10).sign(&stranger));
    // A byte of the signed content changed.
    let mut tampered = text.clone();
    let at = tampered.len() - 140;
    let flipped = if &tampered[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(at..at + 1, flipped);
    // Copied into another record.
    let misplaced = ("adm.peerA.11".to_string(), text.clone());
    let records = vec![
        foreign.clone(),
        (id.clone(), tampered),
        misplaced,
        ("adm.peerU.1".to_string(), "not a statement".to_string()),
    ];
    let r = eval(&o, &records);
    assert_eq!(r.access("peerA"), DeviceAccess::NotAdmitted);
    assert_eq!(r.access("peerF"), DeviceAccess::NotAdmitted);
    let reasons: BTreeMap<&str, &StatementError> =
        r.refused().iter().map(|(id, e)| (id.as_str(), e)).collect();
    assert_eq!(reasons[foreign.0.as_str()], &StatementError::UnknownIssuer);
    assert_eq!(reasons["adm.peerA.11"], &StatementError::WrongRecord);
    assert_eq!(reasons["adm.peerU.1"], &StatementError::Malformed);
    assert!(matches!(
        reasons[id.as_str()],
        StatementError::BadSignature | StatementError::Malformed
    ));
}

#[test]
fn read_only_devices_send_nothing_and_per_collection_roles_override() {
    let o = owner();
    let mut notes_member = Admission {
        device: "kiosk".into(),
        role: DeviceRole::ReadOnly,
        collections: BTreeMap::new(),
        admitted_ms: 5,
        device_key: None,
        name: "kiosk".into(),
    };
    let notes = CollectionName::new("notes").unwrap();
    notes_member
        .collections
        .insert(notes.clone(), CollectionRole::Member);
    let r = eval(&o, &[stored(Statement::Admit(notes_member).sign(&o))]);
    assert_eq!(
        r.restrict("kiosk", &tasks(), ShareMode::Both),
        ShareMode::Send
    );
    assert_eq!(
        r.restrict("kiosk", &tasks(), ShareMode::Receive),
        ShareMode::None
    );
    assert_eq!(
        r.restrict("kiosk", &notes, ShareMode::Both),
        ShareMode::Both
    );
    assert!(!r.local_write_allowed("kiosk", &tasks()));
    assert!(r.local_write_allowed("kiosk", &notes));
    let devices = CollectionName::new(DEVICES_COLLECTION).unwrap();
    assert_eq!(
        r.restrict("kiosk", &devices, ShareMode::None),
        ShareMode::Send,
        "the devices collection reaches a read-only device whatever the rules say"
    );
    assert_eq!(
        r.restrict("stranger", &devices, ShareMode::Both),
        ShareMode::None
    );
}

#[test]
fn admins_admit_and_revoke_members_but_not_admins() {
    let o = owner();
    let admin_key = OwnerKey::from_seed([3; 32]);
    let mut admin = admit("boss", DeviceRole::Admin, 1);
    if let Statement::Admit(a) = &mut admin {
        a.device_key = Some(admin_key.public());
    }
    let records = vec![
        stored(admin.sign(&o)),
        stored(admit("other-admin", DeviceRole::Admin, 1).sign(&o)),
        stored(admit("phone", DeviceRole::Member, 2).sign(&admin_key)),
        stored(admit("tablet", DeviceRole::Admin, 2).sign(&admin_key)),
        stored(revoke("other-admin", 3).sign(&admin_key)),
    ];
    let r = eval(&o, &records);
    assert!(matches!(r.access("phone"), DeviceAccess::Admitted(_)));
    assert_eq!(
        r.access("tablet"),
        DeviceAccess::NotAdmitted,
        "only the owner makes admins"
    );
    assert!(matches!(r.access("other-admin"), DeviceAccess::Admitted(_)));
    assert_eq!(r.refused().len(), 2);
    // Once the owner revokes the admin, what it signed no longer counts.
    let mut records = records;
    records.push(stored(revoke("boss", 9).sign(&o)));
    let r = eval(&o, &records);
    assert_eq!(r.access("phone"), DeviceAccess::NotAdmitted);
    assert_eq!(r.access("boss"), DeviceAccess::Revoked);
}

#[test]
fn the_newest_admission_sets_the_role() {
    let o = owner();
    let records = vec![
        stored(admit("p", DeviceRole::Member, 10).sign(&o)),
        stored(admit("p", DeviceRole::ReadOnly, 20).sign(&o)),
    ];
    let r = eval(&o, &records);
    assert!(matches!(r.access("p"), DeviceAccess::Admitted(a) if a.role == DeviceRole::ReadOnly));
}

#[test]
fn an_over_long_name_is_refused() {
    let o = owner();
    let mut s = admit("p", DeviceRole::Member, 1);
    if let Statement::Admit(a) = &mut s {
        a.name = "n".repeat(MAX_NAME_LEN + 1);
    }
    let (id, text) = stored(s.sign(&o));
    assert_eq!(
        Signed::from_text(&id, &text),
        Err(StatementError::OutOfBounds)
    );
}

fn arb_statement() -> impl Strategy<Value = (u8, Statement)> {
    let device = prop::sample::select(vec!["a", "b", "c", "d"]);
    let role = prop::sample::select(vec![
        DeviceRole::Member,
        DeviceRole::ReadOnly,
        DeviceRole::Admin,
    ]);
    let signer = 0u8..3;
    (signer, device, role, 0u64..50, any::<bool>()).prop_map(|(signer, device, role, ms, rev)| {
        let mut s = if rev {
            revoke(device, ms)
        } else {
            admit(device, role, ms)
        };
        if let Statement::Admit(a) = &mut s
            && a.role == DeviceRole::Admin
        {
            a.device_key = Some(OwnerKey::from_seed([signer.wrapping_add(100); 32]).public());
        }
        (signer, s)
    })
}

fn signer_key(signer: u8) -> OwnerKey {
    match signer {
        0 => owner(),
        n => OwnerKey::from_seed([n.wrapping_add(100); 32]),
    }
}

proptest! {
    // Signing is the cost here; 64 cases cover the orders well enough.
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn evaluation_does_not_depend_on_order(
        statements in prop::collection::vec(arb_statement(), 0..12),
        seed in any::<u64>(),
    ) {
        let o = owner();
        let records: Vec<(String, String)> = statements
            .into_iter()
            .map(|(signer, s)| stored(s.sign(&signer_key(signer))))
            .collect();
        let mut shuffled = records.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(i as u64 + 1).rotate_left(17) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        prop_assert_eq!(eval(&o, &records), eval(&o, &shuffled));
    }

    #[test]
    fn a_statement_round_trips_and_any_changed_byte_is_refused(
        (signer, s) in arb_statement(),
        at in any::<prop::sample::Index>(),
    ) {
        let key = signer_key(signer);
        let signed = s.sign(&key);
        let (id, text) = stored(signed.clone());
        prop_assert_eq!(Signed::from_text(&id, &text), Ok(signed));
        let prefix = "shoal-device1:".len();
        let i = prefix + at.index(text.len() - prefix);
        let old = text.as_bytes()[i];
        let new = if old == b'0' { '1' } else { '0' };
        let mut changed = text.clone();
        changed.replace_range(i..i + 1, &new.to_string());
        prop_assert!(Signed::from_text(&id, &changed).is_err());
    }
}
