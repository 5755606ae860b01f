//! `shoal blob on-demand`: show or set blobs on demand — whether a running
//! node fetches the blobs its records reference only when one is opened,
//! and the byte budget for blobs fetched so (its arguments and the command).
//!
//! The setting and its rules are the library's (`Store::set_blobs_on_demand`);
//! this file only parses and prints.

use crate::exit::usage;
use crate::output::Output;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use shoal::{OnDemand, Store};

/// `shoal blob on-demand`.
#[derive(Debug, Args)]
pub struct OnDemandArgs {
    /// Turn blobs on demand on or off (omit to leave it as it is)
    #[arg(value_enum)]
    pub mode: Option<Mode>,
    /// Most MiB of blobs fetched on demand to keep; past it the least
    /// recently opened ones another peer holds are evicted
    #[arg(long, value_name = "MIB", conflicts_with = "no_budget")]
    pub budget_mib: Option<u64>,
    /// Keep every blob fetched on demand (no budget)
    #[arg(long)]
    pub no_budget: bool,
}

/// On or off.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Fetch a blob only when it is opened
    On,
    /// Fetch every referenced blob as soon as its record arrives
    Off,
}

/// Runs `shoal blob on-demand`.
pub fn run(store: &Store, args: OnDemandArgs, out: &mut Output) -> Result<()> {
    let mut setting = store
        .blobs_on_demand()
        .context("cannot read the blobs-on-demand setting")?;
    let changes = args.mode.is_some() || args.budget_mib.is_some() || args.no_budget;
    if let Some(mode) = args.mode {
        setting.enabled = matches!(mode, Mode::On);
    }
    if let Some(mib) = args.budget_mib {
        let bytes = mib
            .checked_mul(1 << 20)
            .ok_or_else(|| usage(format!("--budget-mib {mib} is too large")))?;
        setting.budget = Some(bytes);
    }
    if args.no_budget {
        setting.budget = None;
    }
    let mut evicted = Vec::new();
    if changes {
        evicted = store
            .set_blobs_on_demand(setting)
            .context("cannot set blobs on demand")?;
    }
    let held = store
        .on_demand_blobs()
        .context("cannot list the blobs fetched on demand")?;
    let held_bytes: u64 = held.iter().map(|b| b.size).sum();
    if out.is_json() {
        out.json(&json!({
            "enabled": setting.enabled,
            "budget_bytes": setting.budget,
            "fetched_on_demand": held.len(),
            "fetched_on_demand_bytes": held_bytes,
            "evicted": evicted.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        }))?;
        return Ok(());
    }
    let OnDemand { enabled, budget } = setting;
    let state = match enabled {
        true => "on: blobs are fetched when opened",
        false => "off: blobs are fetched as soon as their records arrive",
    };
    out.line(format_args!("blobs on demand {state}"))?;
    match budget {
        Some(bytes) => out.line(format_args!(
            "budget: {} MiB ({bytes} bytes) of blobs fetched on demand",
            bytes as f64 / f64::from(1 << 20)
        ))?,
        None => out.line("budget: none")?,
    }
    out.line(format_args!(
        "held: {} blobs fetched on demand, {held_bytes} bytes",
        held.len()
    ))?;
    if !evicted.is_empty() {
        out.line(format_args!(
            "evicted {} blobs to fit the budget (their peers still hold them)",
            evicted.len()
        ))?;
    }
    if changes {
        out.line("a running daemon follows the new setting at its next scan (within seconds)")?;
    }
    Ok(())
}
