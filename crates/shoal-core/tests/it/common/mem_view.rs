//! An in-memory replica for the reconciliation tests: [`MemView`] stands in
//! for the store's side of one collection ([`ReconView`]), with helpers to
//! fill it. It only holds records; walks and lookups are the tests' own.
#![allow(dead_code)]

use shoal_core::RecordId;
use shoal_core::recon::{
    Element, Fingerprint, Held, Item, ItemFlags, Node, ReconKey, ReconView, StateDigest, element,
};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::OnceLock;

/// A replica in memory: each record as listed, with its element (a hash),
/// by tree key (a `Vec` in case two ids share a key).
#[derive(Debug, Clone, Default)]
pub struct MemView {
    records: BTreeMap<ReconKey, Vec<(Item, Element)>>,
}

pub fn id(n: usize) -> RecordId {
    RecordId::new(format!("r{n}")).expect("valid record id")
}

pub const fn flags(alive: bool, assets_missing: bool) -> ItemFlags {
    ItemFlags {
        alive,
        assets_missing,
    }
}

pub const ALIVE: ItemFlags = flags(true, false);

/// The digest of record `id` at `version`: the same on every replica.
pub fn digest(id: &RecordId, version: u64) -> StateDigest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(id.as_str().as_bytes());
    hasher.update(&version.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    StateDigest(out)
}

impl MemView {
    /// Holds record `id` at `version` with `flags`, replacing what was held.
    pub fn put(&mut self, id: &RecordId, version: u64, flags: ItemFlags) {
        self.remove(id);
        let digest = digest(id, version);
        let item = Item {
            id: id.clone(),
            digest: digest.short(),
            flags,
        };
        let slot = self.records.entry(ReconKey::of(id)).or_default();
        slot.push((item, element(digest, flags)));
    }

    /// Forgets record `id`.
    pub fn remove(&mut self, id: &RecordId) {
        if let Some(slot) = self.records.get_mut(&ReconKey::of(id)) {
            slot.retain(|(item, _)| item.id != *id);
        }
    }

    pub fn under(&self, node: Node) -> impl Iterator<Item = &(Item, Element)> {
        let range = self.records.range(node.first()..=node.last());
        range.flat_map(|(_, slot)| slot)
    }

    /// Every record, as a difference reports it.
    pub fn held(&self) -> BTreeMap<RecordId, Held> {
        let held = |i: &Item| Held {
            digest: i.digest,
            flags: i.flags,
        };
        let all = self.under(Node::ROOT);
        all.map(|(item, _)| (item.id.clone(), held(item))).collect()
    }
}

impl ReconView for MemView {
    type Error = Infallible;

    fn fingerprint(&mut self, node: Node) -> Result<Fingerprint, Infallible> {
        let mut fingerprint = Fingerprint::default();
        self.under(node).for_each(|(_, e)| fingerprint.add(*e));
        Ok(fingerprint)
    }

    fn items(&mut self, node: Node) -> Result<Vec<Item>, Infallible> {
        Ok(self.under(node).map(|(item, _)| item.clone()).collect())
    }
}

/// `n` alive records `r0..rn` at version 0.
pub fn replica(n: usize) -> MemView {
    let mut view = MemView::default();
    (0..n).for_each(|i| view.put(&id(i), 0, ALIVE));
    view
}

/// 100,000 alive records, built once.
pub fn big() -> MemView {
    static BIG: OnceLock<MemView> = OnceLock::new();
    BIG.get_or_init(|| replica(100_000)).clone()
}
