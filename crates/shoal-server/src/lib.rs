//! Shoal's daemon as a library: the HTTP API (docs/http-api.md), its
//! change feed, `/metrics`, `/healthz`, `/readyz`, the web dashboard and the
//! example apps under `/apps/`,
//! served over a running [`shoal::Node`].
//!
//! `shoal serve` (crates/shoal-cli) is one user; an app that embeds `shoal`
//! mounts the same routes in its own axum app with [`router`] (see
//! `examples/embed.rs`), or runs the whole loop with [`serve`]. This crate
//! owns the HTTP surface, its JSON shapes and the serving loop; it must not
//! parse command lines, watch signals or know the CLI's data directory.

pub mod api;
mod apps;
mod dashboard;
mod gc_schedule;
pub mod http;
mod metrics;
mod options;
mod peer_book;
mod serve;
mod served_file;
mod web_pkg;

pub use gc_schedule::GcSchedule;
pub use http::{Failure, PeerBook, invite_address, router};
pub use options::{MetricsAccess, Options, ServeOptions};
pub use serve::{ServeError, Server, Started, serve, serve_until};
