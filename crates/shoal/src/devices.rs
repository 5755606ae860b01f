//! Devices and roles (issue 19) for apps, the daemon and the CLI: making a
//! group's owner key (and admitting the peers this node already knows),
//! admitting, re-roling and revoking devices with a signing key, the list
//! of devices and waiting requests, and the check a session runs as a peer
//! authenticates.
//!
//! Statements are signed here (by the core) and written like any local
//! write, so they replicate on every sync path; what they mean is
//! `shoal_core::devices`'s. Keeping the owner key's file is the caller's.

use crate::error::Error;
use crate::now_ms;
use crate::store::Store;
use serde::Serialize;
use shoal_core::CollectionName;
use shoal_core::devices::{Admission, DeviceAccess, Revocation, Statement};
pub use shoal_core::devices::{
    CollectionRole, DEVICES_COLLECTION, DeviceRole, IssuerKey, KeyError, OwnerKey,
};
use shoal_core::sync::Rejection;
pub use shoal_net::DeviceCheck;
use shoal_net::PeerId;
use shoal_store::{StoreError, owner_op, statement_op};
use std::collections::BTreeMap;

/// Where a device stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceStatus {
    /// Admitted and not revoked.
    Admitted,
    /// Revoked.
    Revoked,
    /// Asked (proved the group secret) and waits for approval.
    Pending,
}

/// One device as `shoal devices` and the API list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Its peer id.
    pub peer: String,
    /// Where it stands.
    pub status: DeviceStatus,
    /// Its role (`None` while pending).
    pub role: Option<String>,
    /// Per-collection roles overriding it.
    pub collections: BTreeMap<String, String>,
    /// Its name, if it was given one.
    pub name: String,
    /// When it was admitted (wall ms).
    pub admitted_ms: Option<u64>,
    /// When it was revoked (wall ms).
    pub revoked_ms: Option<u64>,
    /// When a pending device last asked (wall ms).
    pub requested_ms: Option<u64>,
    /// Who signed its admission: `owner`, or the admin key's fingerprint.
    pub signed_by: Option<String>,
    /// Whether this is the node itself.
    pub this_device: bool,
}

/// The group's devices as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicesReport {
    /// The owner key's fingerprint (`None`: the group has no owner, and
    /// every holder of the group secret is a member, as before devices).
    pub owner: Option<String>,
    /// Every device: admitted, revoked and pending.
    pub devices: Vec<DeviceInfo>,
    /// Statements refused (record id and why): forged, unsigned, misplaced.
    pub refused: Vec<(String, String)>,
}

/// The ed25519 public key inside an ed25519 peer id (admins sign with it).
pub fn peer_signing_key(peer: &PeerId) -> Option<IssuerKey> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    let public = libp2p_identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    Some(IssuerKey(public.try_into_ed25519().ok()?.to_bytes()))
}

fn devices_error(message: impl Into<String>) -> Error {
    Error::Store(StoreError::Devices(message.into()))
}

impl Store {
    /// This node's own signing key, as an admin device signs statements.
    pub fn device_key(&self) -> Result<OwnerKey, Error> {
        let keypair = self.db().identity().keypair().clone();
        let ed = keypair
            .try_into_ed25519()
            .map_err(|_| devices_error("this node's key is not ed25519"))?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(ed.secret().as_ref());
        Ok(OwnerKey::from_seed(seed))
    }

