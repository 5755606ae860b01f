//! The device registry: what a set of stored statements means under the
//! group's owner key — which devices are admitted (in which role), which
//! are revoked, which statements are refused and why — and the one decision
//! every path asks: may this collection flow to or from this peer.
//!
//! The result does not depend on the order statements are read in: the
//! owner's statements are taken first (they alone make admins and revoke
//! them), then those of the admins they made. Of several admissions of one
//! device the newest counts (ties broken by comparing their content); a revocation
//! is final for the peer id. Pure: no store, no clock.

use super::keys::IssuerKey;
use super::statement::{Admission, DeviceRole, Revocation, Signed, Statement, StatementError};
use crate::ids::CollectionName;
use crate::sharing::ShareMode;
use std::collections::{BTreeMap, BTreeSet};

/// The reserved collection holding the group's device statements (and its
/// owner record). It always flows both ways between admitted members
/// (whatever the sharing rules say), and only to a read-only device.
pub const DEVICES_COLLECTION: &str = "shoal_devices";
/// The record, in [`DEVICES_COLLECTION`], naming the owner's public key
/// (field `key`, 64 hex digits).
pub const OWNER_RECORD: &str = "owner";
/// The field of a statement record holding its text.
pub const STATEMENT_FIELD: &str = "statement";

/// What the registry says of one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceEntry {
    /// Its newest admission that counts, and who signed it.
    pub admission: Option<(Admission, IssuerKey)>,
    /// Its revocation, if revoked.
    pub revocation: Option<Revocation>,
}

/// Whether a device may be in the group now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAccess<'a> {
    /// Admitted and not revoked.
    Admitted(&'a Admission),
    /// No admission counts for it (a request waiting for approval).
    NotAdmitted,
    /// Revoked.
    Revoked,
}

/// The devices of a group with an owner. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    owner: IssuerKey,
    devices: BTreeMap<String, DeviceEntry>,
    refused: Vec<(String, StatementError)>,
}

impl Registry {
    /// Evaluates the statements stored as `(record id, text)` pairs under
    /// the owner key `owner`.
    pub fn evaluate<'a>(
        owner: IssuerKey,
        records: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut refused = Vec::new();
        let mut signed = Vec::new();
        for (id, text) in records {
            match Signed::from_text(id, text) {
                Ok(s) => signed.push(s),
                Err(e) => refused.push((id.to_string(), e)),
            }
        }
        let mut registry = Registry {
            owner,
            devices: BTreeMap::new(),
            refused,
        };
        let (by_owner, others): (Vec<Signed>, Vec<Signed>) =
            signed.into_iter().partition(|s| s.issuer == owner);
        for s in by_owner {
            registry.take(s);
        }
        let admins = registry.admin_keys();
        for s in others {
            let id = s.statement.record_id();
            let target_is_admin = registry.is_admin(s.statement.device());
            let allowed = admins.contains(&s.issuer)
                && !target_is_admin
                && !matches!(&s.statement, Statement::Admit(a) if a.role == DeviceRole::Admin);
            if allowed {
                registry.take(s);
            } else {
                registry.refused.push((id, StatementError::UnknownIssuer));
            }
        }
        registry.refused.sort_by(|a, b| a.0.cmp(&b.0));
        registry
    }

    fn take(&mut self, s: Signed) {
        let entry = self
            .devices
            .entry(s.statement.device().to_string())
            .or_default();
        match s.statement {
            Statement::Admit(a) => {
                let newer = match &entry.admission {
                    None => true,
                    Some((old, _)) => a.admitted_ms > old.admitted_ms,
                };
                let tie = entry
                    .admission
                    .as_ref()
                    .is_some_and(|(old, _)| a.admitted_ms == old.admitted_ms && a > *old);
                if newer || tie {
                    entry.admission = Some((a, s.issuer));
                }
            }
            Statement::Revoke(r) => {
                if entry
                    .revocation
                    .as_ref()
                    .is_none_or(|old| r.revoked_ms < old.revoked_ms)
                {
                    entry.revocation = Some(r);
                }
            }
        }
    }

    fn is_admin(&self, device: &str) -> bool {
        self.devices.get(device).is_some_and(|e| {
            e.admission
                .as_ref()
                .is_some_and(|(a, _)| a.role == DeviceRole::Admin)
        })
    }

    /// Who may sign statements a replica takes from its peers: the owner
    /// and the admins it made ([`super::admissible`]).
    pub fn issuers(&self) -> super::Issuers {
        super::Issuers::Known {
            owner: self.owner,
            admins: self.admin_keys(),
        }
    }

    /// The keys of admins the owner made and did not revoke.
    fn admin_keys(&self) -> BTreeSet<IssuerKey> {
        self.devices
            .values()
            .filter(|e| e.revocation.is_none())
            .filter_map(|e| e.admission.as_ref())
            .filter(|(a, _)| a.role == DeviceRole::Admin)
            .filter_map(|(a, _)| a.device_key)
            .collect()
    }

    /// The owner's public key.
    pub fn owner(&self) -> IssuerKey {
        self.owner
    }

    /// Every device a statement counts for, by peer id.
    pub fn devices(&self) -> &BTreeMap<String, DeviceEntry> {
        &self.devices
    }

    /// Statements refused (record id, why): forged, unsigned, misplaced or
    /// issued by a key that may not.
    pub fn refused(&self) -> &[(String, StatementError)] {
        &self.refused
    }

    /// Whether `device` may be in the group now.
    pub fn access(&self, device: &str) -> DeviceAccess<'_> {
        match self.devices.get(device) {
            Some(DeviceEntry {
                revocation: Some(_),
                ..
            }) => DeviceAccess::Revoked,
            Some(DeviceEntry {
                admission: Some((a, _)),
                ..
            }) => DeviceAccess::Admitted(a),
            _ => DeviceAccess::NotAdmitted,
        }
    }

    /// Narrows the sharing rules' `mode` for `collection` with `peer` by the
    /// peer's standing: nothing flows with a device not admitted or revoked;
    /// nothing is received from one that may not write the collection. The
    /// devices collection itself flows whatever the rules say, narrowed the
    /// same way.
    pub fn restrict(&self, peer: &str, collection: &CollectionName, mode: ShareMode) -> ShareMode {
        let mode = if collection.as_str() == DEVICES_COLLECTION {
            ShareMode::Both
        } else {
            mode
        };
        match self.access(peer) {
            DeviceAccess::NotAdmitted | DeviceAccess::Revoked => ShareMode::None,
            DeviceAccess::Admitted(a) if a.writes(collection) => mode,
            DeviceAccess::Admitted(_) => match mode {
                ShareMode::Both | ShareMode::Send => ShareMode::Send,
                ShareMode::Receive | ShareMode::None => ShareMode::None,
            },
        }
    }

    /// Whether this node (`own` peer id) may write `collection` locally:
    /// refused only for a device admitted read-only there.
    pub fn local_write_allowed(&self, own: &str, collection: &CollectionName) -> bool {
        match self.access(own) {
            DeviceAccess::Admitted(a) => a.writes(collection),
            DeviceAccess::NotAdmitted | DeviceAccess::Revoked => true,
        }
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
