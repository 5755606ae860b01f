//! The `shoal-cli` crate's integration tests, one module per file, built as
//! one test binary (one link, not one per file; see `crates/shoal/tests/it`).
//! They run the real `shoal` binary (`CARGO_BIN_EXE_shoal`).
//!
//! Run one file's tests with `cargo test -p shoal-cli --test it natlab::`.

mod cli_support;
mod common;

mod backup_restore;
mod blob_cli;
mod blob_on_demand_cli;
mod cli;
mod cli_conflicts;
mod cli_errors;
mod cli_output;
mod cli_upgrade;
mod daemon;
mod demo;
mod demo_wan;
mod devices;
mod federation_cli;
mod gc_cli;
mod http_api;
mod http_blobs;
mod http_feed;
mod http_peers;
mod http_records;
mod http_sync;
mod metrics;
mod natlab;
mod natlab_blobs;
mod natlab_devices;
mod natlab_find;
mod natlab_path;
mod openapi_valid;
mod partial_cli;
mod passphrase;
mod schema_cli;
mod service_config;
mod websocket_listen;
