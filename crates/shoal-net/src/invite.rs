//! Invite codes: the group key plus one address to dial, as one line of text
//! (`shoal1:<64 hex key>@<multiaddr with /p2p/peer id>`), printed by
//! `shoal invite` and accepted by `shoal join`.
//!
//! Parsing is strict: every malformed part is a named error.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use shoal_core::sync::GroupKey;
use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "shoal1:";

/// A parsed invite code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The group's secret.
    pub key: GroupKey,
    /// Where the inviting node listens (ends in `/p2p/<peer id>`).
    pub address: Multiaddr,
}

/// Why an invite code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// It does not start with `shoal1:`.
    #[error("not a Shoal invite code (expected it to start with `shoal1:`)")]
    Prefix,
    /// The `@` between key and address is missing.
    #[error("invite code has no `@` between the key and the address")]
    Shape,
    /// The key part is not 64 hex digits.
    #[error("invite code key is not 64 hex digits")]
    Key,
    /// The address part is not a multiaddr.
    #[error("invite code address is not a valid multiaddr: {0}")]
    Address(String),
    /// The address does not name the peer (`/p2p/<peer id>`).
    #[error("invite code address does not end in /p2p/<peer id>")]
    NoPeerId,
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(text: &str) -> Result<Self, InviteError> {
        let rest = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(InviteError::Prefix)?;
        let (key, address) = rest.split_once('@').ok_or(InviteError::Shape)?;
        let key = GroupKey::from_hex(key).map_err(|_| InviteError::Key)?;
        let address: Multiaddr = address
            .parse()
            .map_err(|e: libp2p::multiaddr::Error| InviteError::Address(e.to_string()))?;
        if !matches!(address.iter().last(), Some(Protocol::P2p(_))) {
            return Err(InviteError::NoPeerId);
        }
        Ok(Self { key, address })
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}@{}", self.key.to_hex(), self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let peer = libp2p::PeerId::random();
        let address: Multiaddr = format!("/ip4/127.0.0.1/tcp/4040/p2p/{peer}")
            .parse()
            .unwrap();
        let invite = Invite {
            key: GroupKey::from_random([9; 32]),
            address,
        };
        assert_eq!(invite.to_string().parse::<Invite>().unwrap(), invite);
        assert_eq!("nope".parse::<Invite>(), Err(InviteError::Prefix));
        assert_eq!("shoal1:abc".parse::<Invite>(), Err(InviteError::Shape));
        assert_eq!(
            "shoal1:zz@/ip4/1.2.3.4/tcp/1".parse::<Invite>(),
            Err(InviteError::Key)
        );
        let key = "ab".repeat(32);
        assert!(matches!(
            format!("shoal1:{key}@garbage").parse::<Invite>(),
            Err(InviteError::Address(_))
        ));
        assert_eq!(
            format!("shoal1:{key}@/ip4/1.2.3.4/tcp/1").parse::<Invite>(),
            Err(InviteError::NoPeerId)
        );
    }
}
