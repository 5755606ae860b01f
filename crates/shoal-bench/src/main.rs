//! `shoal-bench`: measures Shoal against raw SQLite, one subcommand per scenario.
//!
//! Each scenario prints readable lines to stdout and, as its very last line,
//! exactly one JSON object with its results, so scripts can read
//! `tail -n 1`. Progress, if any, goes to stderr and only when stderr is a
//! terminal.

mod blob;
mod browser;
mod browser_scripts;
mod browser_worker;
mod catchup;
mod conflict;
mod fanout;
mod gc;
mod latency;
mod partial;
mod partial_handshake;
mod peers;
mod progress;
mod raw_layout;
mod reconcile;
mod reconnect;
mod report;
mod transport;
mod wan;
mod wan_lab;
mod webdriver;
mod write;

use clap::{Parser, Subcommand};

/// Benchmarks for Shoal, a local-first replicated database on SQLite.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Single-record puts (one transaction each) against raw SQLite, plus one large batch.
    Write(write::Args),
    /// A holds N records, B starts empty: time until B holds them all, B's peak memory, bytes.
    Catchup(catchup::Args),
    /// Sequential writes on A (or by the `shoal` CLI beside it), each timed until B's subscription yields it.
    Latency(latency::Args),
    /// A and B update the same records at once (a field each and a shared one): time until identical.
    Conflict(conflict::Args),
    /// One writer, P connected peers: each write timed until every peer has it; writer CPU per write.
    Fanout(fanout::Args),
    /// B was in sync, goes offline, A writes M records, B reconnects: seconds and bytes.
    Reconnect(reconnect::Args),
    /// A and B equal but for D records: round trips, bytes and seconds of the integrity report.
    Reconcile(reconcile::Args),
    /// One blob A -> B over the node's transport, vs the same bytes over a plain socket.
    Blob(blob::Args),
    /// Relay and hole punching in the NAT lab (root): first record through the relay, time to go direct over N cone rounds, catch-up rates relayed and direct.
    Wan(wan::Args),
    /// N records written then deleted: rows and bytes one tombstone collection pass reclaims, and its time.
    Gc(gc::Args),
    /// A tab in headless Chromium as a peer of a daemon: gzipped .wasm size, durable puts/s in the tab, a 10,000-record catch-up into an empty tab, tab-to-native latency.
    Browser(browser::Args),
    /// A holds N records, B takes 1 % by a filter: catch-up seconds and bytes against a full catch-up of as many, and the handshake cost.
    Partial(partial::Args),
    /// The B side of `catchup`, run as a child process (not for direct use).
    #[command(hide = true)]
    Follow(catchup::FollowArgs),
}

fn main() -> anyhow::Result<()> {
    // Logs only when asked (RUST_LOG), on stderr: the JSON line stays last on stdout.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match Cli::parse().scenario {
        Scenario::Write(args) => write::run(&args),
        Scenario::Catchup(args) => catchup::run(&args),
        Scenario::Latency(args) => latency::run(&args),
        Scenario::Conflict(args) => conflict::run(&args),
        Scenario::Fanout(args) => fanout::run(&args),
        Scenario::Reconnect(args) => reconnect::run(&args),
        Scenario::Reconcile(args) => reconcile::run(&args),
        Scenario::Blob(args) => blob::run(&args),
        Scenario::Wan(args) => wan::run(&args),
        Scenario::Gc(args) => gc::run(&args),
        Scenario::Browser(args) => browser::run(&args),
        Scenario::Partial(args) => partial::run(&args),
        Scenario::Follow(args) => catchup::follow(&args),
    }
}
