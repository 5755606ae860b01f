//! The `shoal` crate's integration tests, one module per file, built as one
//! test binary: one link instead of one per file (33 binaries of about 85 MB
//! each filled a CI machine's disk). `sync_strangers.rs` stays a binary of
//! its own: it bounds its process's memory growth, which tests running beside
//! it would add to.
//!
//! Run one file's tests with `cargo test -p shoal --test it sync_net::`.
//! Tests that run themselves as a child process name their test by its path
//! here (`crash_safety::child_writer`).

#[path = "../common/mod.rs"]
mod common;
mod crash_safety_support;
mod refusal;
#[path = "../common/spy.rs"]
mod spy;

mod api;
mod bad_files;
mod bad_input;
mod bad_remote;
mod blobs_federation;
mod blobs_net;
mod blobs_on_demand;
mod blobs_policy;
mod clock_skew;
mod conflicts_net;
mod crash_safety;
mod data_versions;
mod federation;
mod federation_blind;
mod federation_rules;
mod federation_sync;
mod fuzz_seeds;
mod gc_net;
mod partial_age_out;
mod partial_net;
mod partial_report;
mod record_state_cap;
mod sync_applier;
mod sync_big;
mod sync_find;
mod sync_hostile;
mod sync_in_place;
mod sync_mdns;
mod sync_net;
mod sync_paths;
mod sync_restart;
mod sync_versions;
mod sync_websocket;
