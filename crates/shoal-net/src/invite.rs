//! Invite codes: the group key, the group's salt and one address to dial, as
//! one line of text with a checksum, printed by `shoal invite` and accepted by
//! `shoal join`:
//!
//! ```text
//! shoal2:<64 hex key>.<32 hex salt>.<8 hex checksum>@<multiaddr with /p2p/peer id>
//! ```
//!
//! The checksum is the first 4 bytes of BLAKE3 (derive-key mode) over the
//! code without it (`shoal2:<key>.<salt>@<address>`), so a code mistyped or
//! cut short anywhere is refused by name instead of joining a wrong group or
//! dialing a wrong address. Codes of the first version (`shoal1:`, no salt,
//! no checksum) are refused with their own error: their nodes speak sync
//! protocol 1 and cannot sync with this one.
//!
//! Parsing is strict: every malformed part is a named error.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use shoal_core::sync::{GroupKey, GroupSalt};
use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "shoal2:";
const OLD_PREFIX: &str = "shoal1:";
const CHECKSUM_CONTEXT: &str = "shoal invite checksum v2";

/// A parsed invite code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The group's secret.
    pub key: GroupKey,
    /// The group's salt (for a passphrase given on a joined machine).
    pub salt: GroupSalt,
    /// Where the inviting node listens (ends in `/p2p/<peer id>`).
    pub address: Multiaddr,
}

/// Why an invite code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// It does not start with `shoal2:`.
    #[error("not a Shoal invite code (expected it to start with `shoal2:`)")]
    Prefix,
    /// A `shoal1:` code, from a version this one cannot sync with.
    #[error(
        "this is an invite code of an older Shoal (`shoal1:`), whose nodes cannot sync with \
         this version; ask for a new code (`shoal invite` on an up-to-date node)"
    )]
    OldVersion,
    /// The `@` between the secret part and the address, or a `.` between the
    /// key, the salt and the checksum, is missing.
    #[error("invite code is not `shoal2:KEY.SALT.CHECKSUM@ADDRESS`")]
    Shape,
    /// The checksum does not match the rest of the code.
    #[error("invite code checksum does not match: it was mistyped or cut short; copy it again")]
    Checksum,
    /// The key part is not 64 hex digits.
    #[error("invite code key is not 64 hex digits")]
    Key,
    /// The salt part is not 32 hex digits.
    #[error("invite code salt is not 32 hex digits")]
    Salt,
    /// The address part is not a multiaddr.
    #[error("invite code address is not a valid multiaddr: {0}")]
    Address(String),
    /// The address does not name the peer (`/p2p/<peer id>`).
    #[error("invite code address does not end in /p2p/<peer id>")]
    NoPeerId,
}

/// The checksum of a code's text without it, as 8 hex digits.
fn checksum(key: &str, salt: &str, address: &str) -> String {
    let text = format!("{PREFIX}{key}.{salt}@{address}");
    blake3::derive_key(CHECKSUM_CONTEXT, text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        if text.starts_with(OLD_PREFIX) {
            return Err(InviteError::OldVersion);
        }
        let rest = text.strip_prefix(PREFIX).ok_or(InviteError::Prefix)?;
        let (secret, address) = rest.split_once('@').ok_or(InviteError::Shape)?;
        let mut parts = secret.split('.');
        let (Some(key), Some(salt), Some(sum), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InviteError::Shape);
        };
        if !sum.eq_ignore_ascii_case(&checksum(key, salt, address)) {
            return Err(InviteError::Checksum);
        }
        let key = GroupKey::from_hex(key).map_err(|_| InviteError::Key)?;
        let salt = GroupSalt::from_hex(salt).map_err(|_| InviteError::Salt)?;
        let address: Multiaddr = address
            .parse()
            .map_err(|e: libp2p::multiaddr::Error| InviteError::Address(e.to_string()))?;
        if !matches!(address.iter().last(), Some(Protocol::P2p(_))) {
            return Err(InviteError::NoPeerId);
        }
        Ok(Self { key, salt, address })
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, salt, address) = (
            self.key.to_hex(),
            self.salt.to_hex(),
            self.address.to_string(),
        );
        let sum = checksum(&key, &salt, &address);
        write!(f, "{PREFIX}{key}.{salt}.{sum}@{address}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Invite {
        let peer = libp2p::PeerId::random();
        Invite {
            key: GroupKey::from_random([9; 32]),
            salt: GroupSalt::from_random([4; 16]),
            address: format!("/ip4/127.0.0.1/tcp/4040/p2p/{peer}")
                .parse()
                .unwrap(),
        }
    }

    /// A code with its checksum recomputed, so later checks are reached.
    fn code(key: &str, salt: &str, address: &str) -> String {
        format!(
            "{PREFIX}{key}.{salt}.{}@{address}",
            checksum(key, salt, address)
        )
    }

    #[test]
    fn roundtrip_and_errors() {
        let invite = invite();
        assert_eq!(invite.to_string().parse::<Invite>().unwrap(), invite);
        assert_eq!("nope".parse::<Invite>(), Err(InviteError::Prefix));
        assert_eq!("shoal2:abc".parse::<Invite>(), Err(InviteError::Shape));
        assert_eq!(
            "shoal2:ab.cd@/ip4/1.2.3.4/tcp/1".parse::<Invite>(),
            Err(InviteError::Shape)
        );
        let (key, salt) = ("ab".repeat(32), "cd".repeat(16));
        assert_eq!(
            code("zz", &salt, "/ip4/1.2.3.4/tcp/1").parse::<Invite>(),
            Err(InviteError::Key)
        );
        assert_eq!(
            code(&key, "zz", "/ip4/1.2.3.4/tcp/1").parse::<Invite>(),
            Err(InviteError::Salt)
        );
        assert!(matches!(
            code(&key, &salt, "garbage").parse::<Invite>(),
            Err(InviteError::Address(_))
        ));
        assert_eq!(
            code(&key, &salt, "/ip4/1.2.3.4/tcp/1").parse::<Invite>(),
            Err(InviteError::NoPeerId)
        );
    }

    #[test]
    fn a_mistyped_or_cut_code_is_refused_by_its_checksum() {
        let text = invite().to_string();
        // Change one character anywhere after the prefix (to another of the
        // same kind, so the code still looks well formed).
        for at in PREFIX.len()..text.len() {
            let c = text.as_bytes()[at];
            let swapped = match c {
                b'0'..=b'8' | b'a'..=b'e' | b'A'..=b'Y' => c + 1,
                b'9' => b'0',
                b'f' => b'a',
                b'Z' => b'A',
                _ => continue,
            };
            let mut typo = text.clone().into_bytes();
            typo[at] = swapped;
            let typo = String::from_utf8(typo).unwrap();
            assert!(
                typo.parse::<Invite>() == Err(InviteError::Checksum),
                "a typo at {at} was accepted: {typo}"
            );
        }
        let cut = &text[..text.len() - 3];
        assert!(cut.parse::<Invite>().is_err(), "cut short: {cut}");
    }

    #[test]
    fn an_old_code_is_refused_by_name() {
        let key = "ab".repeat(32);
        let old = format!(
            "shoal1:{key}@/ip4/1.2.3.4/tcp/1/p2p/{}",
            libp2p::PeerId::random()
        );
        assert_eq!(old.parse::<Invite>(), Err(InviteError::OldVersion));
    }
}
