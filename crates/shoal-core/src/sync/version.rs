//! Protocol versions and features, and the negotiation between two peers,
//! sans IO: what each side announces in its hello ([`Offer`]), whether two
//! offers can talk ([`negotiate`]) and on what ([`Agreed`]), or why not
//! ([`Incompatible`], worded for the person who must upgrade a machine).
//!
//! Every build since protocol 2 sends `Hello { version: 2, nonce }` —
//! [`HELLO_VERSION`], frozen, the only hello protocol-2 builds accept — and
//! appends its [`Offer`] after the nonce. Protocol-2 builds decode a frame
//! with postcard, which ignores bytes after the message, so they read the
//! hello they know and talk protocol 2; a hello without an offer is a
//! protocol-2 peer. The hello travels inside the Noise-authenticated stream
//! between the two peer ids.
//!
//! Adding a feature is one variant of [`Feature`] (with its bit); it is
//! used in a session only when [`Agreed::has`] says both sides offered it,
//! and a message that belongs to a feature not agreed is a protocol
//! violation. Raise [`PROTOCOL_VERSION`] for a change every peer must
//! understand; raise [`OLDEST_PROTOCOL_VERSION`] only when this build can
//! no longer talk to older ones.
//!
//! This module decides; `session.rs` sends the offer and acts on the outcome.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The `version` every hello carries since protocol 2 (frozen: protocol-2
/// builds refuse any other). A build's real version is in its [`Offer`].
pub const HELLO_VERSION: u32 = 2;
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 3;
/// The oldest protocol version this build still talks to.
pub const OLDEST_PROTOCOL_VERSION: u32 = 2;

/// What this build says it runs in [`Feature::About`].
pub const SOFTWARE: &str = concat!("Shoal ", env!("CARGO_PKG_VERSION"));
/// Most bytes of a peer's software name kept.
pub const MAX_SOFTWARE_LEN: usize = 64;

/// An optional capability of the protocol, used only when both peers offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// After authentication each side sends `Message::About` (the Shoal
    /// build it runs), shown in the peer table.
    About,
    /// Every change on the wire carries `pred`, the clock of the version
    /// its writer replaced, which the conflict journal reads; without it
    /// changes travel in the protocol-2 layout (`layout.rs`).
    Predecessors,
    /// Partial replicas (issue 19 §2): after authentication each side sends
    /// `Message::Filters` (the records it takes, per collection; empty for
    /// a full replica), and the sending side may send `Message::Leave`.
    PartialReplica,
    /// With [`Feature::Predecessors`]: a message's changes travel grouped
    /// by record (collection, id, position and clocks once per record, not
    /// per slot; `grouped.rs`); without it, in the layout of `layout.rs`.
    GroupedChanges,
    /// With [`Feature::PartialReplica`]: `Request::Filtered` — the
    /// integrity report of a filtered collection, as pages of the (id,
    /// digest) pairs the sender's filter for the requester admits
    /// (`docs/partial.md`).
    FilteredReport,
}

impl Feature {
    /// Every feature this build has.
    pub const ALL: &'static [Feature] = &[
        Feature::About,
        Feature::Predecessors,
        Feature::PartialReplica,
        Feature::GroupedChanges,
        Feature::FilteredReport,
    ];

    /// Its bit in [`FeatureSet`] on the wire (never reused).
    const fn bit(self) -> u32 {
        match self {
            Feature::About => 0,
            Feature::Predecessors => 1,
            Feature::PartialReplica => 2,
            Feature::GroupedChanges => 3,
            Feature::FilteredReport => 4,
        }
    }

    /// Its name, as shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Feature::About => "about",
            Feature::Predecessors => "predecessors",
            Feature::PartialReplica => "partial-replica",
            Feature::GroupedChanges => "grouped-changes",
            Feature::FilteredReport => "filtered-report",
        }
    }
}

/// A set of features, on the wire as a 64-bit mask (bits this build does
/// not know are kept, so intersections stay exact, and never used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct FeatureSet(u64);

impl FeatureSet {
    /// No feature.
    pub const NONE: FeatureSet = FeatureSet(0);

    /// The set with these wire bits (bits this build does not know included).
    pub fn from_bits(bits: u64) -> Self {
        FeatureSet(bits)
    }

    /// The wire bits.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Every feature this build has.
    pub fn all() -> Self {
        Feature::ALL.iter().fold(Self::NONE, |s, f| s.with(*f))
    }

