//! Invite codes: the group key, the group's salt, one address of the
//! inviting node and the relays it holds reservations on, as one line of text
//! with a checksum, printed by `shoal invite` and accepted by `shoal join`:
//!
//! ```text
//! shoal2:<64 hex key>.<32 hex salt>.<8 hex checksum>@<multiaddr with /p2p/peer id>
//! shoal3:<64 hex key>.<32 hex salt>.<8 hex checksum>@<multiaddr with /p2p/peer id>,<relay>,…
//! ```
//!
//! A code with relays is a `shoal3:` code: after the inviter's address come
//! the relays' addresses (each ending in `/p2p/<relay id>`), separated by
//! commas, so a joiner behind NAT reaches the inviter through a relay at
//! `<relay>/p2p-circuit/p2p/<inviter>` ([`Invite::relayed_addresses`]). A code
//! without relays is still printed as `shoal2:`, so older nodes read it.
//!
//! The checksum is the first 4 bytes of BLAKE3 (derive-key mode, context
//! `shoal invite checksum v2` for `shoal2:`, `v3` for `shoal3:`) over the code
//! without it (`shoal2:<key>.<salt>@<address>`), so a code mistyped or cut
//! short anywhere is refused by name instead of joining a wrong group or
//! dialing a wrong address. Codes of the first version (`shoal1:`, no salt,
//! no checksum) are refused with their own error: their nodes speak sync
//! protocol 1 and cannot sync with this one.
//!
//! Parsing is strict: every malformed part is a named error. This file is
//! compiled alone by the fuzz target (`fuzz/fuzz_targets/invite.rs`): it may
//! name only `libp2p::Multiaddr`, `libp2p::multiaddr` and `shoal_core`.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use shoal_core::sync::{GroupKey, GroupSalt};
use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "shoal2:";
const RELAY_PREFIX: &str = "shoal3:";
const OLD_PREFIX: &str = "shoal1:";
const CHECKSUM_CONTEXT: &str = "shoal invite checksum v2";
const RELAY_CHECKSUM_CONTEXT: &str = "shoal invite checksum v3";
/// Most relays one code carries.
pub const MAX_INVITE_RELAYS: usize = 8;

/// A parsed invite code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The group's secret.
    pub key: GroupKey,
    /// The group's salt (for a passphrase given on a joined machine).
    pub salt: GroupSalt,
    /// Where the inviting node listens (ends in `/p2p/<peer id>`).
    pub address: Multiaddr,
    /// Relays the inviting node holds reservations on, each ending in
    /// `/p2p/<relay id>` (at most [`MAX_INVITE_RELAYS`]); empty in a
    /// `shoal2:` code.
    pub relays: Vec<Multiaddr>,
}

/// Why an invite code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// It does not start with `shoal2:` or `shoal3:`.
    #[error("not a Shoal invite code (expected it to start with `shoal2:` or `shoal3:`)")]
    Prefix,
    /// A `shoal1:` code, from a version this one cannot sync with.
    #[error(
        "this is an invite code of an older Shoal (`shoal1:`), whose nodes cannot sync with \
         this version; ask for a new code (`shoal invite` on an up-to-date node)"
    )]
    OldVersion,
    /// The `@` between the secret part and the address, or a `.` between the
    /// key, the salt and the checksum, is missing.
    #[error(
        "invite code is not `shoal2:KEY.SALT.CHECKSUM@ADDRESS` (or `shoal3:…@ADDRESS,RELAY,…`)"
    )]
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
    /// A relay's address is not a multiaddr ending in `/p2p/<relay id>`,
    /// or goes through a relay itself.
    #[error("invite code relay `{0}` is not a multiaddr ending in /p2p/<relay id>")]
    Relay(String),
    /// A `shoal3:` code without relays, or with more than [`MAX_INVITE_RELAYS`].
    #[error("invite code carries no relay or more than 8")]
    RelayCount,
}

/// The checksum of a code's text without it, as 8 hex digits.
fn checksum(prefix: &str, key: &str, salt: &str, addresses: &str) -> String {
    let context = if prefix == RELAY_PREFIX {
        RELAY_CHECKSUM_CONTEXT
    } else {
        CHECKSUM_CONTEXT
    };
    let text = format!("{prefix}{key}.{salt}@{addresses}");
    blake3::derive_key(context, text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A relay's address: a multiaddr naming the relay, not itself relayed.
fn parse_relay(text: &str) -> Result<Multiaddr, InviteError> {
    let relay: Multiaddr = text
        .parse()
        .map_err(|_| InviteError::Relay(text.to_string()))?;
    let named = matches!(relay.iter().last(), Some(Protocol::P2p(_)));
    if !named || relay.iter().any(|p| p == Protocol::P2pCircuit) {
        return Err(InviteError::Relay(text.to_string()));
    }
    Ok(relay)
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        if text.starts_with(OLD_PREFIX) {
            return Err(InviteError::OldVersion);
        }
        let (prefix, rest) = [PREFIX, RELAY_PREFIX]
            .iter()
            .find_map(|p| text.strip_prefix(p).map(|rest| (*p, rest)))
            .ok_or(InviteError::Prefix)?;
        let (secret, addresses) = rest.split_once('@').ok_or(InviteError::Shape)?;
        let mut parts = secret.split('.');
        let (Some(key), Some(salt), Some(sum), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InviteError::Shape);
        };
        if !sum.eq_ignore_ascii_case(&checksum(prefix, key, salt, addresses)) {
            return Err(InviteError::Checksum);
        }
        let key = GroupKey::from_hex(key).map_err(|_| InviteError::Key)?;
        let salt = GroupSalt::from_hex(salt).map_err(|_| InviteError::Salt)?;
        let (address, relays) = match prefix {
            RELAY_PREFIX => addresses.split_once(',').ok_or(InviteError::RelayCount)?,
            _ => (addresses, ""),
        };
        let address: Multiaddr = address
            .parse()
            .map_err(|e: libp2p::multiaddr::Error| InviteError::Address(e.to_string()))?;
        if !matches!(address.iter().last(), Some(Protocol::P2p(_))) {
            return Err(InviteError::NoPeerId);
        }
        let relays = if relays.is_empty() {
            Vec::new()
        } else {
            let relays = relays
                .split(',')
                .map(parse_relay)
                .collect::<Result<Vec<_>, _>>()?;
            if relays.len() > MAX_INVITE_RELAYS {
                return Err(InviteError::RelayCount);
            }
            relays
        };
        Ok(Self {
            key,
            salt,
            address,
            relays,
        })
    }
}

