//! `shoal sync`: asks the running daemon to catch up with every connected
//! peer now, and waits until it has — every connected peer caught up after
//! the request and no versions behind — or the timeout passes. No peer
//! connected is a failure (exit code 4), not "in sync": nothing was synced.
//!
//! This module owns the completion rule and how progress shows: a progress
//! bar on a terminal (versions applied of the peers' log heads), one plain
//! line a second otherwise, both on stderr; the result goes to stdout.

use crate::api::{PeerInfo, PeersReply};
use crate::args::SyncArgs;
use crate::daemon_client::Daemon;
use crate::datadir::DataDir;
use crate::exit::{NETWORK, coded};
use crate::output::{Output, hint};
use crate::peers::short_peer;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often the peer table is polled.
const POLL: Duration = Duration::from_millis(200);
/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// `shoal sync`.
pub fn run(data: &DataDir, args: SyncArgs, out: &mut Output) -> Result<()> {
    let daemon = Daemon::connect(data)?;
    let started = Instant::now();
    let request = daemon.sync()?;
    let deadline = started + Duration::from_secs(args.timeout);
    let mut progress = Progress::new();
    loop {
        let table = daemon.peers()?;
        let status = Status::of(&table, request.requested_ms);
        // Nothing synced is a failure, not "in sync": a script that goes on
        // after `shoal sync` would read stale data. Peers still connecting
        // get until the timeout.
        if status.connected.is_empty() && (status.connecting == 0 || Instant::now() >= deadline) {
            progress.clear();
            return Err(coded(
                NETWORK,
                "peer-unreachable",
                no_peer_message(&table, args.timeout),
            ));
        }
        progress.show(&status);
        if !status.connected.is_empty() && status.behind.is_empty() {
            progress.clear();
            let text = format!(
                "in sync with {} peer{} ({:.1}s)",
                status.connected.len(),
                if status.connected.len() == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
            return report(out, &status, started, &text);
        }
        if Instant::now() >= deadline && !status.connected.is_empty() {
            progress.clear();
            let behind: Vec<String> = status
                .behind
                .iter()
                .map(|p| {
                    if p.lag > 0 {
                        format!("{} ({} versions behind)", short_peer(&p.peer), p.lag)
                    } else {
                        format!("{} (no catch-up finished yet)", short_peer(&p.peer))
                    }
                })
                .collect();
            return Err(coded(
                NETWORK,
                "timed-out",
                format!(
                    "sync timed out after {}s; still behind: {}",
                    args.timeout,
                    behind.join(", ")
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Why nothing could be synced: no peer connected, and what the table holds.
fn no_peer_message(table: &PeersReply, timeout: u64) -> String {
    let hint = "`shoal peers` shows each peer's state";
    if table.peers.is_empty() {
        return "no peer is connected, nothing was synced: this node knows no peers yet \
                (add one with `shoal join CODE` or `shoal serve --peer MULTIADDR`)"
            .to_string();
    }
    let connecting = table
        .peers
        .iter()
        .filter(|p| p.state == "connecting")
        .count();
    if connecting > 0 {
        return format!(
            "no peer is connected, nothing was synced: {connecting} still connecting after {timeout}s ({hint})"
        );
    }
    format!(
        "no peer is connected, nothing was synced: {} known, none connected ({hint})",
        table.peers.len()
    )
}

/// Where the connected peers stand relative to the request.
struct Status {
    connected: Vec<PeerInfo>,
    /// Peers still connecting (worth waiting for when none is connected).
    connecting: usize,
    behind: Vec<PeerInfo>,
    applied: u64,
    total: u64,
}

impl Status {
    fn of(table: &PeersReply, requested_ms: u64) -> Self {
        let connected: Vec<PeerInfo> = table
            .peers
            .iter()
            .filter(|p| p.is_connected())
            .cloned()
            .collect();
        let behind = connected
            .iter()
            .filter(|p| p.lag > 0 || p.last_sync_ms.is_none_or(|t| t < requested_ms))
            .cloned()
            .collect();
        Status {
            connecting: table
                .peers
                .iter()
                .filter(|p| p.state == "connecting")
                .count(),
            applied: connected.iter().map(|p| p.applied).sum(),
            total: connected.iter().map(|p| p.remote_head).sum(),
            connected,
            behind,
        }
    }
}

fn report(out: &mut Output, status: &Status, started: Instant, text: &str) -> Result<()> {
    if out.is_json() {
        let peers: Vec<_> = status
            .connected
            .iter()
            .map(|p| json!({"peer": p.peer, "cursor": p.cursor, "lag": p.lag, "last_sync_ms": p.last_sync_ms}))
            .collect();
        out.json(&json!({
            "in_sync": status.behind.is_empty(),
            "peers": peers,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }))?;
    } else {
        out.line(text)?;
    }
    Ok(())
}

/// Progress on stderr: a bar on a terminal, a line a second otherwise.
enum Progress {
    Bar(ProgressBar),
    Plain(Option<Instant>),
}

impl Progress {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::Plain(None);
        }
        let bar = ProgressBar::new(0);
        let style =
            ProgressStyle::with_template("{spinner} syncing [{bar:30}] {pos}/{len} versions {msg}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress::Bar(bar)
    }

    fn show(&mut self, status: &Status) {
        let message = format!(
            "({} of {} peers behind)",
            status.behind.len(),
            status.connected.len()
        );
        match self {
            Progress::Bar(bar) => {
                bar.set_length(status.total.max(1));
                bar.set_position(status.applied.min(status.total));
                bar.set_message(message);
            }
            Progress::Plain(last) => {
                if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                    *last = Some(Instant::now());
                    hint(format_args!(
                        "sync: {}/{} versions applied {message}",
                        status.applied.min(status.total),
                        status.total
                    ));
                }
            }
        }
    }

    fn clear(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
