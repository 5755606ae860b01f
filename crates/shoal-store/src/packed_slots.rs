//! The packed slot layout of a `records` row: every slot version of a
//! record with its clock, life and the db_version that wrote it, in one
//! postcard blob — [`pack`] and [`pack_digested`] write it,
//! [`unpack_slots`] reads it. Two layouts: plain, and one that also
//! carries each version's predecessor (first byte [`WITH_PREDS`]).
//!
//! This is the only module that knows the layout; what a row holds
//! besides, and when it is written, is `rows.rs`'s.

use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use shoal_core::recon::{StateDigest, push_varint};
use shoal_core::{
    CanonicalJson, Clock, DbVersion, Hlc, Life, RecordId, RecordState, SiteId, Slot, SlotVersion,
};

/// One slot version as packed in a record row.
#[derive(Serialize, Deserialize)]
struct Packed {
    slot: Slot,
    value: Option<String>,
    hlc: u64,
    site: u64,
    life: u64,
    dbv: u64,
}

/// The same layout as [`Packed`], borrowed, for writing without copying values.
#[derive(Serialize)]
struct PackedRef<'a> {
    slot: &'a Slot,
    value: Option<&'a str>,
    hlc: u64,
    site: u64,
    life: u64,
    dbv: u64,
}

/// First byte of a packed slots blob in the layout with predecessors
/// ([`PackedPred`]). The plain layout starts with the postcard length of a
/// non-empty list (a stored record has at least one slot), never 0, so the
/// two cannot be confused; a record none of whose versions names a
/// predecessor (e.g. one only ever created) keeps the plain layout and
/// costs nothing more.
const WITH_PREDS: u8 = 0;

/// One slot version as packed in the layout with predecessors: [`Packed`]
/// plus the clock of the version its writer replaced (hlc, site). Postcard
/// writes a nested struct as its fields in order, so this is [`Packed`]'s
/// fields then `pred`.
#[derive(Serialize, Deserialize)]
struct PackedPred {
    plain: Packed,
    pred: Option<(u64, u64)>,
}

/// The same layout as [`PackedPred`], borrowed.
#[derive(Serialize)]
struct PackedPredRef<'a> {
    plain: PackedRef<'a>,
    pred: Option<(u64, u64)>,
}

/// Decodes a record's packed slots as stored: (slot, version, written at).
/// They are already merged state, so no merge runs here.
pub(crate) fn unpack_slots(blob: &[u8]) -> Result<Vec<(Slot, SlotVersion, DbVersion)>, StoreError> {
    let corrupt = |e: postcard::Error| StoreError::Corrupt {
        path: Default::default(),
        detail: format!("undecodable slots of a record: {e}"),
    };
    let packed: Vec<PackedPred> = match blob.split_first() {
        Some((&WITH_PREDS, rest)) => postcard::from_bytes(rest).map_err(corrupt)?,
        _ => postcard::from_bytes::<Vec<Packed>>(blob)
            .map_err(corrupt)?
            .into_iter()
            .map(|plain| PackedPred { plain, pred: None })
            .collect(),
    };
    let clock = |hlc, site| Clock {
        hlc: Hlc::from_packed(hlc),
        site: SiteId(site),
    };
    Ok(packed
        .into_iter()
        .map(|PackedPred { plain: p, pred }| {
            let version = SlotVersion {
                // Our own encoding, read back from our own file.
                value: p.value.map(CanonicalJson::from_trusted),
                clock: clock(p.hlc, p.site),
                life: Life(p.life),
                pred: pred.map(|(hlc, site)| clock(hlc, site)),
            };
            (p.slot, version, DbVersion(p.dbv))
        })
        .collect())
}

/// A record's slot versions packed for its row: the plain layout, or the one
/// with predecessors if any version names one.
pub(crate) fn pack(
    state: &RecordState,
    written_at: impl Fn(&Slot, &SlotVersion) -> DbVersion,
) -> Vec<u8> {
    // Encoding plain data into a Vec cannot fail.
    if state.slots().any(|(_, v)| v.pred.is_some()) {
        let packed: Vec<PackedPredRef<'_>> = state
            .slots()
            .map(|(slot, v)| PackedPredRef {
                plain: packed_ref(slot, v, written_at(slot, v)),
                pred: v.pred.map(|p| (p.hlc.packed(), p.site.0)),
            })
            .collect();
        let mut out = Vec::with_capacity(packed_size_hint(state) + 1);
        out.push(WITH_PREDS);
        return postcard::to_extend(&packed, out).unwrap_or_default();
    }
    let packed: Vec<PackedRef<'_>> = state
        .slots()
        .map(|(slot, v)| packed_ref(slot, v, written_at(slot, v)))
        .collect();
    postcard::to_extend(&packed, Vec::with_capacity(packed_size_hint(state))).unwrap_or_default()
}

