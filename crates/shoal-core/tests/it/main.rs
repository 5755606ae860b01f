//! The `shoal-core` crate's integration tests, one module per file, built as
//! one test binary (one link, not one per file; see `crates/shoal/tests/it`).
//!
//! Run one file's tests with `cargo test -p shoal-core --test it merge_laws::`.

mod common;

mod blob;
mod conflict_laws;
mod gc_sim;
mod handshake;
mod lookup;
mod merge_laws;
mod reconcile;
mod session_partial;
mod session_requests;
mod wire_roundtrip;