    /// This set and `feature`.
    pub fn with(self, feature: Feature) -> Self {
        FeatureSet(self.0 | 1 << feature.bit())
    }

    /// Whether `feature` is in the set.
    pub fn has(self, feature: Feature) -> bool {
        self.0 & (1 << feature.bit()) != 0
    }

    /// The features in both sets.
    pub fn and(self, other: FeatureSet) -> Self {
        FeatureSet(self.0 & other.0)
    }

    /// The features of the set this build knows, in order.
    pub fn known(self) -> Vec<Feature> {
        Feature::ALL
            .iter()
            .copied()
            .filter(|f| self.has(*f))
            .collect()
    }
}

/// What a peer announces after its hello's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offer {
    /// The protocol version it speaks.
    pub version: u32,
    /// The oldest version it talks to.
    pub oldest: u32,
    /// The features it has.
    pub features: FeatureSet,
}

impl Offer {
    /// What this build announces.
    pub fn current() -> Self {
        Offer {
            version: PROTOCOL_VERSION,
            oldest: OLDEST_PROTOCOL_VERSION,
            features: FeatureSet::all(),
        }
    }

    /// What a protocol-2 build announces (a hello without an offer); also
    /// what a node set to act as one sends.
    pub fn protocol_2() -> Self {
        Offer {
            version: 2,
            oldest: 2,
            features: FeatureSet::NONE,
        }
    }
}

impl Default for Offer {
    fn default() -> Self {
        Self::current()
    }
}

/// The part of a hello after the nonce: an [`Offer`], absent in protocol 2.
/// Encodes to nothing when absent; decodes to absent when the frame ends
/// (or holds nothing this build can read) after the nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloTail(pub Option<Offer>);

impl HelloTail {
    /// The tail `offer` is sent with: none for a protocol-2 offer (exactly
    /// the hello a protocol-2 build sends).
    pub fn for_offer(offer: Offer) -> Self {
        HelloTail((offer != Offer::protocol_2()).then_some(offer))
    }
}

impl Serialize for HelloTail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(offer) => offer.serialize(s),
            None => s.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for HelloTail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(HelloTail(Offer::deserialize(d).ok()))
    }
}

/// What two peers talk: the lower of their versions and the features both have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Agreed {
    /// The protocol version of the session.
    pub version: u32,
    /// The peer's own version.
    pub peer_version: u32,
    /// Features both offered.
    pub features: FeatureSet,
}

impl Agreed {
    /// Whether `feature` may be used in this session.
    pub fn has(&self, feature: Feature) -> bool {
        self.features.has(feature)
    }
}

/// Why two peers cannot talk, from this node's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Incompatible {
    /// The peer's version is older than the oldest this node talks to.
    PeerOlder {
        /// The peer's version.
        peer: u32,
        /// The oldest this node talks to.
        oldest: u32,
    },
    /// This node's version is older than the oldest the peer talks to.
    PeerNewer {
        /// The peer's version (or its hello's, when it could not be read).
        peer: u32,
        /// The oldest the peer talks to.
        peer_oldest: u32,
    },
}

impl fmt::Display for Incompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incompatible::PeerOlder { peer, oldest } => write!(
                f,
                "peer runs an older Shoal (protocol {peer}; this node needs {oldest} or later): upgrade it"
            ),
            Incompatible::PeerNewer { peer, peer_oldest } => write!(
                f,
                "peer runs a newer Shoal (protocol {peer}, which needs {peer_oldest} or later; this node speaks {PROTOCOL_VERSION}): upgrade this node"
            ),
        }
    }
}

