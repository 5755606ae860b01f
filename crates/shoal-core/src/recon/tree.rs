//! The fixed tree reconciliation runs over: every record id hashes to a 64-bit
//! [`ReconKey`]; a [`Node`] is a prefix of that key (4 bits per level, 16
//! children per node, 16 levels). Because the shape depends only on the hash,
//! never on the data, both replicas name the same ranges without sending
//! bounds. A node's [`Fingerprint`] is the count and the wrapping sum of its
//! records' [`Element`]s, so adding or removing a record updates every
//! ancestor in O(1) — the store maintains it incrementally.
//!
//! This module owns keys, nodes, fingerprints and per-record digests; it does
//! not decide which ranges to compare (`step.rs`) or store anything.

use crate::change::Slot;
use crate::ids::RecordId;
use crate::merge::RecordState;
use crate::slot_version::SlotVersion;
use serde::{Deserialize, Serialize};

/// Key bits consumed per tree level.
pub const LEVEL_BITS: u32 = 4;
/// Children per node.
pub const FANOUT: usize = 1 << LEVEL_BITS;
/// The deepest level: its nodes are single 64-bit keys.
pub const MAX_LEVEL: u8 = (64 / LEVEL_BITS) as u8;

fn first_bytes<const N: usize>(hash: &blake3::Hash) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&hash.as_bytes()[..N]);
    out
}

/// Where a record sits in the tree: the first 8 bytes of BLAKE3 of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReconKey(pub u64);

impl ReconKey {
    /// The key of a record id.
    pub fn of(id: &RecordId) -> Self {
        Self(u64::from_be_bytes(first_bytes(&blake3::hash(
            id.as_str().as_bytes(),
        ))))
    }
}

/// A node of the tree: the keys sharing the top `4 × level` bits `prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "(u8, u64)", into = "(u8, u64)")]
pub struct Node {
    level: u8,
    prefix: u64,
}

impl TryFrom<(u8, u64)> for Node {
    type Error = &'static str;
    fn try_from((level, prefix): (u8, u64)) -> Result<Self, Self::Error> {
        Node::new(level, prefix).ok_or("tree node out of range")
    }
}

impl From<Node> for (u8, u64) {
    fn from(node: Node) -> Self {
        (node.level, node.prefix)
    }
}

impl Node {
    /// The root: every key.
    pub const ROOT: Node = Node {
        level: 0,
        prefix: 0,
    };

    /// The node at `level` with key prefix `prefix`, if both are in range.
    pub fn new(level: u8, prefix: u64) -> Option<Self> {
        let bits = u32::from(level) * LEVEL_BITS;
        let fits = level <= MAX_LEVEL && (bits == 64 || prefix >> bits == 0);
        fits.then_some(Self { level, prefix })
    }

    /// The node's depth (0 = root).
    pub fn level(self) -> u8 {
        self.level
    }

    /// The node's key prefix (its top `4 × level` bits).
    pub fn prefix(self) -> u64 {
        self.prefix
    }

    /// Whether the node is a single key (it has no children).
    pub fn is_leaf(self) -> bool {
        self.level == MAX_LEVEL
    }

    fn low_bits(self) -> u32 {
        64 - u32::from(self.level) * LEVEL_BITS
    }

    /// The first key in the node.
    pub fn first(self) -> ReconKey {
        ReconKey(match self.low_bits() {
            64 => 0,
            low => self.prefix << low,
        })
    }

    /// The last key in the node (inclusive).
    pub fn last(self) -> ReconKey {
        ReconKey(match self.low_bits() {
            64 => u64::MAX,
            0 => self.prefix,
            low => (self.prefix << low) | ((1u64 << low) - 1),
        })
    }

    /// Whether `key` is in the node.
    pub fn contains(self, key: ReconKey) -> bool {
        self.first() <= key && key <= self.last()
    }

    /// The `index`th child (0..16), or `None` for a leaf.
    pub fn child(self, index: usize) -> Option<Node> {
        (!self.is_leaf() && index < FANOUT).then(|| Node {
            level: self.level + 1,
            prefix: (self.prefix << LEVEL_BITS) | index as u64,
        })
    }

    /// The ancestor of `key` at `level` (the root at level 0).
    pub fn at(level: u8, key: ReconKey) -> Node {
        let level = level.min(MAX_LEVEL);
        let bits = u32::from(level) * LEVEL_BITS;
        Node {
            level,
            prefix: if bits == 0 { 0 } else { key.0 >> (64 - bits) },
        }
    }
}

