//! The bytes a slot version is digested as: postcard's encoding of the
//! tuple `(slot, value, hlc, site, life)`, written here directly.
//!
//! Those bytes are part of the wire format (a record's [`StateDigest`]
//! hashes them, and the store packs them into its rows), so they must stay
//! exactly postcard's: the tests compare this encoder with postcard's own
//! for any slot and version. Written by hand because postcard goes through
//! serde, and a [`crate::FieldName`] serializes into a new `String` each
//! time — an allocation per field of every record written or merged.
//!
//! It owns that encoding and postcard's unsigned varint; it must not
//! encode anything else.
//!
//! [`StateDigest`]: super::StateDigest

use crate::change::Slot;
use crate::slot_version::SlotVersion;

/// Appends `n` as postcard writes an unsigned integer (a `u64`, a `usize`
/// length, an enum's variant index): LEB128, seven bits a byte, lowest
/// first.
pub fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends a string as postcard writes one: its length, then its bytes.
fn push_str(out: &mut Vec<u8>, s: &str) {
    push_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends the digested bytes of `version` in `slot`: postcard's encoding
/// of `(slot, value, hlc, site, life)`.
pub(crate) fn push_slot(out: &mut Vec<u8>, slot: &Slot, version: &SlotVersion) {
    // An enum is its variant's index, then the variant's fields.
    match slot {
        Slot::Life => push_varint(out, 0),
        Slot::Field(field) => {
            push_varint(out, 1);
            push_str(out, field.as_str());
        }
        Slot::Entry(field, key) => {
            push_varint(out, 2);
            push_str(out, field.as_str());
            push_str(out, key);
        }
    }
    match &version.value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            push_str(out, value.as_str());
        }
    }
    push_varint(out, version.clock.hlc.packed());
    push_varint(out, version.clock.site.0);
    push_varint(out, version.life.0);
}

/// Postcard's own encoding of what [`push_slot`] writes, which tests hold
/// it to.
#[cfg(test)]
pub(crate) fn postcard_of(slot: &Slot, version: &SlotVersion) -> Vec<u8> {
    let part = (
        slot,
        version.value.as_ref().map(|v| v.as_str()),
        version.clock.hlc.packed(),
        version.clock.site.0,
        version.life.0,
    );
    postcard::to_allocvec(&part).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CanonicalJson, Clock, FieldName, Hlc, Life, SiteId};
    use proptest::prelude::*;

    fn slot_strategy() -> impl Strategy<Value = Slot> {
        let name = "[a-z_]{1,20}|[\\u{a0}-\\u{7ff}]{1,60}".prop_map(|n| FieldName::new(n).unwrap());
        prop_oneof![
            Just(Slot::Life),
            name.clone().prop_map(Slot::Field),
            (name, ".{0,200}").prop_map(|(f, k)| Slot::Entry(f, k)),
        ]
    }

    proptest! {
        /// Any slot, value and clock encode as postcard encodes them.
        #[test]
        fn slot_bytes_are_postcards(
            slot in slot_strategy(),
            text in proptest::option::of(".{0,300}"),
            hlc in any::<u64>(),
            site in any::<u64>(),
            life in any::<u64>(),
        ) {
            let version = SlotVersion {
                value: text.map(|t| CanonicalJson::from_value(&serde_json::Value::String(t))),
                clock: Clock { hlc: Hlc::from_packed(hlc), site: SiteId(site) },
                life: Life(life),
                pred: None,
            };
            let mut out = vec![9];
            push_slot(&mut out, &slot, &version);
            prop_assert_eq!(&out[1..], &postcard_of(&slot, &version)[..]);
        }

        /// Any integer is postcard's varint.
        #[test]
        fn varints_are_postcards(n in any::<u64>()) {
            let mut out = Vec::new();
            push_varint(&mut out, n);
            prop_assert_eq!(out, postcard::to_allocvec(&n).unwrap());
        }
    }

    #[test]
    fn varint_edges_are_postcards() {
        for n in [
            0,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_varint(&mut out, n);
            assert_eq!(out, postcard::to_allocvec(&n).unwrap(), "{n}");
        }
        // A length is a usize.
        let mut out = Vec::new();
        push_varint(&mut out, 300);
        assert_eq!(out, postcard::to_allocvec(&300usize).unwrap());
    }
}
