//! `shoal-bench`: measures Shoal against raw SQLite, one subcommand per scenario.
//!
//! Each scenario prints readable lines to stdout and, as its very last line,
//! exactly one JSON object with its results, so scripts can read
//! `tail -n 1`. Progress, if any, goes to stderr and only when stderr is a
//! terminal.

mod progress;
mod report;
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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().scenario {
        Scenario::Write(args) => write::run(&args),
    }
}