/// A record's contribution to its nodes' fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Element(pub u128);

/// A digest of a record's full merged state (life, every slot, value and clock).
/// Two replicas holding the same state compute the same digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateDigest(pub [u8; 16]);

/// The first 8 bytes of a [`StateDigest`], as items carry it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShortDigest(pub [u8; 8]);

impl StateDigest {
    /// The digest of `state` for record `id`.
    pub fn of(id: &RecordId, state: &RecordState) -> Self {
        Self::of_visiting(id, state, |_, _, _| {})
    }

    /// [`Self::of`], handing each slot's digested bytes to `each` as they
    /// are hashed, in slot order: the postcard encoding of `(slot, value,
    /// hlc, site, life)`. For a caller that stores that same encoding (the
    /// store's packed slots) and would otherwise encode every slot twice.
    pub fn of_visiting(
        id: &RecordId,
        state: &RecordState,
        mut each: impl FnMut(&Slot, &SlotVersion, &[u8]),
    ) -> Self {
        // One buffer hashed at once: the same digest as hashing its parts
        // one after another, for less than the calls would cost.
        let id = id.as_str();
        let mut hashed = Vec::with_capacity(256 + id.len());
        hashed.extend_from_slice(&(id.len() as u64).to_le_bytes());
        hashed.extend_from_slice(id.as_bytes());
        hashed.extend_from_slice(&state.life().0.to_le_bytes());
        // Each slot's bytes (postcard's encoding, `slot_bytes.rs`) frame
        // every part of it.
        for (slot, version) in state.slots() {
            let start = hashed.len();
            super::slot_bytes::push_slot(&mut hashed, slot, version);
            each(slot, version, &hashed[start..]);
        }
        Self(first_bytes(&blake3::hash(&hashed)))
    }

    /// The digest of the state `changes` (a record's full state, as a peer
    /// sends it) merge into.
    pub fn of_changes(id: &RecordId, changes: &[crate::change::Change]) -> Self {
        let state = RecordState::from_slots(changes.iter().map(|c| {
            (
                c.slot.clone(),
                SlotVersion {
                    value: c.value.clone(),
                    clock: c.clock,
                    life: c.life,
                    pred: c.pred,
                },
            )
        }));
        Self::of(id, &state)
    }

    /// The digest as items carry it.
    pub fn short(self) -> ShortDigest {
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.0[..8]);
        ShortDigest(out)
    }
}

/// What a replica holds of a record besides its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ItemFlags {
    /// The record is alive (not deleted).
    pub alive: bool,
    /// A blob the record references is absent here.
    pub assets_missing: bool,
}

impl ItemFlags {
    fn byte(self) -> u8 {
        u8::from(self.alive) | (u8::from(self.assets_missing) << 1)
    }
}

/// A record's element: its state digest and flags, hashed.
pub fn element(digest: StateDigest, flags: ItemFlags) -> Element {
    // One call on one buffer: a walk hashes hundreds of thousands of these,
    // and the one-shot hash skips the incremental hasher's set-up.
    let mut input = [0u8; 17];
    input[..16].copy_from_slice(&digest.0);
    input[16] = flags.byte();
    Element(u128::from_le_bytes(first_bytes(&blake3::hash(&input))))
}

/// Count and wrapping sum of the elements under a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// Records under the node.
    pub count: u64,
    /// Wrapping sum of their elements.
    pub sum: u128,
}

/// A [`Fingerprint`] compressed to 8 bytes for the wire (all zero when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ShortFingerprint(pub [u8; 8]);

