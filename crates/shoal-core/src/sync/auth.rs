//! Group membership: the group key (from a passphrase through Argon2id, or
//! generated), the handshake proofs bound to both peer ids and both nonces, and
//! the per-session MAC keys.
//!
//! Pure computation only: randomness comes in as arguments (nonces, generated
//! keys), so the handshake can be replayed deterministically in tests.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Salt for deriving a group key from a passphrase. Fixed, because every member
/// must derive the same key from the same passphrase without talking first.
const PASSPHRASE_SALT: &[u8] = b"shoal group key v1 (argon2id)";

/// The secret that defines a group. Whoever holds it is a member.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKey([u8; 32]);

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

/// Why a group key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupKeyError {
    /// The passphrase is too short to resist guessing.
    #[error("passphrase must be at least 8 characters")]
    PassphraseTooShort,
    /// The key text is not 64 hex digits.
    #[error("group key must be 64 hex digits")]
    BadKeyText,
    /// Argon2 refused its parameters (should not happen).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

impl GroupKey {
    /// Derives the key from a passphrase with Argon2id (19 MiB, 2 passes).
    pub fn from_passphrase(passphrase: &str) -> Result<Self, GroupKeyError> {
        if passphrase.chars().count() < 8 {
            return Err(GroupKeyError::PassphraseTooShort);
        }
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase.as_bytes(), PASSPHRASE_SALT, &mut key)
            .map_err(|e| GroupKeyError::Kdf(e.to_string()))?;
        Ok(Self(key))
    }

    /// Uses 32 random bytes (from the caller's random source) as the key.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses a key written by [`GroupKey::to_hex`].
    pub fn from_hex(text: &str) -> Result<Self, GroupKeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(GroupKeyError::BadKeyText);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| GroupKeyError::BadKeyText)?;
        }
        Ok(Self(key))
    }

    /// The key as 64 hex digits (secret: show only in invite codes).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Keyed BLAKE3 under a key derived from the group key for `context`, over
    /// length-prefixed `parts`. Shared with the blob protocol's key derivation.
    pub(crate) fn mac(&self, context: &str, parts: &[&[u8]]) -> [u8; 32] {
        let key = blake3::derive_key(context, &self.0);
        let mut hasher = blake3::Hasher::new_keyed(&key);
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// Which end of a connection a session is: the dialer or the listener. The
/// two proofs differ by role, so a proof cannot be reflected back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We opened the connection.
    Dialer,
    /// The peer opened the connection.
    Listener,
}

/// The handshake transcript both sides agree on: the peer ids as the transport
/// authenticated them and the nonces each side sent.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The dialer's peer id bytes.
    pub dialer: Vec<u8>,
    /// The listener's peer id bytes.
    pub listener: Vec<u8>,
    /// The dialer's nonce.
    pub dialer_nonce: [u8; 32],
    /// The listener's nonce.
    pub listener_nonce: [u8; 32],
}

impl Transcript {
    /// The proof the side in `role` sends.
    pub fn proof(&self, key: &GroupKey, role: Role) -> [u8; 32] {
        let label: &[u8] = match role {
            Role::Dialer => b"dialer",
            Role::Listener => b"listener",
        };
        key.mac(
            "shoal handshake proof v1",
            &[
                label,
                &self.dialer,
                &self.listener,
                &self.dialer_nonce,
                &self.listener_nonce,
            ],
        )
    }

    /// Checks the peer's proof in constant time.
    pub fn verify(&self, key: &GroupKey, peer_role: Role, proof: &[u8; 32]) -> bool {
        blake3::Hash::from(self.proof(key, peer_role)) == blake3::Hash::from(*proof)
    }

    /// The key that MACs every frame the side in `role` sends in this session.
    pub fn frame_key(&self, key: &GroupKey, role: Role) -> FrameKey {
        let label: &[u8] = match role {
            Role::Dialer => b"dialer frames",
            Role::Listener => b"listener frames",
        };
        FrameKey(key.mac(
            "shoal frame key v1",
            &[
                label,
                &self.dialer,
                &self.listener,
                &self.dialer_nonce,
                &self.listener_nonce,
            ],
        ))
    }
}

/// A per-session, per-direction MAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameKey([u8; 32]);

impl fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameKey(..)")
    }
}

impl FrameKey {
    /// MAC over a frame's sequence number and exact body bytes.
    pub fn mac(&self, seq: u64, body: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(&seq.to_le_bytes());
        hasher.update(body);
        *hasher.finalize().as_bytes()
    }

    /// Checks a frame's MAC in constant time.
    pub fn verify(&self, seq: u64, body: &[u8], mac: &[u8; 32]) -> bool {
        blake3::Hash::from(self.mac(seq, body)) == blake3::Hash::from(*mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> Transcript {
        Transcript {
            dialer: b"peer-a".to_vec(),
            listener: b"peer-b".to_vec(),
            dialer_nonce: [1; 32],
            listener_nonce: [2; 32],
        }
    }

    #[test]
    fn proofs_verify_only_with_the_same_key_role_and_peers() {
        let key = GroupKey::from_random([7; 32]);
        let t = transcript();
        let proof = t.proof(&key, Role::Dialer);
        assert!(t.verify(&key, Role::Dialer, &proof));
        assert!(!t.verify(&key, Role::Listener, &proof), "not reflectable");
        assert!(!t.verify(&GroupKey::from_random([8; 32]), Role::Dialer, &proof));
        let mut other = t.clone();
        other.listener = b"peer-c".to_vec();
        assert!(
            !other.verify(&key, Role::Dialer, &proof),
            "bound to both peer ids"
        );
    }

    #[test]
    fn passphrase_and_hex_keys() {
        assert_eq!(
            GroupKey::from_passphrase("short"),
            Err(GroupKeyError::PassphraseTooShort)
        );
        let a = GroupKey::from_passphrase("correct horse battery").unwrap();
        assert_eq!(
            a,
            GroupKey::from_passphrase("correct horse battery").unwrap()
        );
        assert_ne!(
            a,
            GroupKey::from_passphrase("correct horse battery!").unwrap()
        );
        assert_eq!(GroupKey::from_hex(&a.to_hex()).unwrap(), a);
        assert!(GroupKey::from_hex("zz").is_err());
    }

    #[test]
    fn frame_macs_cover_sequence_and_body() {
        let k = transcript().frame_key(&GroupKey::from_random([3; 32]), Role::Dialer);
        let mac = k.mac(5, b"body");
        assert!(k.verify(5, b"body", &mac));
        assert!(!k.verify(6, b"body", &mac));
        assert!(!k.verify(5, b"bodz", &mac));
    }
}
