//! Identifier newtypes: collection names, record ids, field names, site ids,
//! and the deterministic-id helper.
//!
//! Every constructor validates and refuses; nothing here ever rewrites an input
//! into something "close enough". These types own naming rules only — not
//! storage keys or wire layout.
//!
//! Names and ids are shared, not copied, when cloned (`Arc<str>`): a batch
//! from a peer names a record's collection and id once per slot version, and
//! copying them was a third of decoding a catch-up batch.

use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest record id, in bytes.
pub const MAX_RECORD_ID_LEN: usize = 128;
/// Longest collection name, in bytes.
pub const MAX_COLLECTION_LEN: usize = 64;
/// Longest field name, in bytes.
pub const MAX_FIELD_LEN: usize = 128;
/// Longest map-entry key, in bytes.
pub const MAX_MAP_KEY_LEN: usize = 128;

/// A validated collection name: 1–64 bytes of `[A-Za-z0-9_-]`, starting with a letter.
///
/// ```
/// use shoal_core::CollectionName;
/// assert!(CollectionName::new("tasks").is_ok());
/// assert!(CollectionName::new("9lives").is_err());
/// assert!(CollectionName::new("with space").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CollectionName(Arc<str>);

impl CollectionName {
    /// Validates `name` as a collection name.
    pub fn new(name: impl Into<String>) -> Result<Self, CoreError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > MAX_COLLECTION_LEN {
            Some("longer than 64 bytes")
        } else if !name.as_bytes()[0].is_ascii_alphabetic() {
            Some("must start with a letter")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Some("only A-Z, a-z, 0-9, '_' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidCollectionName { name, reason }),
            None => Ok(Self(name.into())),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated record id: 1–128 bytes of `[A-Za-z0-9._:-]`.
///
/// ```
/// use shoal_core::RecordId;
/// assert!(RecordId::new("task:42").is_ok());
/// assert!(RecordId::new("").is_err());
/// assert!(RecordId::new("a/b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordId(Arc<str>);

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

impl RecordId {
    /// Validates `id` as a record id.
    pub fn new(id: impl Into<String>) -> Result<Self, CoreError> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("must not be empty")
        } else if id.len() > MAX_RECORD_ID_LEN {
            Some("longer than 128 bytes")
        } else if !id.bytes().all(is_id_byte) {
            Some("only A-Z, a-z, 0-9, '.', '_', ':' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidRecordId { id, reason }),
            None => Ok(Self(id.into())),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Derives the id of a record that *belongs to* an owner, identically on every
/// machine, so that two replicas creating "the collection of universe X" while
/// disconnected converge on one record instead of two.
///
/// The id is `prefix:` followed by 32 hex digits of BLAKE3(`prefix`, `owner`).
///
/// ```
/// use shoal_core::derive_id;
/// let a = derive_id("collection", "universe-7").unwrap();
/// let b = derive_id("collection", "universe-7").unwrap();
/// assert_eq!(a, b);
/// assert!(a.as_str().starts_with("collection:"));
/// assert_ne!(a, derive_id("collection", "universe-8").unwrap());
/// ```
pub fn derive_id(prefix: &str, owner: &str) -> Result<RecordId, CoreError> {
    let mut hasher = blake3::Hasher::new_derive_key("shoal derive_id v1");
    hasher.update(&(prefix.len() as u64).to_le_bytes());
    hasher.update(prefix.as_bytes());
    hasher.update(owner.as_bytes());
    let hash = hasher.finalize();
    let hex = hash.to_hex();
    RecordId::new(format!("{prefix}:{}", &hex.as_str()[..32]))
}

/// A validated field name: 1–128 bytes of UTF-8 without control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldName(Arc<str>);

impl FieldName {
    /// Validates `name` as a field name.
    pub fn new(name: impl AsRef<str>) -> Result<Self, CoreError> {
        // Checked as a slice and copied once, into the shared string (a
        // write names every field of every record it plans).
        let name = name.as_ref();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > MAX_FIELD_LEN {
            Some("longer than 128 bytes")
        } else if has_control(name) {
            Some("control characters are not allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidFieldName {
                name: name.to_owned(),
                reason,
            }),
            None => Ok(Self(Arc::from(name))),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` holds a control character (`char::is_control`), looked
/// for byte by byte while the name is ASCII, as nearly every field name
/// is: decoding each character was a measurable part of planning a write.
fn has_control(name: &str) -> bool {
    if name.is_ascii() {
        name.bytes().any(|b| b.is_ascii_control())
    } else {
        name.chars().any(char::is_control)
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = CoreError;
            fn try_from(s: String) -> Result<Self, CoreError> {
                Self::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0.as_ref().to_owned()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self, CoreError> {
                Self::new(s)
            }
        }
    };
}
string_newtype_impls!(CollectionName);
string_newtype_impls!(RecordId);
string_newtype_impls!(FieldName);

/// The stable id of a replica, used as the tie-break in clock order.
///
/// Derived from the node's public identity (see [`SiteId::from_identity`]), so
/// it survives restarts and is the same wherever the node's key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SiteId(pub u64);

impl SiteId {
    /// Derives a site id from the bytes of a node's public identity (its peer id).
    pub fn from_identity(public_identity: &[u8]) -> Self {
        let hash = blake3::derive_key("shoal site id v1", public_identity);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        Self(u64::from_be_bytes(first))
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_control_check_agrees_with_char_is_control() {
        let names = [
            "title",
            "a b",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "esc\u{1b}[",
            "~",
            "é",
            "next\u{85}line",
            "c1\u{9f}",
            "\u{a0}nbsp",
            "ok\u{2028}",
            "日本語",
        ];
        for name in names {
            assert_eq!(
                has_control(name),
                name.chars().any(char::is_control),
                "{name:?}"
            );
        }
        assert!(FieldName::new("del\u{7f}").is_err());
        assert!(FieldName::new("next\u{85}line").is_err());
        assert!(FieldName::new("é").is_ok());
    }

    #[test]
    fn record_id_limits() {
        assert!(RecordId::new("a".repeat(128)).is_ok());
        assert!(RecordId::new("a".repeat(129)).is_err());
        assert!(RecordId::new("é").is_err());
        assert!(RecordId::new("A-z_0.9:x").is_ok());
    }

    #[test]
    fn derive_id_separates_prefix_and_owner() {
        assert_ne!(derive_id("ab", "c").unwrap(), derive_id("a", "bc").unwrap());
        assert!(derive_id("bad prefix", "x").is_err());
    }

    #[test]
    fn serde_validates() {
        let bad: Result<RecordId, _> = serde_json::from_str("\"a b\"");
        assert!(bad.is_err());
        let good: RecordId = serde_json::from_str("\"ab\"").unwrap();
        assert_eq!(good.as_str(), "ab");
    }
}
