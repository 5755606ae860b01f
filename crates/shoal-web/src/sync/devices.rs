//! The tab's view of the group's devices (issue 19), from its own copy of
//! the reserved devices collection: the owner its owner record names and
//! the registry the stored statements make under it. Two questions are
//! asked of it, as on native nodes: who may sign the device statements the
//! tab takes from a peer (`merge.rs`, `shoal_core::devices::admissible`),
//! and whether an authenticated peer may stay in session (not admitted or
//! revoked: refused by name, `Rejection::NotAdmitted` / `Revoked`). While
//! the tab knows of no owner, nothing is checked.
//!
//! Pure: the replica loads the records. It owns these two answers only.

use crate::row::StoredRecord;
use shoal_core::FieldName;
use shoal_core::devices::{
    DeviceAccess, IssuerKey, Issuers, OWNER_RECORD, Registry, STATEMENT_FIELD,
};
use shoal_core::sync::Rejection;

/// The registry of the devices collection's `records` (id and state), or
/// `None` while no owner record names an owner.
pub fn registry_from<'a>(
    records: impl IntoIterator<Item = (&'a str, &'a StoredRecord)>,
) -> Option<Registry> {
    let mut owner = None;
    let mut statements = Vec::new();
    for (id, record) in records {
        if !record.state.is_alive() {
            continue;
        }
        let field = |name: &str| {
            FieldName::new(name)
                .ok()
                .and_then(|f| record.state.field_value(&f))
                .and_then(|v| v.as_str().map(str::to_string))
        };
        if id == OWNER_RECORD {
            owner = field("key").and_then(|k| IssuerKey::from_hex(&k).ok());
        } else if let Some(text) = field(STATEMENT_FIELD) {
            statements.push((id.to_string(), text));
        }
    }
    let owner = owner?;
    Some(Registry::evaluate(
        owner,
        statements.iter().map(|(a, b)| (a.as_str(), b.as_str())),
    ))
}

/// Who may sign the statements the tab takes (anyone while no owner).
pub fn issuers(registry: Option<&Registry>) -> Issuers {
    registry.map_or(Issuers::NoOwner, Registry::issuers)
}

/// Why `peer` (its peer id as text) may not stay in session, if it may not.
pub fn refusal(registry: Option<&Registry>, peer: &str) -> Option<Rejection> {
    match registry?.access(peer) {
        DeviceAccess::Admitted(_) => None,
        DeviceAccess::NotAdmitted => Some(Rejection::NotAdmitted),
        DeviceAccess::Revoked => Some(Rejection::Revoked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::devices::{Admission, DeviceRole, OwnerKey, Revocation, Statement};
    use shoal_core::{CanonicalJson, Clock, Hlc, Life, RecordState, SiteId, Slot, SlotVersion};
    use std::collections::BTreeMap;

    fn record(field: &str, text: &str) -> StoredRecord {
        let v = |value: Option<String>| SlotVersion {
            value: value.map(|t| CanonicalJson::from_value(&serde_json::Value::String(t))),
            clock: Clock {
                hlc: Hlc::new(1, 0),
                site: SiteId(1),
            },
            life: Life(1),
            pred: None,
        };
        let state = RecordState::from_slots([
            (Slot::Life, v(None)),
            (
                Slot::Field(FieldName::new(field).unwrap()),
                v(Some(text.into())),
            ),
        ]);
        StoredRecord {
            state,
            ..StoredRecord::default()
        }
    }

    #[test]
    fn without_an_owner_nothing_is_checked_and_with_one_the_registry_decides() {
        assert_eq!(refusal(None, "p"), None);
        assert_eq!(issuers(None), Issuers::NoOwner);
        let owner = OwnerKey::from_seed([3; 32]);
        let admit = Statement::Admit(Admission {
            device: "peerA".into(),
            role: DeviceRole::Member,
            collections: BTreeMap::new(),
            admitted_ms: 10,
            device_key: None,
            name: String::new(),
        })
        .sign(&owner);
        let revoke = Statement::Revoke(Revocation {
            device: "peerB".into(),
            revoked_ms: 20,
        })
        .sign(&owner);
        let records = [
            (
                OWNER_RECORD.to_string(),
                record("key", &owner.public().to_hex()),
            ),
            (
                admit.statement.record_id(),
                record(STATEMENT_FIELD, &admit.to_text()),
            ),
            (
                revoke.statement.record_id(),
                record(STATEMENT_FIELD, &revoke.to_text()),
            ),
        ];
        let registry = registry_from(records.iter().map(|(id, r)| (id.as_str(), r)));
        let registry = registry.as_ref();
        assert!(registry.is_some());
        assert_eq!(refusal(registry, "peerA"), None);
        assert_eq!(refusal(registry, "peerB"), Some(Rejection::Revoked));
        assert_eq!(refusal(registry, "peerC"), Some(Rejection::NotAdmitted));
        assert!(matches!(issuers(registry), Issuers::Known { .. }));
    }
}
