//! `shoal schema`: declare, show and remove a collection's data version and
//! JSON Schema on this node (its arguments and the command).
//!
//! The rules (validation of local writes, stamps, the newer-version flag)
//! are the library's; this file only reads the schema file and prints.

use crate::exit::{not_found, usage};
use crate::output::Output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use shoal::Store;
use std::path::PathBuf;

/// `shoal schema`.
#[derive(Debug, Args)]
#[command(after_help = "\
A declaration is local to this node (it describes the app running here). Once
set, every local write to the collection must leave a record that validates
(refused with the schema's message otherwise) and stamps the record's
\"$data_version\" field. A record a newer app wrote (a higher stamp) is kept and
synced, flagged in `shoal get`/`ls` and the HTTP API, and cannot be changed here
until this node declares that version.

Examples:
  shoal schema set tasks --version 2 --file tasks.schema.json
  shoal schema show tasks
  shoal schema rm tasks")]
pub struct SchemaArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SchemaAction,
}

/// The `shoal schema` subcommands.
#[derive(Debug, Subcommand)]
pub enum SchemaAction {
    /// Declare COLLECTION's data version and JSON Schema on this node
    Set {
        /// Collection name
        collection: String,
        /// The data version (1 or more; never lower than the declared one)
        #[arg(long)]
        version: u32,
        /// The JSON Schema file (`-` for stdin)
        #[arg(long)]
        file: PathBuf,
    },
    /// Print COLLECTION's declaration (`{"version", "schema"}`)
    Show {
        /// Collection name
        collection: String,
    },
    /// Remove COLLECTION's declaration
    Rm {
        /// Collection name
        collection: String,
    },
}

/// Runs `shoal schema`.
pub fn run(store: &Store, args: SchemaArgs, out: &mut Output) -> Result<()> {
    match args.action {
        SchemaAction::Set {
            collection,
            version,
            file,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let schema: Value = serde_json::from_str(&text)
                .map_err(|e| usage(format!("{} is not JSON: {e}", file.display())))?;
            store
                .collection(&collection)
                .and_then(|c| c.set_schema(version, &schema))
                .with_context(|| format!("cannot set the schema of {collection}"))?;
            if out.is_json() {
                out.json(&json!({"collection": collection, "version": version}))?;
            } else {
                out.line(format_args!(
                    "{collection}: data version {version} declared on this node"
                ))?;
            }
        }
        SchemaAction::Show { collection } => {
            let declared = store
                .collection(&collection)
                .and_then(|c| c.schema())
                .with_context(|| format!("cannot read the schema of {collection}"))?
                .ok_or_else(|| {
                    not_found(format!(
                        "no schema is declared for {collection} on this node"
                    ))
                })?;
            out.json(&json!({"version": declared.version, "schema": declared.schema}))?;
        }
        SchemaAction::Rm { collection } => {
            let removed = store
                .collection(&collection)
                .and_then(|c| c.remove_schema())
                .with_context(|| format!("cannot remove the schema of {collection}"))?;
            if !removed {
                return Err(not_found(format!(
                    "no schema is declared for {collection} on this node"
                )));
            }
            out.line(format_args!("{collection}: schema removed"))?;
        }
    }
    Ok(())
}
