//! Shoal's daemon as a library: the HTTP API (docs/http-api.md), its
//! change feed and the web dashboard, served over a running [`shoal::Node`].
//!
//! `shoal serve` (crates/shoal-cli) is one user; an app that embeds `shoal`
//! can mount the same routes in its own axum app. This crate owns the HTTP
//! surface and its JSON shapes; it must not parse command lines or know
//! the CLI's data directory.

pub mod api;
mod dashboard;
pub mod http;
