//! Which replicated changes to the devices collection a replica takes.
//!
//! Statements travel as ordinary records, so without this rule any member
//! that may write could, through sync, delete a revocation record, clear
//! its `statement` field, or overwrite it (last writer wins) with a
//! statement of its own signing that the registry then ignores — and the
//! revocation would be gone on every replica that took the change. A
//! replica therefore takes, for [`DEVICES_COLLECTION`], only: a record's
//! creation (never a delete), the owner record's `key` naming the pinned
//! owner (any key while none is pinned), and a `statement` field holding a
//! statement that verifies, sits in the record it names, and is signed by
//! the owner or an admin (by anyone while the group has no owner yet; an
//! admin admitted in the same batch counts). Everything else in that
//! collection is dropped. Pure: it reads no store and no clock.

use super::keys::IssuerKey;
use super::registry::{DEVICES_COLLECTION, OWNER_RECORD, STATEMENT_FIELD};
use super::statement::{DeviceRole, Signed, Statement};
use crate::change::{Change, Slot};
use std::collections::BTreeSet;

/// Who may sign the statements a replica takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuers {
    /// The group has no owner here yet: statements are taken as they come
    /// (the registry decides what they mean once an owner is pinned).
    NoOwner,
    /// The pinned owner key and the keys of the admins it made.
    Known {
        /// The pinned owner key.
        owner: IssuerKey,
        /// Current admins' keys.
        admins: BTreeSet<IssuerKey>,
    },
}

impl Issuers {
    /// `self` with the admins that owner-signed admissions among `changes`
    /// make, so an admin's statements arriving beside its admission count.
    pub fn with_admins_in(mut self, changes: &[&Change]) -> Self {
        if let Issuers::Known { owner, admins } = &mut self {
            for change in changes {
                if let Some(signed) = statement_of(change)
                    && signed.issuer == *owner
                    && let Statement::Admit(a) = &signed.statement
                    && a.role == DeviceRole::Admin
                    && let Some(key) = a.device_key
                {
                    admins.insert(key);
                }
            }
        }
        self
    }

    fn may_sign(&self, key: &IssuerKey) -> bool {
        match self {
            Issuers::NoOwner => true,
            Issuers::Known { owner, admins } => key == owner || admins.contains(key),
        }
    }
}

/// The verified statement a change sets, if it is a `statement` field set
/// to one that verifies in its record.
fn statement_of(change: &Change) -> Option<Signed> {
    if change.collection.as_str() != DEVICES_COLLECTION || change.id.as_str() == OWNER_RECORD {
        return None;
    }
    let Slot::Field(name) = &change.slot else {
        return None;
    };
    if name.as_str() != STATEMENT_FIELD {
        return None;
    }
    let value = change.value.as_ref()?.to_value();
    Signed::from_text(change.id.as_str(), value.as_str()?).ok()
}

