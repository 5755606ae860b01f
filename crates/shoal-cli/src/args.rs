//! The command line: every subcommand, flag and help text of `shoal`, as clap
//! derive structs.
//!
//! This module owns the *shape* of the interface and its `--help` (with
//! examples). It parses values that have a syntax of their own (log positions,
//! query filters) through small parser functions, and runs nothing.

use crate::log::Since;
use crate::query::{EqFilter, RangeFilter, SortOrder};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;

/// Largest `--limit` accepted by `ls` and `query` (the library's query cap).
pub const MAX_LIMIT: u64 = shoal::MAX_QUERY_LIMIT as u64;

const ROOT_EXAMPLES: &str = "\
Examples:
  shoal init
  shoal put tasks t1 '{\"title\": \"buy milk\", \"done\": false}'
  echo '{\"done\": true}' | shoal patch tasks t1
  shoal get tasks t1
  shoal ls tasks --limit 20
  shoal --json status

Exit codes: 0 ok, 1 not found, 2 invalid input or usage (bad id, bad JSON,
no database: run `shoal init`), 3 storage error (corrupt or foreign database).";

/// Shoal: a local-first database whose records replicate peer-to-peer.
///
/// Records are JSON objects, stored under COLLECTION/ID in one SQLite file
/// (DIR/shoal.db). Collection names are 1-64 bytes of [A-Za-z0-9_-] starting
/// with a letter; record ids are 1-128 bytes of [A-Za-z0-9._:-].
#[derive(Debug, Parser)]
#[command(name = "shoal", version, after_help = ROOT_EXAMPLES)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Data directory; the database is DIR/shoal.db
    /// [default: $XDG_DATA_HOME/shoal, or ~/.local/share/shoal]
    #[arg(long, global = true, env = "SHOAL_DATA", value_name = "DIR",
          value_parser = clap::builder::OsStringValueParser::new())]
    pub data: Option<OsString>,
    /// Print one machine-readable JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory and the database, and print this node's ids
    #[command(after_help = "\
Creates DIR (mode 0700) and DIR/shoal.db with a fresh node key. Running it
again on an initialized directory changes nothing and prints the same ids.

Examples:
  shoal init
  shoal --data /srv/shoal init")]
    Init,

    /// Create or replace a record (fields not given are removed)
    #[command(after_help = "\
The JSON object is read from the argument, or from stdin when the argument is
omitted or `-`. To change only some fields, use `shoal patch`. Putting at the
id of a deleted record starts a new life of it.

Examples:
  shoal put tasks t1 '{\"title\": \"buy milk\", \"done\": false}'
  shoal put tasks t2 < task.json")]
    Put(WriteArgs),

    /// Change some fields of an existing record (JSON merge-patch)
    #[command(after_help = "\
Top-level merge-patch: each given field is set, a field given as null is
removed, fields not given are kept. The record must exist (exit 1 if not).
The JSON object is read from the argument, or from stdin when omitted or `-`.

Examples:
  shoal patch tasks t1 '{\"done\": true}'
  echo '{\"note\": null}' | shoal patch tasks t1")]
    Patch(WriteArgs),

    /// Print a record's JSON
    #[command(after_help = "\
Exit code 1 if the record does not exist or was deleted.

Examples:
  shoal get tasks t1
  shoal get tasks t1 | jq .title")]
    Get(RecordArgs),

    /// Delete a record
    #[command(
        visible_alias = "rm",
        after_help = "\
The id stays known as a tombstone, so a stale edit from a peer cannot bring the
record back; a later `put` starts a new life. Exit code 1 if there is no live
record to delete.

Examples:
  shoal del tasks t1"
    )]
    Del(RecordArgs),

    /// List the records of a collection, or every collection with its counts
    #[command(after_help = "\
Records come in id order, one per line as `ID  JSON`. When there is a next
page, a line on stderr gives the --after to pass for it.

