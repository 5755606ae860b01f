//! Group membership: the group key (a passphrase stretched with Argon2id under
//! the group's own salt, or generated), the password-authenticated key
//! exchange (SPAKE2) every session runs with it, the key-confirmation proofs
//! bound to both peer ids, both nonces and both PAKE messages, and the
//! per-session, per-direction frame keys derived from the exchange's output.
//!
//! Nothing a side sends before the other has proved itself can be checked
//! against a guess of the key: a SPAKE2 message looks the same under every
//! password, and a confirmation is sent only once the peer confirmed first
//! (the order is the session's, see `session.rs`).
//!
//! Pure computation only: randomness comes in as arguments (seeds, generated
//! keys and salts), so a handshake can be replayed deterministically in tests.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use std::fmt;

/// The secret that defines a group. Whoever holds it is a member.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKey([u8; 32]);

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

/// The group's Argon2id salt: random per group (made with the group, carried
/// in its invite codes), so no guess can be tried against every group at once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupSalt([u8; 16]);

impl fmt::Debug for GroupSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupSalt({})", self.to_hex())
    }
}

/// Why a group key or salt could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupKeyError {
    /// The passphrase is too short to resist guessing.
    #[error("passphrase must be at least 8 characters")]
    PassphraseTooShort,
    /// The key text is not 64 hex digits.
    #[error("group key must be 64 hex digits")]
    BadKeyText,
    /// The salt text is not 32 hex digits.
    #[error("group salt must be 32 hex digits")]
    BadSaltText,
    /// Argon2 refused its parameters (should not happen).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// Parses exactly `N` bytes written as `2 * N` hex digits (surrounding white
/// space ignored); any other text, multi-byte characters included, is `None`.
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.trim().as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// `bytes` as lowercase hex digits.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl GroupSalt {
    /// Uses 16 random bytes (from the caller's random source) as the salt.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses a salt written by [`GroupSalt::to_hex`].
    pub fn from_hex(text: &str) -> Result<Self, GroupKeyError> {
        parse_hex(text).map(Self).ok_or(GroupKeyError::BadSaltText)
    }

    /// The salt as 32 hex digits (not secret).
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl GroupKey {
    /// Derives the key from a passphrase with Argon2id (19 MiB, 2 passes)
    /// under the group's salt.
    pub fn from_passphrase(passphrase: &str, salt: &GroupSalt) -> Result<Self, GroupKeyError> {
        if passphrase.chars().count() < 8 {
            return Err(GroupKeyError::PassphraseTooShort);
        }
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase.as_bytes(), &salt.0, &mut key)
            .map_err(|e| GroupKeyError::Kdf(e.to_string()))?;
        Ok(Self(key))
    }

    /// Uses 32 random bytes (from the caller's random source) as the key.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses a key written by [`GroupKey::to_hex`]: 64 hex digits, surrounding
    /// white space ignored. Anything else is [`GroupKeyError::BadKeyText`].
    pub fn from_hex(text: &str) -> Result<Self, GroupKeyError> {
        parse_hex(text).map(Self).ok_or(GroupKeyError::BadKeyText)
    }

    /// The key as 64 hex digits (secret: show only in invite codes).
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Keyed BLAKE3 under a key derived from the group key for `context`, over
    /// length-prefixed `parts`. Shared with the blob protocol's key derivation.
    pub(crate) fn mac(&self, context: &str, parts: &[&[u8]]) -> [u8; 32] {
        let key = blake3::derive_key(context, &self.0);
        keyed(&key, parts)
    }
}

/// Keyed BLAKE3 under `key` over length-prefixed `parts`.
fn keyed(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

/// Which end of a session a side is: the one that opened the sync stream
/// (dialer) or the one that accepted it (listener). The proofs and frame keys
/// differ by role, so nothing can be reflected back; the dialer confirms first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We opened the stream.
    Dialer,
    /// The peer opened the stream.
    Listener,
}

impl Role {
    /// The other side's role.
    pub fn peer(self) -> Role {
        match self {
            Role::Dialer => Role::Listener,
            Role::Listener => Role::Dialer,
        }
    }

    fn label(self) -> &'static [u8] {
        match self {
            Role::Dialer => b"dialer",
            Role::Listener => b"listener",
        }
    }
}

/// The public hello nonce a session sends, derived one-way from its secret
/// seed (the seed also drives the PAKE, so it must never be sent itself).
pub fn hello_nonce(seed: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key("shoal hello nonce v2", seed)
}