/// Whether this node (offering `ours`) and a peer whose hello carried
/// `hello_version` and `tail` can talk, and on what. Both sides reach the
/// same verdict from the two offers.
pub fn negotiate(
    ours: &Offer,
    hello_version: u32,
    tail: HelloTail,
) -> Result<Agreed, Incompatible> {
    if hello_version != HELLO_VERSION {
        // A hello this build cannot read past its version.
        return Err(if hello_version < HELLO_VERSION {
            Incompatible::PeerOlder {
                peer: hello_version,
                oldest: ours.oldest,
            }
        } else {
            Incompatible::PeerNewer {
                peer: hello_version,
                peer_oldest: hello_version,
            }
        });
    }
    let theirs = tail.0.unwrap_or_else(Offer::protocol_2);
    if theirs.version < ours.oldest {
        return Err(Incompatible::PeerOlder {
            peer: theirs.version,
            oldest: ours.oldest,
        });
    }
    if ours.version < theirs.oldest {
        return Err(Incompatible::PeerNewer {
            peer: theirs.version,
            peer_oldest: theirs.oldest,
        });
    }
    Ok(Agreed {
        version: ours.version.min(theirs.version),
        peer_version: theirs.version,
        features: ours.features.and(theirs.features),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(version: u32, oldest: u32, features: FeatureSet) -> Offer {
        Offer {
            version,
            oldest,
            features,
        }
    }

    #[test]
    fn current_talks_to_protocol_2_without_features() {
        let agreed = negotiate(&Offer::current(), 2, HelloTail(None)).unwrap();
        assert_eq!(agreed.version, 2);
        assert!(!agreed.has(Feature::About));
        let agreed = negotiate(
            &Offer::protocol_2(),
            2,
            HelloTail::for_offer(Offer::current()),
        )
        .unwrap();
        assert_eq!((agreed.version, agreed.peer_version), (2, PROTOCOL_VERSION));
        assert!(!agreed.has(Feature::About));
    }

    #[test]
    fn a_feature_is_agreed_only_when_both_offer_it() {
        let all = Offer::current();
        let agreed = negotiate(&all, 2, HelloTail::for_offer(all)).unwrap();
        assert!(agreed.has(Feature::About));
        let without = offer(PROTOCOL_VERSION, 2, FeatureSet::NONE);
        assert!(
            !negotiate(&all, 2, HelloTail::for_offer(without))
                .unwrap()
                .has(Feature::About)
        );
        assert!(
            !negotiate(&without, 2, HelloTail::for_offer(all))
                .unwrap()
                .has(Feature::About)
        );
        // A feature bit this build does not know is never agreed to a known one.
        let future = offer(9, 2, FeatureSet(1 << 40));
        assert_eq!(
            negotiate(&all, 2, HelloTail::for_offer(future))
                .unwrap()
                .features
                .known(),
            vec![]
        );
    }

    #[test]
    fn out_of_range_is_refused_the_same_way_on_both_sides() {
        let future = offer(7, 5, FeatureSet::all());
        let ours = Offer::current();
        let here = negotiate(&ours, 2, HelloTail::for_offer(future)).unwrap_err();
        let there = negotiate(&future, 2, HelloTail::for_offer(ours)).unwrap_err();
        assert_eq!(
            here,
            Incompatible::PeerNewer {
                peer: 7,
                peer_oldest: 5
            }
        );
        assert_eq!(
            there,
            Incompatible::PeerOlder {
                peer: PROTOCOL_VERSION,
                oldest: 5
            }
        );
        assert!(here.to_string().contains("upgrade this node"), "{here}");
        assert!(
            there.to_string().contains("older Shoal") && there.to_string().ends_with("upgrade it")
        );
        // A hello whose own version moved on cannot be read at all.
        assert!(matches!(
            negotiate(&ours, 3, HelloTail(None)),
            Err(Incompatible::PeerNewer { peer: 3, .. })
        ));
        assert!(matches!(
            negotiate(&ours, 1, HelloTail(None)),
            Err(Incompatible::PeerOlder { peer: 1, .. })
        ));
    }

    #[test]
    fn the_tail_is_invisible_to_protocol_2_and_optional_to_us() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        enum OldMessage {
            Hello { version: u32, nonce: [u8; 32] },
        }
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        enum NewMessage {
            Hello {
                version: u32,
                nonce: [u8; 32],
                tail: HelloTail,
            },
        }
        let new = NewMessage::Hello {
            version: 2,
            nonce: [7; 32],
            tail: HelloTail::for_offer(Offer::current()),
        };
        let bytes = postcard::to_allocvec(&new).unwrap();
        let old: OldMessage = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            old,
            OldMessage::Hello {
                version: 2,
                nonce: [7; 32]
            }
        );
        assert_eq!(postcard::from_bytes::<NewMessage>(&bytes).unwrap(), new);
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        let read: NewMessage = postcard::from_bytes(&old_bytes).unwrap();
        assert_eq!(
            read,
            NewMessage::Hello {
                version: 2,
                nonce: [7; 32],
                tail: HelloTail(None)
            }
        );
        // A protocol-2 offer is sent as exactly the protocol-2 hello.
        let as_2 = NewMessage::Hello {
            version: 2,
            nonce: [7; 32],
            tail: HelloTail::for_offer(Offer::protocol_2()),
        };
        assert_eq!(postcard::to_allocvec(&as_2).unwrap(), old_bytes);
    }
}