/// Whether a replica takes `change` (see the module docs); a change to any
/// other collection is always taken here.
pub fn admissible(change: &Change, issuers: &Issuers) -> bool {
    if change.collection.as_str() != DEVICES_COLLECTION {
        return true;
    }
    match &change.slot {
        Slot::Life => change.life.is_alive(),
        Slot::Entry(..) => false,
        Slot::Field(name) if change.id.as_str() == OWNER_RECORD => {
            let key = change
                .value
                .as_ref()
                .map(|v| v.to_value())
                .and_then(|v| v.as_str().and_then(|t| IssuerKey::from_hex(t).ok()));
            name.as_str() == "key"
                && key.is_some_and(|k| match issuers {
                    Issuers::NoOwner => true,
                    Issuers::Known { owner, .. } => k == *owner,
                })
        }
        Slot::Field(_) => statement_of(change).is_some_and(|s| issuers.may_sign(&s.issuer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{Admission, OwnerKey, Revocation};
    use crate::{
        CanonicalJson, Clock, CollectionName, FieldName, Hlc, Life, LogPosition, RecordId, SiteId,
    };
    use serde_json::json;
    use std::collections::BTreeMap;

    fn change(id: &str, slot: Slot, value: Option<serde_json::Value>, life: u64) -> Change {
        Change {
            collection: CollectionName::new(DEVICES_COLLECTION).unwrap(),
            id: RecordId::new(id).unwrap(),
            slot,
            value: value.map(|v| CanonicalJson::from_value(&v)),
            clock: Clock {
                hlc: Hlc::new(1_000, 0),
                site: SiteId(7),
            },
            life: Life(life),
            position: LogPosition::default(),
            pred: None,
        }
    }

    fn statement_change(signed: &Signed) -> Change {
        change(
            &signed.statement.record_id(),
            Slot::Field(FieldName::new(STATEMENT_FIELD).unwrap()),
            Some(json!(signed.to_text())),
            1,
        )
    }

    fn revoke(device: &str, key: &OwnerKey) -> Signed {
        Statement::Revoke(Revocation {
            device: device.into(),
            revoked_ms: 5,
        })
        .sign(key)
    }

    fn known(owner: &OwnerKey) -> Issuers {
        Issuers::Known {
            owner: owner.public(),
            admins: BTreeSet::new(),
        }
    }

    #[test]
    fn deletes_and_cleared_statements_are_dropped_creations_taken() {
        let owner = OwnerKey::from_seed([1; 32]);
        let issuers = known(&owner);
        let revocation = revoke("peer-x", &owner);
        let id = revocation.statement.record_id();
        assert!(admissible(&statement_change(&revocation), &issuers));
        assert!(admissible(&change(&id, Slot::Life, None, 1), &issuers));
        assert!(!admissible(&change(&id, Slot::Life, None, 2), &issuers));
        let cleared = change(
            &id,
            Slot::Field(FieldName::new(STATEMENT_FIELD).unwrap()),
            None,
            1,
        );
        assert!(!admissible(&cleared, &issuers));
        let other = change(
            &id,
            Slot::Field(FieldName::new("note").unwrap()),
            Some(json!("x")),
            1,
        );
        assert!(!admissible(&other, &issuers));
    }

    #[test]
    fn a_members_own_signature_does_not_replace_a_revocation() {
        let owner = OwnerKey::from_seed([1; 32]);
        let member = OwnerKey::from_seed([2; 32]);
        let forged = revoke("peer-x", &member);
        assert!(!admissible(&statement_change(&forged), &known(&owner)));
        assert!(admissible(&statement_change(&forged), &Issuers::NoOwner));
        // Garbage text in the statement field is never taken.
        let garbage = change(
            "rev.peer-x",
            Slot::Field(FieldName::new(STATEMENT_FIELD).unwrap()),
            Some(json!("shoal-device1:zz")),
            1,
        );
        assert!(!admissible(&garbage, &Issuers::NoOwner));
    }

    #[test]
    fn an_admin_admitted_in_the_same_batch_may_sign() {
        let owner = OwnerKey::from_seed([1; 32]);
        let admin = OwnerKey::from_seed([3; 32]);
        let admission = Statement::Admit(Admission {
            device: "peer-admin".into(),
            role: DeviceRole::Admin,
            collections: BTreeMap::new(),
            admitted_ms: 3,
            device_key: Some(admin.public()),
            name: "admin".into(),
        })
        .sign(&owner);
        let by_admin = revoke("peer-y", &admin);
        let batch = [statement_change(&admission), statement_change(&by_admin)];
        let refs: Vec<&Change> = batch.iter().collect();
        assert!(!admissible(&batch[1], &known(&owner)));
        let issuers = known(&owner).with_admins_in(&refs);
        assert!(admissible(&batch[1], &issuers));
    }

    #[test]
    fn the_owner_record_must_name_the_pinned_key() {
        let owner = OwnerKey::from_seed([1; 32]);
        let other = OwnerKey::from_seed([4; 32]);
        let key = FieldName::new("key").unwrap();
        let naming = |k: &OwnerKey| {
            change(
                OWNER_RECORD,
                Slot::Field(key.clone()),
                Some(json!(k.public().to_hex())),
                1,
            )
        };
        assert!(admissible(&naming(&owner), &known(&owner)));
        assert!(!admissible(&naming(&other), &known(&owner)));
        assert!(admissible(&naming(&other), &Issuers::NoOwner));
    }
}
