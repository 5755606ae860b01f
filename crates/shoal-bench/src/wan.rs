//! The `wan` scenario: real `shoal relay` and `shoal serve` processes in the
//! NAT lab (`wan_lab.rs`; needs root and network namespaces).
//!
//! Every round is a fresh lab: a relay in the "internet", A behind one
//! router holding a reservation on it, B behind the other knowing A only by
//! its relayed address. The times come from B's daemon (`shoal peers
//! --json`: `path_since_ms` when the path last changed, `last_sync_ms` when a
//! catch-up completed), against the wall clock when B was started.
//!
//! - first record: symmetric NATs (the relay is the only path), A holds one
//!   record: B start → B's catch-up of it completed;
//! - `--attempts` cone rounds: B start → the connection is direct; a round
//!   whose connection is not direct within 10 s failed;
//! - relayed catch-up: symmetric NATs, A holds `--records`: records over
//!   the time from the relayed connection opening to the catch-up ending;
//! - direct catch-up: cone NATs, the same, counting only the changes the
//!   session on the direct connection received and the time since it opened.

use crate::report::{median, print_json_last, rate, round_to, verdict};
use crate::wan_lab::{Lab, SKIP, Tools, poll};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Arguments of `wan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cone-NAT rounds, each timing how soon the connection goes direct.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    attempts: u32,
    /// Records A holds for the two catch-ups (through the relay, direct).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// The `shoal` binary (default: the one beside this executable).
    #[arg(long)]
    shoal_bin: Option<PathBuf>,
    /// The lab script (default: scripts/natlab.sh of this source tree).
    #[arg(long)]
    natlab: Option<PathBuf>,
}

#[derive(Serialize)]
struct Figures {
    scenario: &'static str,
    first_record_via_relay_ms: u64,
    direct_after_ms: Option<u64>,
    punch_attempts: u32,
    punch_successes: u32,
    relayed_catchup_records_per_s: f64,
    direct_catchup_records_per_s: Option<f64>,
    records: u64,
}

/// How long a cone round may take to go direct and still count.
const DIRECT_WITHIN: Duration = Duration::from_secs(10);

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let tools = Tools {
        natlab: args.natlab.clone().unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../scripts/natlab.sh"
            ))
        }),
        shoal: crate::latency::shoal_binary(args.shoal_bin.as_deref())?,
    };
    if let Err(reason) = tools.check() {
        eprintln!("wan: needs root and network namespaces with nftables NAT; {reason}");
        std::process::exit(SKIP);
    }
    println!("wan: relay + two NATed nodes in network namespaces (scripts/natlab.sh)");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let first = round(&tools, "symmetric", next(), 1, Want::CaughtUp)?;
    let first_ms = first.at("last_sync_ms")?.saturating_sub(first.started_ms);
    println!(
        "first record through the relay: {first_ms} ms after B started (target < 2,000: {})",
        verdict(first_ms < 2_000)
    );
    let mut direct_ms = Vec::new();
    for attempt in 1..=args.attempts {
        let r = round(&tools, "cone", next(), 1, Want::Direct)?;
        let after = r.peer.as_ref().and_then(|p| p["path_since_ms"].as_u64());
        match after.map(|t| t.saturating_sub(r.started_ms)) {
            Some(ms) if r.reached && ms <= DIRECT_WITHIN.as_millis() as u64 => {
                println!("cone round {attempt}: direct after {ms} ms");
                direct_ms.push(ms as f64);
            }
            _ => println!("cone round {attempt}: not direct within {DIRECT_WITHIN:?}"),
        }
    }
    let successes = direct_ms.len() as u32;
    let direct_after = (!direct_ms.is_empty()).then(|| median(&direct_ms).round() as u64);
    println!(
        "hole punching: {successes} of {} rounds direct within 10 s (target >= 9 of 10: {}); median {}",
        args.attempts,
        verdict(successes * 10 >= args.attempts * 9),
        direct_after.map_or("-".into(), |ms| format!("{ms} ms"))
    );
    let relayed = round(&tools, "symmetric", next(), args.records, Want::CaughtUp)?;
    let relayed_rate = catchup_rate(&relayed, args.records)?;
    println!(
        "catch-up of {} records through the relay: {}",
        args.records,
        rate(relayed_rate)
    );
    let direct = round(
        &tools,
        "cone",
        next(),
        args.records,
        Want::DirectAndCaughtUp,
    )?;
    let direct_rate = match direct.reached {
        true => catchup_rate(&direct, args.records).ok(),
        false => None,
    };
    match direct_rate {
        Some(r) => println!(
            "catch-up of {} records, direct after the punch: {}",
            args.records,
            rate(r)
        ),
        None => println!(
            "catch-up direct: not measured (the connection did not go direct, or the catch-up \
             ended over the relay before the punch)"
        ),
    }
    print_json_last(&Figures {
        scenario: "wan",
        first_record_via_relay_ms: first_ms,
        direct_after_ms: direct_after,
        punch_attempts: args.attempts,
        punch_successes: successes,
        relayed_catchup_records_per_s: round_to(relayed_rate, 1),
        direct_catchup_records_per_s: direct_rate.map(|r| round_to(r, 1)),
        records: args.records,
    })
}

/// What a round waits for in B's view of A.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// The connection is direct.
    Direct,
    /// A catch-up completed with nothing left to apply.
    CaughtUp,
    /// Both.
    DirectAndCaughtUp,
}

impl Want {
    fn holds(self, peer: &Value) -> bool {
        match self {
            Want::Direct => peer["path"] == "direct",
            Want::CaughtUp => {
                peer["last_sync_ms"].is_u64()
                    && peer["lag"] == 0
                    && peer["remote_head"].as_u64().is_some_and(|h| h > 0)
            }
            Want::DirectAndCaughtUp => Want::Direct.holds(peer) && Want::CaughtUp.holds(peer),
        }
    }
}

/// What one round saw.
struct Round {
    /// When B was started (ms since the Unix epoch).
    started_ms: u64,
    /// B's last view of A.
    peer: Option<Value>,
    /// Whether the wanted state was reached.
    reached: bool,
}

impl Round {
    fn at(&self, field: &str) -> Result<u64> {
        let peer = self.peer.as_ref().context("B never saw A")?;
        if !self.reached {
            bail!("the round did not finish: B's view of A: {peer}");
        }
        peer[field]
            .as_u64()
            .with_context(|| format!("no {field} in {peer}"))
    }
}

/// One round in a fresh lab of `kind` NAT, A holding `records` records.
fn round(tools: &Tools, kind: &str, n: u32, records: u64, want: Want) -> Result<Round> {
    let mut lab = Lab::up(tools, kind, n)?;
    lab.start_relay()?;
    let a = lab.init("a")?;
    lab.init("b")?;
    {
        let store = shoal::Store::open(lab.data("a").join("shoal.db"))?;
        crate::peers::fill(&store, records, 0)?;
    }
    lab.serve("a", "a", &[])?;
    poll(Duration::from_secs(20), || {
        (lab.relay_stats()["reservations_accepted"].as_u64() >= Some(1)).then_some(())
    })
    .context("A never held a reservation on the relay")?;
    let relay = lab.relay_address();
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    let started_ms = now_ms();
    lab.serve("b", "b", &["--peer", &via_relay])?;
    let limit = match want {
        Want::Direct => DIRECT_WITHIN + Duration::from_secs(5),
        Want::CaughtUp | Want::DirectAndCaughtUp => Duration::from_secs(60 + records / 500),
    };
    let mut last = None;
    let reached = poll(limit, || {
        let peer = lab.peer("b", "b", &a)?;
        let done = want.holds(&peer);
        last = Some(peer);
        done.then_some(())
    })
    .is_some();
    Ok(Round {
        started_ms,
        peer: last,
        reached,
    })
}

/// Records per second of the catch-up a round saw: the changes the current
/// session received over the time since the current path opened.
fn catchup_rate(round: &Round, records: u64) -> Result<f64> {
    let since = round.at("path_since_ms")?;
    let done = round.at("last_sync_ms")?;
    let peer = round.peer.as_ref().context("no view")?;
    let changes = peer["changes_in"].as_u64().unwrap_or(0).min(records);
    if changes == 0 {
        bail!("the session on the final path received nothing: {peer}");
    }
    Ok(changes as f64 / (done.saturating_sub(since).max(1) as f64 / 1000.0))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
