//! `shoal relay` (run a relay for one group's members) and `shoal
//! relay-token` (print the token such a relay needs). The relay itself is
//! `shoal-relay`'s; this file reads arguments, prints the relay's addresses
//! and keeps DIR/stats.json current.

use crate::datadir::DataDir;
use crate::output::Output;
use crate::relay_args::{RelayArgs, RelayTokenArgs};
use anyhow::{Context, Result, anyhow};
use shoal::RelayToken;
use shoal_relay::{Relay, RelayConfig, RelayLimits, RelayStats};
use std::time::Duration;

/// How often DIR/stats.json is rewritten.
const STATS_EVERY: Duration = Duration::from_secs(2);

/// Runs a relay until interrupted.
pub fn run(args: RelayArgs) -> Result<()> {
    let token = RelayToken::from_hex(&args.token).map_err(|e| {
        crate::exit::usage(format!("--token: {e} (print it with `shoal relay-token`)"))
    })?;
    let listen = if args.listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/4001".parse()?,
            "/ip4/0.0.0.0/udp/4001/quic-v1".parse()?,
        ]
    } else {
        args.listen.clone()
    };
    let limits = RelayLimits {
        circuit_duration: Duration::from_secs(args.circuit_secs),
        circuit_bytes: args.circuit_mib << 20,
        circuits: args.circuits as usize,
        circuits_per_peer: args.circuits_per_peer as usize,
        rate_burst: args.rate_burst,
        rate_refill: Duration::from_secs(args.rate_refill_secs),
        ..RelayLimits::default()
    };
    let keypair = shoal_relay::load_or_create_identity(&args.dir).map_err(|e| anyhow!(e))?;
    let config = RelayConfig {
        listen,
        external: args.external_address.clone(),
        token,
        limits,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async move {
        let relay = Relay::start(keypair, config).await?;
        let addresses = relay.listen_addrs(Duration::from_secs(10)).await?;
        let announced: Vec<String> = args
            .external_address
            .iter()
            .map(|a| format!("{a}/p2p/{}", relay.peer_id()))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "peer_id": relay.peer_id().to_string(),
                "listening": addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "external": announced,
            })
        );
        let stats_path = args.dir.join("stats.json");
        let mut tick = tokio::time::interval(STATS_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => write_stats(&stats_path, relay.stats()),
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        write_stats(&stats_path, relay.stats());
        relay.shutdown().await;
        Ok(())
    })
}

/// Writes the counters (atomically: a reader never sees half a file).
fn write_stats(path: &std::path::Path, stats: RelayStats) {
    let text = serde_json::json!({
        "admitted": stats.admitted,
        "refused": stats.refused,
        "reservations_accepted": stats.reservations_accepted,
        "reservations_denied": stats.reservations_denied,
        "reservations_now": stats.reservations_now,
        "circuits_accepted": stats.circuits_accepted,
        "circuits_denied": stats.circuits_denied,
        "circuits_closed": stats.circuits_closed,
        "probes": stats.probes,
    })
    .to_string();
    let temp = path.with_extension("json.tmp");
    if let Err(e) = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, path)) {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

/// Prints the relay token of this node's group.
pub fn token(data: &DataDir, args: RelayTokenArgs, out: &mut Output) -> Result<()> {
    let loaded =
        crate::secrets::load_group_key(data, args.secret_file.as_deref())?.ok_or_else(|| {
            anyhow!("this node has no group secret yet (run `shoal invite` or `shoal join`)")
        })?;
    let token = RelayToken::for_group(&loaded.key).to_hex();
    if out.is_json() {
        out.json(&serde_json::json!({ "relay_token": token }))?;
    } else {
        out.line(&token)?;
    }
    Ok(())
}