impl Invite {
    /// The inviter reached through each relay:
    /// `<relay>/p2p-circuit/p2p/<inviter>`.
    pub fn relayed_addresses(&self) -> Vec<Multiaddr> {
        let Some(inviter) = self.address.iter().last() else {
            return Vec::new();
        };
        self.relays
            .iter()
            .map(|relay| {
                relay
                    .clone()
                    .with(Protocol::P2pCircuit)
                    .with(inviter.clone())
            })
            .collect()
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, salt) = (self.key.to_hex(), self.salt.to_hex());
        let mut addresses = self.address.to_string();
        for relay in &self.relays {
            addresses.push(',');
            addresses.push_str(&relay.to_string());
        }
        let prefix = if self.relays.is_empty() {
            PREFIX
        } else {
            RELAY_PREFIX
        };
        let sum = checksum(prefix, &key, &salt, &addresses);
        write!(f, "{prefix}{key}.{salt}.{sum}@{addresses}")
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
            relays: Vec::new(),
        }
    }

    /// A code with its checksum recomputed, so later checks are reached.
    fn code(key: &str, salt: &str, address: &str) -> String {
        format!(
            "{PREFIX}{key}.{salt}.{}@{address}",
            checksum(PREFIX, key, salt, address)
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

    fn relay(text: &str) -> Multiaddr {
        format!("{text}/p2p/{}", libp2p::PeerId::random())
            .parse()
            .unwrap()
    }

    #[test]
    fn relays_travel_in_a_shoal3_code_and_name_the_way_in() {
        let mut invite = invite();
        invite.relays = vec![
            relay("/ip4/198.18.0.1/tcp/4001"),
            relay("/dns4/r.example/udp/4001/quic-v1"),
        ];
        let text = invite.to_string();
        assert!(text.starts_with(RELAY_PREFIX), "{text}");
        assert_eq!(text.parse::<Invite>().unwrap(), invite);
        let inviter = invite.address.iter().last().unwrap();
        let via = invite.relayed_addresses();
        assert_eq!(via.len(), 2);
        assert_eq!(
            via[0],
            invite.relays[0]
                .clone()
                .with(Protocol::P2pCircuit)
                .with(inviter)
        );
        // Without relays the code stays readable by older nodes.
        invite.relays.clear();
        assert!(invite.to_string().starts_with(PREFIX));
        assert!(invite.relayed_addresses().is_empty());
    }

    #[test]
    fn bad_relays_are_refused_by_name() {
        let invite = invite();
        let (key, salt) = (invite.key.to_hex(), invite.salt.to_hex());
        let coded = |addresses: &str| {
            format!(
                "{RELAY_PREFIX}{key}.{salt}.{}@{addresses}",
                checksum(RELAY_PREFIX, &key, &salt, addresses)
            )
        };
        let own = invite.address.to_string();
        assert_eq!(coded(&own).parse::<Invite>(), Err(InviteError::RelayCount));
        let unnamed = format!("{own},/ip4/1.2.3.4/tcp/1");
        assert!(matches!(
            coded(&unnamed).parse::<Invite>(),
            Err(InviteError::Relay(_))
        ));
        let circuit = format!("{own},{}/p2p-circuit", relay("/ip4/1.2.3.4/tcp/1"));
        assert!(matches!(
            coded(&circuit).parse::<Invite>(),
            Err(InviteError::Relay(_))
        ));
        let many: Vec<String> = (0..=MAX_INVITE_RELAYS)
            .map(|_| relay("/ip4/1.2.3.4/tcp/1").to_string())
            .collect();
        let many = format!("{own},{}", many.join(","));
        assert_eq!(coded(&many).parse::<Invite>(), Err(InviteError::RelayCount));
        // A shoal2 checksum does not pass for a shoal3 code.
        let relayed = Invite {
            relays: vec![relay("/ip4/1.2.3.4/tcp/1")],
            ..invite
        };
        let text = relayed.to_string().replacen(RELAY_PREFIX, PREFIX, 1);
        assert_eq!(text.parse::<Invite>(), Err(InviteError::Checksum));
    }
}