/// Why the key exchange could not be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PakeError {
    /// The peer's PAKE message is not a valid message from the other role.
    #[error("malformed PAKE message")]
    Malformed,
}

/// One side of a SPAKE2 exchange under the group key, bound to both peer ids.
pub struct Pake {
    state: Spake2<Ed25519Group>,
    message: Vec<u8>,
}

impl fmt::Debug for Pake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pake(..)")
    }
}

impl Pake {
    /// Starts the exchange for the side in `role` between `dialer` and
    /// `listener` (peer id bytes), with randomness from the secret `seed`.
    pub fn start(
        key: &GroupKey,
        role: Role,
        dialer: &[u8],
        listener: &[u8],
        seed: &[u8; 32],
    ) -> Self {
        let password = Password::new(key.0);
        let (a, b) = (Identity::new(dialer), Identity::new(listener));
        let rng = ChaCha20Rng::from_seed(blake3::derive_key("shoal pake seed v2", seed));
        let (state, message) = match role {
            Role::Dialer => Spake2::<Ed25519Group>::start_a_with_rng(&password, &a, &b, rng),
            Role::Listener => Spake2::<Ed25519Group>::start_b_with_rng(&password, &a, &b, rng),
        };
        Self { state, message }
    }

    /// The message to send the peer (33 bytes; reveals nothing testable).
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Finishes with the peer's message; the keys are bound to `transcript`,
    /// which must hold both messages.
    pub fn finish(
        self,
        peer_message: &[u8],
        transcript: &Transcript,
    ) -> Result<SessionKeys, PakeError> {
        let shared = self
            .state
            .finish(peer_message)
            .map_err(|_| PakeError::Malformed)?;
        let mut secret = blake3::Hasher::new_derive_key("shoal session secret v2");
        secret.update(&shared);
        secret.update(&transcript.hash());
        Ok(SessionKeys(*secret.finalize().as_bytes()))
    }
}

/// What both sides of a handshake saw: the peer ids as the transport
/// authenticated them, the nonces and the PAKE messages each side sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The dialer's peer id bytes.
    pub dialer: Vec<u8>,
    /// The listener's peer id bytes.
    pub listener: Vec<u8>,
    /// The dialer's hello nonce.
    pub dialer_nonce: [u8; 32],
    /// The listener's hello nonce.
    pub listener_nonce: [u8; 32],
    /// The dialer's PAKE message.
    pub dialer_pake: Vec<u8>,
    /// The listener's PAKE message.
    pub listener_pake: Vec<u8>,
}

