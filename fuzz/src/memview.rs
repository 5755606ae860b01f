//! A replica in memory for the reconciliation target: records as the walk
//! lists them (id, digest, flags), fingerprints summed on demand. The
//! store's real view is tested elsewhere; this one only has to be correct.

use shoal_core::RecordId;
use shoal_core::recon::{
    Element, Fingerprint, Item, ItemFlags, Node, ReconKey, ReconView, ShortDigest, StateDigest,
    element,
};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// Records by tree key (a `Vec`: two ids may share a key).
#[derive(Debug, Clone, Default)]
pub struct MemView {
    records: BTreeMap<ReconKey, Vec<(Item, Element)>>,
}

impl MemView {
    /// Holds `id` with a digest made from `version` and `flags`.
    pub fn put(&mut self, id: &RecordId, version: u8, flags: ItemFlags) {
        let slot = self.records.entry(ReconKey::of(id)).or_default();
        slot.retain(|(item, _)| item.id != *id);
        let mut digest = [0u8; 16];
        digest[..8].copy_from_slice(&blake3::hash(id.as_str().as_bytes()).as_bytes()[..8]);
        digest[8] = version;
        let digest = StateDigest(digest);
        let item = Item {
            id: id.clone(),
            digest: ShortDigest(digest.short().0),
            flags,
        };
        slot.push((item, element(digest, flags)));
    }

    fn under(&self, node: Node) -> impl Iterator<Item = &(Item, Element)> {
        self.records
            .range(node.first()..=node.last())
            .flat_map(|(_, slot)| slot)
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
