//! The arguments of the record commands — `put`, `patch`, `get`, `del`,
//! `map`, `ls`, `query` and `log` — as clap derive structs (re-exported by
//! `args.rs`, which owns the command list and its help).
//!
//! This module owns their shape and help only; it runs nothing.

use crate::record_syntax::{EqFilter, RangeFilter, Since, SortOrder};
use clap::{Args, Subcommand};

/// Largest `--limit` accepted by `ls` and `query` (the library's query cap).
pub const MAX_LIMIT: u64 = shoal::MAX_QUERY_LIMIT as u64;

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

/// `shoal map`: one of its subcommands.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// What to do with the map entry.
    #[command(subcommand)]
    pub command: MapCommand,
}

/// The subcommands of `shoal map`.
#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Set entry KEY of map field FIELD to a JSON value
    #[command(after_help = "\
VALUE is JSON (quote strings: '\"milk\"'), read from stdin when omitted or `-`.

Examples:
  shoal map set notes n1 tags work true
  echo '\"blue\"' | shoal map set notes n1 colours fg")]
    Set(MapSetArgs),
    /// Remove entry KEY of map field FIELD
    #[command(
        visible_alias = "remove",
        after_help = "\
Examples:
  shoal map rm notes n1 tags work"
    )]
    Rm(MapEntryArgs),
}

/// Arguments naming one map entry.
#[derive(Debug, Args)]
pub struct MapEntryArgs {
    /// Collection name
    pub collection: String,
    /// Record id
    pub id: String,
    /// The map field
    pub field: String,
    /// The entry's key
    pub key: String,
}

/// Arguments of `map set`.
#[derive(Debug, Args)]
pub struct MapSetArgs {
    /// The entry.
    #[command(flatten)]
    pub entry: MapEntryArgs,
    /// The JSON value; read from stdin when omitted or `-`
    #[arg(value_name = "VALUE")]
    pub value: Option<String>,
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
    #[arg(long = "eq", value_name = "FIELD=JSON", value_parser = crate::record_syntax::parse_eq)]
    pub eq: Vec<EqFilter>,
    /// Field within MIN (inclusive) .. MAX (exclusive), JSON values (repeatable)
    #[arg(long = "range", value_name = "FIELD=MIN..MAX", value_parser = crate::record_syntax::parse_range)]
    pub range: Vec<RangeFilter>,
    /// Sort by a field, ascending or with `:desc` descending (ties by id)
    #[arg(long, value_name = "FIELD[:desc]", value_parser = crate::record_syntax::parse_order)]
    pub order: Option<SortOrder>,
    /// At most this many records
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    pub limit: u64,
}

/// Arguments of `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only changes after this version (or VERSION+DBV.SEQ, where a cut listing stopped)
    #[arg(long, value_name = "V", default_value = "0", value_parser = crate::record_syntax::parse_since)]
    pub since: Since,
    /// At most this many changes, whole records only (default: all, streamed)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}
