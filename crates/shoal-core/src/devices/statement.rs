//! Signed device statements: an [`Admission`] (a device's peer id, its role,
//! per-collection roles, when it was admitted) or a [`Revocation`], signed
//! by an issuer key, and their text form as stored in a record of the
//! reserved devices collection.
//!
//! A statement is bound to the record that holds it: its record id is
//! derived from its content ([`Statement::record_id`]) and checked on
//! reading, so a statement copied into another record is refused. This file
//! only encodes, signs and checks one statement; which issuers count and
//! what a set of statements means is `registry.rs`'s.

use super::keys::{IssuerKey, OwnerKey};
use crate::ids::CollectionName;
use crate::sync::auth::to_hex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A device's role in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DeviceRole {
    /// A member that may also admit and revoke devices (not other admins),
    /// signing with its own device key. Only the owner makes admins.
    Admin,
    /// Reads and writes every collection (unless a collection says otherwise).
    Member,
    /// Receives, sends nothing: members accept no change from it.
    ReadOnly,
}

impl DeviceRole {
    /// The role's name (`admin`, `member`, `read-only`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Admin => "admin",
            DeviceRole::Member => "member",
            DeviceRole::ReadOnly => "read-only",
        }
    }

    /// Whether a device in this role may write (send changes).
    pub fn writes(self) -> bool {
        match self {
            DeviceRole::Admin | DeviceRole::Member => true,
            DeviceRole::ReadOnly => false,
        }
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(DeviceRole::Admin),
            "member" => Ok(DeviceRole::Member),
            "read-only" | "readonly" => Ok(DeviceRole::ReadOnly),
            other => Err(format!(
                "unknown role {other:?} (expected member, read-only or admin)"
            )),
        }
    }
}

/// A per-collection role, overriding the device's role for one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CollectionRole {
    /// Reads and writes the collection.
    Member,
    /// Reads the collection only.
    ReadOnly,
}

impl CollectionRole {
    /// The role's name (`member`, `read-only`).
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionRole::Member => "member",
            CollectionRole::ReadOnly => "read-only",
        }
    }
}

impl FromStr for CollectionRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(CollectionRole::Member),
            "read-only" | "readonly" => Ok(CollectionRole::ReadOnly),
            other => Err(format!(
                "unknown collection role {other:?} (expected member or read-only)"
            )),
        }
    }
}

/// "This device is in the group, in this role, since then."
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Admission {
    /// The device's peer id (text).
    pub device: String,
    /// Its role.
    pub role: DeviceRole,
    /// Per-collection roles that override `role` for those collections.
    pub collections: BTreeMap<CollectionName, CollectionRole>,
    /// When it was admitted (wall milliseconds, the issuer's clock); a
    /// newer admission of the same device replaces an older one.
    pub admitted_ms: u64,
    /// The device's own ed25519 public key, for an admin (it signs with it).
    pub device_key: Option<IssuerKey>,
    /// A name to show (e.g. "kitchen tablet"), at most 64 bytes.
    pub name: String,
}

impl Admission {
    /// The device's role for `collection` (its override, else its role).
    pub fn writes(&self, collection: &CollectionName) -> bool {
        match self.collections.get(collection) {
            Some(CollectionRole::Member) => true,
            Some(CollectionRole::ReadOnly) => false,
            None => self.role.writes(),
        }
    }
}

/// "This device is no longer in the group" — final for that peer id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The device's peer id (text).
    pub device: String,
    /// When (wall milliseconds, the issuer's clock).
    pub revoked_ms: u64,
}

/// What a signed statement says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statement {
    /// A device is admitted (or its role changed).
    Admit(Admission),
    /// A device is revoked.
    Revoke(Revocation),
}

impl Statement {
    /// The device the statement is about.
    pub fn device(&self) -> &str {
        match self {
            Statement::Admit(a) => &a.device,
            Statement::Revoke(r) => &r.device,
        }
    }

    /// The id of the record that holds it: `adm.<peer>.<ms>` for an
    /// admission (every admission keeps its own record, so none overwrites
    /// another), `rev.<peer>` for a revocation.
    pub fn record_id(&self) -> String {
        match self {
            Statement::Admit(a) => format!("adm.{}.{}", a.device, a.admitted_ms),
            Statement::Revoke(r) => format!("rev.{}", r.device),
        }
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = b"shoal device statement v1\0".to_vec();
        out.extend(postcard::to_allocvec(self).expect("statements always encode"));
        out
    }

    /// Signs the statement with `key`.
    pub fn sign(self, key: &OwnerKey) -> Signed {
        let signature = key.sign(&self.signed_bytes()).to_vec();
        Signed {
            statement: self,
            issuer: key.public(),
            signature,
        }
    }
}

/// A statement with its issuer and signature, as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// What is stated.
    pub statement: Statement,
    /// Who signed it.
    pub issuer: IssuerKey,
    /// The ed25519 signature over the statement (64 bytes).
    pub signature: Vec<u8>,
}

/// Why a stored statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The text is not a statement.
    #[error("not a device statement")]
    Malformed,
    /// The signature does not verify under the named issuer.
    #[error("bad signature")]
    BadSignature,
    /// The statement sits in a record whose id it does not name.
    #[error("statement stored under the wrong record id")]
    WrongRecord,
    /// Signed by a key that is neither the owner's nor a current admin's
    /// (or an admin issued what only the owner may).
    #[error("signed by a key that may not issue it")]
    UnknownIssuer,
    /// A field is out of bounds (a name over 64 bytes).
    #[error("a field is out of bounds")]
    OutOfBounds,
}

/// The text prefix of a stored statement.
const TEXT_PREFIX: &str = "shoal-device1:";
/// Longest statement text accepted, in bytes.
pub const MAX_STATEMENT_TEXT: usize = 16 * 1024;
/// Longest device name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

impl Signed {
    /// The text stored in the record's `statement` field.
    pub fn to_text(&self) -> String {
        let bytes = postcard::to_allocvec(self).expect("statements always encode");
        format!("{TEXT_PREFIX}{}", to_hex(&bytes))
    }

    /// Reads and checks a statement stored in record `record_id`: its form,
    /// bounds, signature under its named issuer, and that it belongs in this
    /// record. Whether the issuer may issue it is the registry's question.
    pub fn from_text(record_id: &str, text: &str) -> Result<Self, StatementError> {
        if text.len() > MAX_STATEMENT_TEXT {
            return Err(StatementError::Malformed);
        }
        let digits = text
            .strip_prefix(TEXT_PREFIX)
            .ok_or(StatementError::Malformed)?;
        if digits.len() % 2 != 0 {
            return Err(StatementError::Malformed);
        }
        let bytes = digits
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(StatementError::Malformed)?;
        let signed: Signed = postcard::from_bytes(&bytes).map_err(|_| StatementError::Malformed)?;
        if let Statement::Admit(a) = &signed.statement
            && a.name.len() > MAX_NAME_LEN
        {
            return Err(StatementError::OutOfBounds);
        }
        if !signed
            .issuer
            .verify(&signed.statement.signed_bytes(), &signed.signature)
        {
            return Err(StatementError::BadSignature);
        }
        if signed.statement.record_id() != record_id {
            return Err(StatementError::WrongRecord);
        }
        Ok(signed)
    }
}