/// A slot version in the plain layout, borrowed.
fn packed_ref<'a>(slot: &'a Slot, v: &'a SlotVersion, written_at: DbVersion) -> PackedRef<'a> {
    PackedRef {
        slot,
        value: v.value.as_ref().map(CanonicalJson::as_str),
        hlc: v.clock.hlc.packed(),
        site: v.clock.site.0,
        life: v.life.0,
        dbv: written_at.0,
    }
}

/// [`pack`] and the record's [`StateDigest`] together, each slot encoded
/// once: in the plain layout a slot packs as the very bytes the digest
/// hashes (`(slot, value, hlc, site, life)`, the fields of [`PackedRef`]
/// before `dbv`) followed by its `dbv`, so the blob is built from what the
/// digest hands over. A state with predecessors packs apart.
pub(crate) fn pack_digested(
    id: &RecordId,
    state: &RecordState,
    written_at: impl Fn(&Slot, &SlotVersion) -> DbVersion,
) -> (Vec<u8>, StateDigest) {
    if state.slots().any(|(_, v)| v.pred.is_some()) {
        return (pack(state, written_at), StateDigest::of(id, state));
    }
    // The list's length prefix, then each slot's digested bytes and its
    // `dbv`, as postcard would write them.
    let mut out = Vec::with_capacity(packed_size_hint(state));
    push_varint(&mut out, state.slots().count() as u64);
    let digest = StateDigest::of_visiting(id, state, |slot, version, encoded| {
        out.extend_from_slice(encoded);
        push_varint(&mut out, written_at(slot, version).0);
    });
    (out, digest)
}

/// Bytes enough for a record's packed slots in either layout (postcard grows
/// its output a few bytes at a time, so an unsized vector was reallocated
/// several times per record): per slot, its names and value plus at most
/// 8 varints of 10 bytes and a few tags.
fn packed_size_hint(state: &RecordState) -> usize {
    10 + state
        .slots()
        .map(|(slot, v)| {
            let names = match slot {
                Slot::Life => 0,
                Slot::Field(field) => field.as_str().len(),
                Slot::Entry(field, key) => field.as_str().len() + key.len(),
            };
            names + v.value.as_ref().map_or(0, |v| v.as_str().len()) + 96
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shoal_core::{FieldName, Intent, plan};

    fn clock(ms: u64) -> Clock {
        Clock {
            hlc: Hlc::new(ms, 0),
            site: SiteId(7),
        }
    }

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    /// The states a record passes through: created, given a map entry,
    /// a field removed (a tombstone), written again (versions naming the
    /// ones they replaced), deleted.
    fn states() -> Vec<RecordState> {
        let steps = [
            Intent::Put(object(json!({"title": "a", "n": 1}))),
            Intent::MapSet {
                field: FieldName::new("tags").unwrap(),
                key: "x".into(),
                value: json!(true),
            },
            Intent::Patch(object(json!({"n": null}))),
            Intent::Put(object(json!({"title": "b"}))),
            Intent::Delete,
        ];
        let mut state = RecordState::default();
        let mut seen = Vec::new();
        for (i, intent) in steps.iter().enumerate() {
            for (slot, version) in plan(&state, intent, clock(1_000 * (i as u64 + 1))).unwrap() {
                state.apply(slot, version);
            }
            seen.push(state.clone());
        }
        seen
    }

    #[test]
    fn packing_with_the_digest_writes_what_packing_alone_does() {
        let id = RecordId::new("note-1").unwrap();
        // Slots written at different versions (the life first, fields
        // later; 300 needs a two-byte varint).
        let written_at = |slot: &Slot, _: &SlotVersion| match slot {
            Slot::Life => DbVersion(1),
            Slot::Field(_) => DbVersion(300),
            Slot::Entry(..) => DbVersion(70_000),
        };
        let states = states();
        assert!(
            states
                .iter()
                .any(|s| s.slots().any(|(_, v)| v.pred.is_some())),
            "a state in the layout with predecessors"
        );
        assert!(
            states
                .iter()
                .any(|s| s.slots().all(|(_, v)| v.pred.is_none())),
            "a state in the plain layout"
        );
        for state in &states {
            let (blob, digest) = pack_digested(&id, state, written_at);
            assert_eq!(blob, pack(state, written_at));
            assert_eq!(digest, StateDigest::of(&id, state));
            let unpacked = unpack_slots(&blob).unwrap();
            let expected: Vec<_> = state
                .slots()
                .map(|(s, v)| (s.clone(), v.clone(), written_at(s, v)))
                .collect();
            assert_eq!(unpacked, expected);
        }
    }
}
