//! The `shoal-store` crate's integration tests, one module per file, built as
//! one test binary (one link, not one per file; see `crates/shoal/tests/it`).
//!
//! Run one file's tests with `cargo test -p shoal-store --test it sync_sim::`.

mod blob_common;
mod convergence_model;
mod convergence_support;
#[path = "../fixtures/script.rs"]
mod script;
mod sync_sim_support;

mod batched_writes;
mod blob_claim;
mod blob_files;
mod blob_gc;
mod blob_index;
mod blob_scrub;
mod checkpoints;
mod conflict_journal;
mod conflict_merge;
mod convergence;
mod convergence_fixed;
mod devices;
mod echo;
mod gc;
mod held;
mod held_back;
mod log_positions;
mod recon_index;
mod shared_file;
mod sync_layouts;
mod sync_sim;
mod sync_sim_cases;
mod upgrade_fixtures;
mod without_waiting;
