//! Relay admission, sans IO: the relay token a group's relay holds instead of
//! the group key, and the challenge–response by which a member proves to the
//! relay that it holds the group key before the relay grants it a
//! reservation or a circuit.
//!
//! The token is a one-way derivation of the group key, so a relay operator
//! holding it can admit members but cannot pass the membership exchange
//! (SPAKE2 over the group key, `auth.rs`) and so can neither join the group
//! nor read or alter the sessions it carries (those are end to end: Noise
//! between the two peers through the circuit, then Shoal's own MACed frames).
//! The proof is bound to the relay's and the member's peer ids (both
//! authenticated by the transport) and to a fresh challenge of the relay's,
//! so it cannot be replayed elsewhere or later.
//!
//! Pure computation only: the challenge's randomness comes in as an argument.

use super::auth::GroupKey;
use std::fmt;

/// The libp2p protocol on which a member proves itself to a relay.
pub const RELAY_AUTH_PROTOCOL: &str = "/shoal/relay-auth/1";

/// Bytes of a challenge and of a proof on the wire.
pub const RELAY_AUTH_LEN: usize = 32;

/// Derivation context of the token (BLAKE3 `derive_key`).
const TOKEN_CONTEXT: &str = "shoal relay token v1";
/// Domain of the proofs.
const PROOF_DOMAIN: &[u8] = b"shoal relay admission v1";

/// What a relay holds to admit a group's members: derived from the group
/// key, it proves nothing about membership to members themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayToken([u8; 32]);

impl fmt::Debug for RelayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayToken(..)")
    }
}

/// Why a relay token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayTokenError {
    /// The text is not 64 hex digits.
    #[error("relay token must be 64 hex digits")]
    BadText,
}

/// The relay's answer to a proof: one byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The proof holds: reservations and circuits are served.
    Granted,
    /// The proof does not hold: nothing is served.
    Refused,
}

impl Admission {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Admission::Granted => 1,
            Admission::Refused => 0,
        }
    }

    /// Reads a wire byte; any byte but 0 and 1 is `None`.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Admission::Granted),
            0 => Some(Admission::Refused),
            _ => None,
        }
    }
}

impl RelayToken {
    /// The token of the group whose key is `key`.
    pub fn for_group(key: &GroupKey) -> Self {
        RelayToken(key.mac(TOKEN_CONTEXT, &[]))
    }

    /// Reads a token written by [`RelayToken::to_hex`].
    pub fn from_hex(text: &str) -> Result<Self, RelayTokenError> {
        let digits = text.trim().as_bytes();
        if digits.len() != 64 {
            return Err(RelayTokenError::BadText);
        }
        let nibble = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (nibble(pair[0]), nibble(pair[1])) else {
                return Err(RelayTokenError::BadText);
            };
            *byte = (hi << 4) | lo;
        }
        Ok(RelayToken(out))
    }

    /// The token as 64 hex digits (secret: give it only to the relay).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The proof a member sends for `challenge` from the relay `relay` (its
    /// peer id's bytes), being `member` (its own peer id's bytes).
    pub fn prove(
        &self,
        relay: &[u8],
        member: &[u8],
        challenge: &[u8; RELAY_AUTH_LEN],
    ) -> [u8; RELAY_AUTH_LEN] {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        for part in [PROOF_DOMAIN, relay, member, challenge.as_slice()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }

    /// The relay's verdict on `proof` (compared in constant time).
    pub fn check(
        &self,
        relay: &[u8],
        member: &[u8],
        challenge: &[u8; RELAY_AUTH_LEN],
        proof: &[u8; RELAY_AUTH_LEN],
    ) -> Admission {
        let expected = blake3::Hash::from(self.prove(relay, member, challenge));
        if expected == blake3::Hash::from(*proof) {
            Admission::Granted
        } else {
            Admission::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> GroupKey {
        GroupKey::from_random([byte; 32])
    }

    #[test]
    fn a_member_proof_is_granted_and_bound_to_everything() {
        let token = RelayToken::for_group(&key(7));
        let challenge = [3u8; 32];
        let proof = token.prove(b"relay", b"member", &challenge);
        assert_eq!(
            token.check(b"relay", b"member", &challenge, &proof),
            Admission::Granted
        );
        // Another relay, member, challenge or group: refused.
        let refused = Admission::Refused;
        assert_eq!(
            token.check(b"other", b"member", &challenge, &proof),
            refused
        );
        assert_eq!(token.check(b"relay", b"other", &challenge, &proof), refused);
        assert_eq!(
            token.check(b"relay", b"member", &[4u8; 32], &proof),
            refused
        );
        let stranger = RelayToken::for_group(&key(8));
        let forged = stranger.prove(b"relay", b"member", &challenge);
        assert_eq!(
            token.check(b"relay", b"member", &challenge, &forged),
            refused
        );
    }

    #[test]
    fn the_token_is_not_the_group_key_and_round_trips_as_hex() {
        let group = key(9);
        let token = RelayToken::for_group(&group);
        assert_ne!(token.to_hex(), group.to_hex());
        assert_eq!(RelayToken::from_hex(&token.to_hex()), Ok(token.clone()));
        assert_eq!(format!("{token:?}"), "RelayToken(..)");
        for bad in ["", "zz", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert_eq!(
                RelayToken::from_hex(bad),
                Err(RelayTokenError::BadText),
                "{bad}"
            );
        }
    }

    #[test]
    fn admission_bytes_round_trip_and_others_are_refused() {
        for a in [Admission::Granted, Admission::Refused] {
            assert_eq!(Admission::from_byte(a.to_byte()), Some(a));
        }
        assert_eq!(Admission::from_byte(2), None);
    }
}
