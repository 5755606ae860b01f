//! What Shoal's fuzz targets share: builders of well-formed protocol values
//! from fuzz bytes (`build`), the honest peer that seals frames for a target
//! (`peer`), an in-memory reconciliation replica (`memview`), the op-stream
//! reader of the session target (`ops`) and an allocator that counts live
//! bytes (`alloc`).
//!
//! Nothing here decides what is valid: every verdict is the main crates'.
//! This crate is only ever built by `cargo fuzz` (see `scripts/fuzz.sh`).

pub mod alloc;
pub mod build;
pub mod memview;
pub mod ops;
pub mod peer;

/// The group key every target uses (fixed, so crashes replay).
pub fn group_key() -> shoal_core::sync::GroupKey {
    shoal_core::sync::GroupKey::from_random([0x5a; 32])
}

/// Decodes `bytes` as postcard and checks decode → encode → decode is stable:
/// whatever a peer's bytes decode to encodes to bytes that decode to it again.
pub fn stable<T>(bytes: &[u8]) -> Option<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = postcard::from_bytes(bytes).ok()?;
    let again = postcard::to_allocvec(&value).expect("a decoded value encodes");
    let back: T = postcard::from_bytes(&again).expect("an encoded value decodes");
    assert_eq!(back, value, "decode → encode → decode changed the value");
    Some(value)
}
