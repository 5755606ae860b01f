//! The keys that sign device statements: the group owner's ed25519 signing
//! key ([`OwnerKey`]), the public half every device checks signatures with
//! ([`IssuerKey`]), and the owner key's printable recovery code.
//!
//! Signatures are ed25519-dalek's (deterministic, verified strictly); this
//! file owns no cryptography of its own and never makes randomness: a new
//! key's seed comes in from the caller.

use crate::sync::auth::{parse_hex, to_hex};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a key or a recovery code could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a recovery code (wrong prefix, length or digits).
    #[error("not an owner recovery code (expected shoal-owner: and 16 groups of 4 hex digits)")]
    BadCode,
    /// The code's check digits do not match: a digit was mistyped.
    #[error("the recovery code's check digits do not match (a digit was mistyped)")]
    BadCheck,
    /// The text is not 64 hex digits of a public key.
    #[error("not a public key (expected 64 hex digits)")]
    BadPublicKey,
}

/// The public key a statement is signed under: the owner's, or an admin
/// device's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IssuerKey(pub [u8; 32]);

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerKey({})", self.to_hex())
    }
}

impl IssuerKey {
    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        parse_hex::<32>(text)
            .map(Self)
            .ok_or(KeyError::BadPublicKey)
    }

    /// A short fingerprint for display (the first 16 hex digits).
    pub fn short(&self) -> String {
        self.to_hex()[..16].to_string()
    }

    /// Checks `signature` over `message` strictly (no malleable encodings,
    /// no small-order keys).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        key.verify_strict(message, &signature).is_ok()
    }
}

/// An ed25519 signing key: the group owner's, or an admin device's own.
#[derive(Clone)]
pub struct OwnerKey(ed25519_dalek::SigningKey);

impl fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerKey(public {})", self.public().short())
    }
}

impl PartialEq for OwnerKey {
    fn eq(&self, other: &Self) -> bool {
        self.public() == other.public()
    }
}

impl Eq for OwnerKey {}

/// The recovery code's prefix.
const CODE_PREFIX: &str = "shoal-owner:";

impl OwnerKey {
    /// The key with this 32-byte seed (fresh secret random bytes from the
    /// caller for a new key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed (secret).
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> IssuerKey {
        IssuerKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message` (deterministic).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.0.sign(message).to_bytes()
    }

    /// The printable recovery code: `shoal-owner:` then the seed as 16
    /// groups of 4 hex digits and a group of 4 check digits (BLAKE3 of the
    /// seed), dash-separated. Secret: whoever holds it can admit devices.
    pub fn recovery_code(&self) -> String {
        let seed = self.seed();
        let digits = to_hex(&seed) + &to_hex(&check(&seed));
        let groups: Vec<&str> = (0..digits.len())
            .step_by(4)
            .map(|i| &digits[i..i + 4])
            .collect();
        format!("{CODE_PREFIX}{}", groups.join("-"))
    }

    /// Reads a code written by [`OwnerKey::recovery_code`]; white space and
    /// dashes anywhere after the prefix are ignored, letters in any case.
    pub fn from_recovery_code(text: &str) -> Result<Self, KeyError> {
        let body = text
            .trim()
            .strip_prefix(CODE_PREFIX)
            .ok_or(KeyError::BadCode)?;
        let digits: String = body
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let all = parse_hex::<34>(&digits).ok_or(KeyError::BadCode)?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&all[..32]);
        if all[32..] != check(&seed) {
            return Err(KeyError::BadCheck);
        }
        Ok(Self::from_seed(seed))
    }
}

fn check(seed: &[u8; 32]) -> [u8; 2] {
    let hash = blake3::derive_key("shoal owner recovery code check v1", seed);
    [hash[0], hash[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovery_code_round_trips_and_catches_a_typo() {
        let key = OwnerKey::from_seed([9; 32]);
        let code = key.recovery_code();
        assert!(code.starts_with("shoal-owner:0909-"));
        assert_eq!(OwnerKey::from_recovery_code(&code).unwrap(), key);
        let spaced = code
            .replace('-', " ")
            .to_uppercase()
            .replace("SHOAL OWNER:", "shoal-owner:");
        assert_eq!(OwnerKey::from_recovery_code(&spaced).unwrap(), key);
        let typo = code.replacen("0909", "0908", 1);
        assert_eq!(OwnerKey::from_recovery_code(&typo), Err(KeyError::BadCheck));
        assert_eq!(OwnerKey::from_recovery_code("0909"), Err(KeyError::BadCode));
        assert_eq!(
            OwnerKey::from_recovery_code("shoal-owner:12"),
            Err(KeyError::BadCode)
        );
    }

    #[test]
    fn public_keys_parse_back_and_signatures_verify() {
        let key = OwnerKey::from_seed([1; 32]);
        let public = key.public();
        assert_eq!(IssuerKey::from_hex(&public.to_hex()).unwrap(), public);
        assert_eq!(IssuerKey::from_hex("zz"), Err(KeyError::BadPublicKey));
        let sig = key.sign(b"hello");
        assert!(public.verify(b"hello", &sig));
        assert!(!public.verify(b"hellp", &sig));
        assert!(!OwnerKey::from_seed([2; 32]).public().verify(b"hello", &sig));
        assert!(!public.verify(b"hello", &sig[..63]));
    }
}
