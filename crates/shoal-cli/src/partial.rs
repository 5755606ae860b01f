//! `shoal partial`: make this node a partial replica — take only the
//! records of a collection matching a filter — show the filters, or take a
//! collection whole again (its arguments and the command).
//!
//! The filter language is `shoal_core::partial`'s and the rules the
//! library's (`Store::set_partial_filter`); this file only parses and prints.

use crate::output::Output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use shoal::Store;

/// `shoal partial`.
#[derive(Debug, Args)]
#[command(after_help = "\
A filter is checked by the peers that send to this node: they send only the
records it admits and tell this node when one stops matching, which then
drops it here (never as a delete: no other node loses it; a record with a
write of this node's own no peer acknowledged yet stays). A filter that
mentions now is also re-checked here every --partial-sweep-interval by a
running daemon. Takes effect from
the next session with each peer (restart a running daemon). See
docs/partial.md for the language.

  FIELD = \"text\" | FIELD != 3 | FIELD < 1.5 | FIELD <= true | FIELD > null
  FIELD >= now-30d (also now+12h, now-15m, now-90s) | FIELD exists
  FILTER and FILTER | FILTER or FILTER | not FILTER | (FILTER) | `odd name` = 1

Examples:
  shoal partial set notes 'owner = \"bo\"'
  shoal partial set events 'date >= now-30d and not archived = true'
  shoal partial ls
  shoal partial rm notes")]
pub struct PartialArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PartialAction,
}

/// The `shoal partial` subcommands.
#[derive(Debug, Subcommand)]
pub enum PartialAction {
    /// Take only COLLECTION's records matching FILTER
    Set {
        /// Collection name
        collection: String,
        /// The filter, e.g. 'owner = "bo"'
        filter: String,
    },
    /// List the filtered collections and their filters
    Ls,
    /// Take COLLECTION whole again
    Rm {
        /// Collection name
        collection: String,
    },
}

/// Runs `shoal partial`.
pub fn run(store: &Store, args: PartialArgs, out: &mut Output) -> Result<()> {
    match args.action {
        PartialAction::Set { collection, filter } => {
            // A bad filter exits 2 with the byte and the reason (exit.rs).
            let dropped = store
                .set_partial_filter(&collection, Some(&filter))
                .with_context(|| format!("cannot filter {collection}"))?;
            if out.is_json() {
                out.json(&json!({"collection": collection, "filter": filter, "dropped": dropped}))?;
            } else {
                out.line(format_args!(
                    "{collection}: only records matching {filter} from now on ({dropped} held here dropped)"
                ))?;
            }
        }
        PartialAction::Ls => {
            let filters = store.partial_filters().context("cannot read the filters")?;
            let list: Vec<_> = filters
                .to_texts()
                .into_iter()
                .map(|(c, f)| json!({"collection": c.as_str(), "filter": f}))
                .collect();
            if out.is_json() {
                out.json(&json!({"filters": list}))?;
            } else if list.is_empty() {
                out.line("a full replica: no collection is filtered")?;
            } else {
                for (collection, filter) in filters.to_texts() {
                    out.line(format_args!("{collection}  {filter}"))?;
                }
            }
        }
        PartialAction::Rm { collection } => {
            store
                .set_partial_filter(&collection, None)
                .with_context(|| format!("cannot unfilter {collection}"))?;
            out.line(format_args!(
                "{collection}: taken whole from the next sessions"
            ))?;
        }
    }
    Ok(())
}
