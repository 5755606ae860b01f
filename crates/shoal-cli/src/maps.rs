//! `shoal map set` / `shoal map rm`: one entry of a record's map field, set
//! or removed — each one library call (one store transaction), printed like
//! every write (`records::print_write`).
//!
//! Validation of names, ids, field names and keys is the library's; this
//! module only reads the value and names what was done.

use crate::args::{MapArgs, MapCommand};
use crate::input::json_body;
use crate::output::Output;
use crate::records::print_write;
use anyhow::{Context, Result};
use shoal::{Edit, Store};

/// `shoal map`.
pub fn run(store: &Store, args: MapArgs, out: &mut Output) -> Result<()> {
    let (entry, edit, verb) = match args.command {
        MapCommand::Set(set) => {
            let target = target(&set.entry);
            let value =
                json_body(set.value.as_deref()).with_context(|| format!("cannot set {target}"))?;
            let edit = Edit::MapSet {
                field: set.entry.field.clone(),
                key: set.entry.key.clone(),
                value,
            };
            (set.entry, edit, "set")
        }
        MapCommand::Rm(entry) => {
            let edit = Edit::MapRemove {
                field: entry.field.clone(),
                key: entry.key.clone(),
            };
            (entry, edit, "removed")
        }
    };
    let target = target(&entry);
    let written = store
        .collection(&entry.collection)
        .and_then(|c| c.write(&entry.id, edit))
        .with_context(|| {
            let verb = if verb == "set" { "set" } else { "remove" };
            format!("cannot {verb} {target}")
        })?;
    let done = format!("{verb} .{}[{}] of", entry.field, entry.key);
    print_write(out, &entry.collection, &entry.id, &done, written)
}

/// `C/ID .FIELD[KEY]`, for messages.
fn target(entry: &crate::args::MapEntryArgs) -> String {
    format!(
        "{}/{} .{}[{}]",
        entry.collection, entry.id, entry.field, entry.key
    )
}