    /// Makes `key` this group's owner key: pins it, writes the owner record
    /// and admits as members this node, every peer it has synced with and
    /// `also`, so an existing group keeps working. Refused if the group
    /// already has another owner. Returns the peers admitted.
    pub fn make_owner(&self, key: &OwnerKey, also: &[PeerId]) -> Result<Vec<PeerId>, Error> {
        self.with_db(|db| db.pin_device_owner(key.public()))?;
        let own: PeerId = self.db().identity().peer_id();
        let mut known: Vec<PeerId> = self
            .with_db(|db| db.synced_peers())?
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        known.extend(also.iter().copied());
        known.sort();
        known.dedup();
        let mut admitted = Vec::new();
        let mut ops = vec![owner_op(key.public())?];
        let registry = self.with_db(|db| db.device_registry())?;
        for peer in std::iter::once(&own).chain(known.iter()) {
            let standing = registry.as_ref().map(|r| r.access(&peer.to_string()));
            if matches!(
                standing,
                Some(DeviceAccess::Admitted(_)) | Some(DeviceAccess::Revoked)
            ) {
                continue;
            }
            let admission = Admission {
                device: peer.to_string(),
                role: DeviceRole::Member,
                collections: BTreeMap::new(),
                admitted_ms: now_ms(),
                device_key: None,
                name: String::new(),
            };
            ops.push(statement_op(&Statement::Admit(admission).sign(key))?);
            admitted.push(*peer);
        }
        self.write(ops)?;
        Ok(admitted)
    }

    /// Admits `peer` (or changes its role) with `role` and per-collection
    /// `collections` roles, signed by `key` (the owner's, or this admin
    /// node's own [`Store::device_key`]). Refused for a revoked device.
    pub fn admit_device(
        &self,
        key: &OwnerKey,
        peer: &PeerId,
        role: DeviceRole,
        collections: BTreeMap<CollectionName, CollectionRole>,
        name: &str,
    ) -> Result<(), Error> {
        let registry = self
            .with_db(|db| db.device_registry())?
            .ok_or_else(|| devices_error("this group has no owner key yet: run `shoal devices owner-key create` on the owner's machine first"))?;
        if registry.access(&peer.to_string()) == DeviceAccess::Revoked {
            return Err(devices_error(format!(
                "device {peer} was revoked; a revoked device cannot be admitted again (make it a new identity)"
            )));
        }
        if key.public() != registry.owner() && role == DeviceRole::Admin {
            return Err(devices_error("only the owner key makes admins"));
        }
        if name.len() > shoal_core::devices::MAX_NAME_LEN {
            return Err(devices_error("a device name is at most 64 bytes"));
        }
        let device_key = match role {
            DeviceRole::Admin => Some(
                peer_signing_key(peer)
                    .ok_or_else(|| devices_error("an admin's peer id must carry an ed25519 key"))?,
            ),
            DeviceRole::Member | DeviceRole::ReadOnly => None,
        };
        // Strictly newer than any admission it has, whatever the clocks say.
        let after = registry
            .devices()
            .get(&peer.to_string())
            .and_then(|e| e.admission.as_ref())
            .map_or(0, |(a, _)| a.admitted_ms + 1);
        let admission = Admission {
            device: peer.to_string(),
            role,
            collections,
            admitted_ms: now_ms().max(after),
            device_key,
            name: name.to_string(),
        };
        self.issue(key, Statement::Admit(admission), &registry)?;
        self.with_db(|db| db.forget_device_request(&peer.to_string()))?;
        Ok(())
    }

    /// Revokes `peer` for good, signed by `key`.
    pub fn revoke_device(&self, key: &OwnerKey, peer: &PeerId) -> Result<(), Error> {
        let registry = self
            .with_db(|db| db.device_registry())?
            .ok_or_else(|| devices_error("this group has no owner key: there is nothing to revoke (every holder of the secret is a member)"))?;
        if *peer == self.db().identity().peer_id() {
            return Err(devices_error("a device cannot revoke itself"));
        }
        let revocation = Revocation {
            device: peer.to_string(),
            revoked_ms: now_ms(),
        };
        self.issue(key, Statement::Revoke(revocation), &registry)?;
        self.with_db(|db| db.forget_device_request(&peer.to_string()))?;
        Ok(())
    }