impl Fingerprint {
    /// Adds a record.
    pub fn add(&mut self, element: Element) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(element.0);
    }

    /// Removes a record added before.
    pub fn remove(&mut self, element: Element) {
        self.count = self.count.saturating_sub(1);
        self.sum = self.sum.wrapping_sub(element.0);
    }

    /// Adds every record of `other`.
    pub fn merge(&mut self, other: Fingerprint) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The wire form: BLAKE3 of (sum, count), first 8 bytes.
    pub fn short(self) -> ShortFingerprint {
        if self.count == 0 {
            return ShortFingerprint::default();
        }
        let mut input = [0u8; 24];
        input[..16].copy_from_slice(&self.sum.to_le_bytes());
        input[16..].copy_from_slice(&self.count.to_le_bytes());
        ShortFingerprint(first_bytes(&blake3::hash(&input)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peers compare digests across versions: the bytes a state's digest
    /// hashes must never change. The value was computed before
    /// `of_visiting` existed (slots hashed joined, not one by one).
    #[test]
    fn a_states_digest_is_pinned_and_visiting_hands_over_what_it_hashes() {
        use crate::clock::{Clock, Hlc};
        use crate::ids::{FieldName, SiteId};
        use crate::intent::{Intent, plan};
        use serde_json::json;
        let id = RecordId::new("note-1").unwrap();
        let clock = |ms, site| Clock {
            hlc: Hlc::new(ms, 0),
            site: SiteId(site),
        };
        let object = |v: serde_json::Value| v.as_object().unwrap().clone();
        let steps = [
            (
                Intent::Put(object(json!({"title": "a", "n": 1}))),
                clock(1_000, 7),
            ),
            (
                Intent::MapSet {
                    field: FieldName::new("tags").unwrap(),
                    key: "x".into(),
                    value: json!(true),
                },
                clock(2_000, 9),
            ),
            (Intent::Patch(object(json!({"n": null}))), clock(3_000, 7)),
        ];
        let mut state = RecordState::default();
        for (intent, clock) in steps {
            for (slot, version) in plan(&state, &intent, clock).unwrap() {
                state.apply(slot, version);
            }
        }
        let digest = StateDigest::of(&id, &state);
        let hex: String = digest.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "4e27e4fb58c2d1a671efc30fe79b158d");
        let mut handed = Vec::new();
        let mut slots = Vec::new();
        let visited = StateDigest::of_visiting(&id, &state, |slot, version, bytes| {
            slots.push((slot.clone(), version.clone()));
            handed.push(bytes.to_vec());
        });
        assert_eq!(visited, digest);
        let expected: Vec<_> = state.slots().map(|(s, v)| (s.clone(), v.clone())).collect();
        assert_eq!(slots, expected, "every slot, in order");
        for ((slot, version), bytes) in expected.iter().zip(&handed) {
            assert_eq!(*bytes, super::super::slot_bytes::postcard_of(slot, version));
        }
    }

    #[test]
    fn nodes_partition_the_key_space() {
        let key = ReconKey(0xdead_beef_0123_4567);
        for level in 0..=MAX_LEVEL {
            let node = Node::at(level, key);
            assert!(node.contains(key), "level {level}");
            if let Some(child) = node.child(0xd) {
                assert!(child.first() >= node.first() && child.last() <= node.last());
            }
        }
        assert_eq!(Node::at(MAX_LEVEL, key).first(), key);
        assert_eq!(Node::at(MAX_LEVEL, key).last(), key);
        assert_eq!(Node::ROOT.last(), ReconKey(u64::MAX));
        assert!(Node::new(1, 16).is_none());
        assert!(Node::new(17, 0).is_none());
        assert!(Node::at(MAX_LEVEL, key).child(0).is_none());
    }

    #[test]
    fn fingerprints_are_order_independent_and_removable() {
        let e = |n: u8| element(StateDigest([n; 16]), ItemFlags::default());
        let (mut a, mut b) = (Fingerprint::default(), Fingerprint::default());
        a.add(e(1));
        a.add(e(2));
        b.add(e(2));
        b.add(e(1));
        assert_eq!(a.short(), b.short());
        b.add(e(3));
        assert_ne!(a.short(), b.short());
        b.remove(e(3));
        assert_eq!(a, b);
        assert_eq!(Fingerprint::default().short(), ShortFingerprint::default());
    }

    #[test]
    fn flags_change_the_element() {
        let d = StateDigest([7; 16]);
        let alive = ItemFlags {
            alive: true,
            assets_missing: false,
        };
        let missing = ItemFlags {
            assets_missing: true,
            ..alive
        };
        assert_ne!(element(d, alive), element(d, missing));
    }

    #[test]
    fn elements_and_short_fingerprints_are_pinned() {
        // Wire format: both sides must compute the same values. Pinned on the
        // code before the one-shot hashing.
        let d = StateDigest(std::array::from_fn(|i| i as u8 * 13));
        let e = element(
            d,
            ItemFlags {
                alive: true,
                assets_missing: true,
            },
        );
        let mut fp = Fingerprint::default();
        fp.add(e);
        fp.add(element(d, ItemFlags::default()));
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(format!("{:032x}", e.0), "f48c5454f2999e1a1bbe908b3cbec6f4");
        assert_eq!(hex(&fp.short().0), "099dbd71ebe910e1");
    }
}