impl Transcript {
    fn hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key("shoal handshake transcript v2");
        for part in [
            &self.dialer[..],
            &self.listener,
            &self.dialer_nonce,
            &self.listener_nonce,
            &self.dialer_pake,
            &self.listener_pake,
        ] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// The secret one finished key exchange yields: source of both sides'
/// confirmation proofs and frame keys. Both sides hold the same one only if
/// both used the same group key (and saw the same transcript).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys([u8; 32]);

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// Keys from a raw session secret (tests of the frame codec).
    #[cfg(test)]
    pub(crate) fn from_secret(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    /// The key-confirmation proof the side in `role` sends.
    pub fn proof(&self, role: Role) -> [u8; 32] {
        keyed(&self.0, &[b"shoal key confirmation v2", role.label()])
    }

    /// Checks the peer's proof (it is in `peer_role`) in constant time.
    pub fn verify(&self, peer_role: Role, proof: &[u8; 32]) -> bool {
        blake3::Hash::from(self.proof(peer_role)) == blake3::Hash::from(*proof)
    }

    /// The key that MACs every frame the side in `role` sends in this session.
    pub fn frame_key(&self, role: Role) -> FrameKey {
        FrameKey(keyed(&self.0, &[b"shoal frame key v2", role.label()]))
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

    /// Runs both sides of the exchange; returns (dialer's, listener's) keys.
    fn exchange(dialer_key: &GroupKey, listener_key: &GroupKey) -> (SessionKeys, SessionKeys) {
        let (d, l) = (b"peer-a".as_slice(), b"peer-b".as_slice());
        let a = Pake::start(dialer_key, Role::Dialer, d, l, &[1; 32]);
        let b = Pake::start(listener_key, Role::Listener, d, l, &[2; 32]);
        let t = Transcript {
            dialer: d.to_vec(),
            listener: l.to_vec(),
            dialer_nonce: hello_nonce(&[1; 32]),
            listener_nonce: hello_nonce(&[2; 32]),
            dialer_pake: a.message().to_vec(),
            listener_pake: b.message().to_vec(),
        };
        let (am, bm) = (a.message().to_vec(), b.message().to_vec());
        (a.finish(&bm, &t).unwrap(), b.finish(&am, &t).unwrap())
    }

    #[test]
    fn the_exchange_agrees_only_under_the_same_key() {
        let key = GroupKey::from_random([7; 32]);
        let (a, b) = exchange(&key, &key);
        assert_eq!(a, b);
        let proof = a.proof(Role::Dialer);
        assert!(b.verify(Role::Dialer, &proof));
        assert!(!b.verify(Role::Listener, &proof), "not reflectable");
        assert_ne!(a.frame_key(Role::Dialer), a.frame_key(Role::Listener));
        let (c, d) = exchange(&key, &GroupKey::from_random([8; 32]));
        assert_ne!(c, d);
        assert!(!d.verify(Role::Dialer, &c.proof(Role::Dialer)));
    }

    #[test]
    fn a_peer_message_from_the_same_role_or_malformed_is_refused() {
        let key = GroupKey::from_random([7; 32]);
        let a = Pake::start(&key, Role::Dialer, b"a", b"b", &[1; 32]);
        let a2 = Pake::start(&key, Role::Dialer, b"a", b"b", &[3; 32]);
        let t = Transcript {
            dialer: b"a".to_vec(),
            listener: b"b".to_vec(),
            dialer_nonce: [0; 32],
            listener_nonce: [0; 32],
            dialer_pake: Vec::new(),
            listener_pake: Vec::new(),
        };
        let same_role = a2.message().to_vec();
        assert_eq!(a.finish(&same_role, &t), Err(PakeError::Malformed));
        let a = Pake::start(&key, Role::Dialer, b"a", b"b", &[1; 32]);
        assert_eq!(a.finish(&[0x42; 5], &t), Err(PakeError::Malformed));
    }

    #[test]
    fn passphrase_salt_and_hex_keys() {
        let salt = GroupSalt::from_random([1; 16]);
        assert_eq!(
            GroupKey::from_passphrase("short", &salt),
            Err(GroupKeyError::PassphraseTooShort)
        );
        let a = GroupKey::from_passphrase("correct horse battery", &salt).unwrap();
        assert_eq!(
            a,
            GroupKey::from_passphrase("correct horse battery", &salt).unwrap()
        );
        assert_ne!(
            a,
            GroupKey::from_passphrase("correct horse battery!", &salt).unwrap()
        );
        let other_salt = GroupSalt::from_random([2; 16]);
        assert_ne!(
            a,
            GroupKey::from_passphrase("correct horse battery", &other_salt).unwrap(),
            "the same passphrase in another group is another key"
        );
        assert_eq!(GroupKey::from_hex(&a.to_hex()).unwrap(), a);
        assert_eq!(GroupSalt::from_hex(&salt.to_hex()).unwrap(), salt);
        assert!(GroupKey::from_hex("zz").is_err());
        assert_eq!(
            GroupSalt::from_hex(&"g".repeat(32)),
            Err(GroupKeyError::BadSaltText)
        );
    }

    #[test]
    fn key_text_with_multibyte_characters_is_an_error_not_a_panic() {
        // 64 bytes, but "é" is two bytes: slicing by byte pairs would split it.
        let text = format!("a{}{}", "é", "b".repeat(61));
        assert_eq!(text.len(), 64);
        assert_eq!(GroupKey::from_hex(&text), Err(GroupKeyError::BadKeyText));
        let emoji = "🦀".repeat(16);
        assert_eq!(emoji.len(), 64);
        assert_eq!(GroupKey::from_hex(&emoji), Err(GroupKeyError::BadKeyText));
        assert_eq!(
            GroupKey::from_hex(&format!("+{}", "a".repeat(63))),
            Err(GroupKeyError::BadKeyText),
            "no sign accepted"
        );
    }

    #[test]
    fn frame_macs_cover_sequence_and_body() {
        let k = SessionKeys::from_secret([3; 32]).frame_key(Role::Dialer);
        let mac = k.mac(5, b"body");
        assert!(k.verify(5, b"body", &mac));
        assert!(!k.verify(6, b"body", &mac));
        assert!(!k.verify(5, b"bodz", &mac));
    }
}