    /// Signs and writes `statement`, refusing a key that is neither the
    /// owner's nor a current admin's (the registry would not count it).
    fn issue(
        &self,
        key: &OwnerKey,
        statement: Statement,
        registry: &shoal_core::devices::Registry,
    ) -> Result<(), Error> {
        let admin = registry.devices().values().any(|e| {
            e.revocation.is_none()
                && e.admission.as_ref().is_some_and(|(a, _)| {
                    a.role == DeviceRole::Admin && a.device_key == Some(key.public())
                })
        });
        if key.public() != registry.owner() && !admin {
            return Err(devices_error(
                "this key may not sign device statements: use the owner key (import its recovery code) or an admin device",
            ));
        }
        let signed = statement.sign(key);
        self.write(vec![statement_op(&signed)?])?;
        Ok(())
    }

    /// What a sync session decides as `peer` authenticates: allowed, or
    /// refused as not admitted (the request is noted) or revoked. This is
    /// the whole cost the admission check adds to a connection (a cached
    /// registry read), which `shoal-bench` can time.
    pub fn admission_check(&self, peer: &PeerId) -> Result<DeviceCheck, Error> {
        check(self, peer)
    }

    /// The group's devices, admitted, revoked and pending.
    pub fn devices(&self) -> Result<DevicesReport, Error> {
        let (registry, requests, own) = self.with_db(|db| {
            Ok((
                db.device_registry()?,
                db.device_requests()?,
                db.identity().peer_id().to_string(),
            ))
        })?;
        let Some(registry) = registry else {
            return Ok(DevicesReport {
                owner: None,
                devices: Vec::new(),
                refused: Vec::new(),
            });
        };
        let owner = registry.owner();
        let mut devices: Vec<DeviceInfo> = registry
            .devices()
            .iter()
            .map(|(peer, entry)| {
                let admission = entry.admission.as_ref();
                DeviceInfo {
                    peer: peer.clone(),
                    status: match registry.access(peer) {
                        DeviceAccess::Admitted(_) => DeviceStatus::Admitted,
                        DeviceAccess::Revoked => DeviceStatus::Revoked,
                        DeviceAccess::NotAdmitted => DeviceStatus::Pending,
                    },
                    role: admission.map(|(a, _)| a.role.to_string()),
                    collections: admission
                        .map(|(a, _)| {
                            a.collections
                                .iter()
                                .map(|(c, r)| (c.to_string(), r.as_str().to_string()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    name: admission.map(|(a, _)| a.name.clone()).unwrap_or_default(),
                    admitted_ms: admission.map(|(a, _)| a.admitted_ms),
                    revoked_ms: entry.revocation.as_ref().map(|r| r.revoked_ms),
                    requested_ms: None,
                    signed_by: admission.map(|(_, issuer)| {
                        if *issuer == owner {
                            "owner".to_string()
                        } else {
                            format!("admin {}", issuer.short())
                        }
                    }),
                    this_device: *peer == own,
                }
            })
            .collect();
        for request in requests {
            if registry.devices().contains_key(&request.peer) {
                continue;
            }
            devices.push(DeviceInfo {
                this_device: request.peer == own,
                peer: request.peer,
                status: DeviceStatus::Pending,
                role: None,
                collections: BTreeMap::new(),
                name: String::new(),
                admitted_ms: None,
                revoked_ms: None,
                requested_ms: Some(request.last_ms),
                signed_by: None,
            });
        }
        Ok(DevicesReport {
            owner: Some(owner.short()),
            devices,
            refused: registry
                .refused()
                .iter()
                .map(|(id, e)| (id.clone(), e.to_string()))
                .collect(),
        })
    }
}

/// The session's check of an authenticated peer (see [`shoal_net::Replica::device_check`]).
pub(crate) fn check(store: &Store, peer: &PeerId) -> Result<DeviceCheck, Error> {
    let text = peer.to_string();
    store.with_db(|db| {
        let Some(registry) = db.device_registry()? else {
            return Ok(DeviceCheck::Allowed);
        };
        Ok(match registry.access(&text) {
            DeviceAccess::Admitted(_) => DeviceCheck::Allowed,
            DeviceAccess::Revoked => DeviceCheck::Refused(Rejection::Revoked),
            DeviceAccess::NotAdmitted => {
                db.note_device_request(&text)?;
                DeviceCheck::Refused(Rejection::NotAdmitted)
            }
        })
    })
}
