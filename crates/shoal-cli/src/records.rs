//! Record commands: `put`, `patch`, `get`, `del` and `ls`.
//!
//! Each turns its arguments into one library call on a [`shoal::Collection`]
//! and prints the result; validation (names, ids, object bodies) is the
//! library's, so the rules live in one place.

use crate::api::WriteReply;
use crate::args::{LsArgs, RecordArgs, WriteArgs};
use crate::exit::not_found;
use crate::input::json_body;
use crate::output::{Output, hint, pad};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use shoal::{Edit, ListOptions, RecordId, Store, Written};

/// Which write `put`/`patch` performs.
#[derive(Debug, Clone, Copy)]
pub enum WriteKind {
    /// Replace the record (create it if needed).
    Put,
    /// Change the given fields of a live record.
    Patch,
}

/// `shoal put` / `shoal patch`.
pub fn write(store: &Store, kind: WriteKind, args: WriteArgs, out: &mut Output) -> Result<()> {
    let (verb, done) = match kind {
        WriteKind::Put => ("put", "put"),
        WriteKind::Patch => ("patch", "patched"),
    };
    let target = format!("{}/{}", args.collection, args.id);
    let collection = store
        .collection(&args.collection)
        .with_context(|| format!("cannot {verb} {target}"))?;
    let body =
        json_body(args.body.as_deref()).with_context(|| format!("cannot {verb} {target}"))?;
    let edit = match kind {
        WriteKind::Put => Edit::Put(body),
        WriteKind::Patch => Edit::Patch(body),
    };
    let written = collection
        .write(&args.id, edit)
        .with_context(|| format!("cannot {verb} {target}"))?;
    print_write(out, &args.collection, &args.id, done, written)
}

/// `shoal get`.
pub fn get(store: &Store, args: RecordArgs, out: &mut Output) -> Result<()> {
    let target = format!("{}/{}", args.collection, args.id);
    let collection = store
        .collection(&args.collection)
        .with_context(|| format!("cannot get {target}"))?;
    let record = collection
        .get(&args.id)
        .with_context(|| format!("cannot get {target}"))?
        .ok_or_else(|| not_found(format!("record {target} not found")))?;
    if let Some(version) = collection.newer_data_version(&record)? {
        hint(newer_note(&target, version));
    }
    out.json(&Value::Object(record))?;
    Ok(())
}

/// The note `shoal get` prints (on stderr) for a record a newer app wrote.
fn newer_note(target: &str, version: u64) -> String {
    format!(
        "note: {target} was written by data version {version} of its app, newer than \
         this node's declaration: it is kept and synced; upgrade the app to change it"
    )
}

/// `shoal del`.
pub fn del(store: &Store, args: RecordArgs, out: &mut Output) -> Result<()> {
    let target = format!("{}/{}", args.collection, args.id);
    let written = store
        .collection(&args.collection)
        .and_then(|c| c.write(&args.id, Edit::Delete))
        .with_context(|| format!("cannot delete {target}"))?;
    print_write(out, &args.collection, &args.id, "deleted", written)
}

/// What a write did: with `--json` the HTTP API's write reply
/// (`{"collection", "id", "db_version", "clock"}`), else `DONE C/ID (version
/// V)` or `C/ID unchanged`.
pub fn print_write(
    out: &mut Output,
    collection: &str,
    id: &str,
    done: &str,
    written: Option<Written>,
) -> Result<()> {
    if out.is_json() {
        out.json(&serde_json::to_value(WriteReply::new(
            collection, id, written,
        ))?)?;
    } else {
        match written {
            Some(w) => out.line(format_args!(
                "{done} {collection}/{id} (version {})",
                w.version
            ))?,
            None => out.line(format_args!("{collection}/{id} unchanged"))?,
        }
    }
    Ok(())
}

/// `shoal ls`: a page of records, or the collections with their counts.
pub fn ls(store: &Store, args: LsArgs, out: &mut Output) -> Result<()> {
    let Some(name) = args.collection.clone() else {
        return list_collections(store, out);
    };
    let after = args
        .after
        .as_deref()
        .map(RecordId::new)
        .transpose()
        .map_err(shoal::Error::from)
        .context("invalid --after")?;
    let options = ListOptions {
        prefix: args.prefix.clone(),
        after,
        limit: args.limit as usize,
    };
    let collection = store.collection(&name)?;
    let page = collection
        .list(&options)
        .with_context(|| format!("cannot list {name}"))?;
    let check = collection.data_version_check()?;
    if out.is_json() {
        let records: Vec<Value> = page
            .records
            .iter()
            .map(|(id, fields)| match check.newer(fields) {
                Some(v) => json!({"id": id.as_str(), "value": fields, "newer_data_version": v}),
                None => json!({"id": id.as_str(), "value": fields}),
            })
            .collect();
        out.json(&json!({
            "collection": name,
            "records": records,
            "next": page.next.as_ref().map(|id| id.as_str()),
        }))?;
    } else {
        let width = page
            .records
            .iter()
            .map(|(id, _)| id.as_str().len())
            .max()
            .unwrap_or(0);
        for (id, fields) in &page.records {
            let flag = match check.newer(fields) {
                Some(v) => format!("  [written by data version {v}: newer than this app]"),
                None => String::new(),
            };
            out.line(format_args!(
                "{}  {}{flag}",
                pad(id.as_str(), width),
                compact(fields)
            ))?;
        }
    }
    if let Some(next) = &page.next {
        hint(next_page_hint(&name, &args, next));
    }
    Ok(())
}

/// The command line that fetches the page after `next`.
fn next_page_hint(collection: &str, args: &LsArgs, next: &RecordId) -> String {
    let mut command = format!("more records: shoal ls {collection}");
    if !args.prefix.is_empty() {
        command.push_str(&format!(" --prefix {}", args.prefix));
    }
    if args.limit != 50 {
        command.push_str(&format!(" --limit {}", args.limit));
    }
    command.push_str(&format!(" --after {next}"));
    command
}

fn list_collections(store: &Store, out: &mut Output) -> Result<()> {
    let status = store.status().context("cannot read the collections")?;
    if out.is_json() {
        let collections = crate::status::counts_json(&status.collections);
        out.json(&json!({ "collections": collections }))?;
        return Ok(());
    }
    if status.collections.is_empty() {
        hint("no collections yet; add a record with `shoal put COLLECTION ID JSON`");
    }
    crate::status::print_counts(out, &status.collections, "")
}

/// A record body on one line.
pub fn compact(fields: &Map<String, Value>) -> String {
    // Serializing a map of JSON values cannot fail.
    serde_json::to_string(fields).unwrap_or_default()
}