Examples:
  shoal ls                                 # collections with counts
  shoal ls tasks --prefix 2024- --limit 20
  shoal ls tasks --after t20")]
    Ls(LsArgs),

    /// Find records by field values (equality, ranges), optionally sorted
    #[command(after_help = "\
Values are JSON: quote strings ('title=\"milk\"'). Ranges include MIN and
exclude MAX; either side may be left empty. All filters must hold.

Examples:
  shoal query tasks --eq done=false --order due
  shoal query tasks --range due=10..20 --order due:desc --limit 5
  shoal query notes --eq 'author=\"ann\"'")]
    Query(QueryArgs),

    /// Print the change log: every field version written since a version
    #[command(after_help = "\
One line per change: POSITION COLLECTION/ID SLOT VALUE CLOCK LIFE, where
POSITION is VERSION.SEQ of the record's last change, SLOT is `life`, `.field`
or `.field[key]` (a map entry), CLOCK is WALL_MS.COUNTER@SITE and LIFE is odd
for alive records and even for deleted ones. The log holds the current version
of every field (what a replica needs to converge), not a history; it is
streamed, never loaded whole.

Examples:
  shoal log                        # everything
  shoal log --since 42 --limit 100
  shoal --json log --since 42+57.3 # resume where a cut listing stopped")]
    Log(LogArgs),

    /// Print site id, peer id, db_version and per-collection record counts
    #[command(after_help = "\
Examples:
  shoal status
  shoal --json status | jq .db_version")]
    Status,

    /// Show three replicas writing concurrently and converging
    #[command(after_help = "\
Starts three replicas (laptop, desktop, server) in this process, each with its
own database. They write while disconnected -- conflicting edits to one
record, a delete racing an edit, different tags added to one map field --
then exchange their change logs until nothing changes, and print what each
holds and a digest of every field version and clock. Exits non-zero if the
replicas do not converge. Ignores --data; uses a temporary directory unless
--dir is given.

Examples:
  shoal demo
  shoal demo --dir /tmp/shoal-demo   # keep the three databases to inspect")]
    Demo(DemoArgs),
}

/// Arguments of `put` and `patch`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Collection name
    pub collection: String,
    /// Record id
    pub id: String,
    /// The JSON object; read from stdin when omitted or `-`
    #[arg(value_name = "JSON")]
    pub body: Option<String>,
}

/// Arguments naming one record.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Collection name
    pub collection: String,
    /// Record id
    pub id: String,
}

/// Arguments of `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Collection to list; without it, list the collections with their counts
    pub collection: Option<String>,
    /// Only ids starting with this prefix
    #[arg(long, value_name = "P", default_value = "", hide_default_value = true)]
    pub prefix: String,
    /// At most this many records
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    pub limit: u64,
    /// Only ids after this one (the previous page's last id)
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
}

/// Arguments of `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Collection to search
    pub collection: String,
    /// Field equals a JSON value (repeatable); null matches a missing field
    #[arg(long = "eq", value_name = "FIELD=JSON", value_parser = crate::query::parse_eq)]
    pub eq: Vec<EqFilter>,
    /// Field within MIN (inclusive) .. MAX (exclusive), JSON values (repeatable)
    #[arg(long = "range", value_name = "FIELD=MIN..MAX", value_parser = crate::query::parse_range)]
    pub range: Vec<RangeFilter>,
    /// Sort by a field, ascending or with `:desc` descending (ties by id)
    #[arg(long, value_name = "FIELD[:desc]", value_parser = crate::query::parse_order)]
    pub order: Option<SortOrder>,
    /// At most this many records
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    pub limit: u64,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo databases in this directory (replaced if present)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Arguments of `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only changes after this version (or VERSION+DBV.SEQ, where a cut listing stopped)
    #[arg(long, value_name = "V", default_value = "0", value_parser = crate::log::parse_since)]
    pub since: Since,
    /// At most this many changes (default: all, streamed)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}
