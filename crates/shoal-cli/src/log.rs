//! `shoal log`: the change log since a version (or where a cut listing stopped),
//! streamed change by change, as text lines or one streamed JSON document.
//!
//! This module owns how a change is shown (`--since` is parsed by
//! `record_syntax.rs`); it never holds more than the library's one page of
//! the log in memory.

use crate::output::{Output, TEXT_VALUE_MAX, hint, shorten};
use crate::record_args::LogArgs;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use shoal::{Change, LogPosition, Slot, Store, SyncCursor};
use std::io::Write;

/// `shoal log`.
pub fn run(store: &Store, args: LogArgs, out: &mut Output) -> Result<()> {
    let mut changes = store.changes_after(args.since);
    let limit = args
        .limit
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut listing = Listing {
        json: out.is_json(),
        shown: 0,
        last: None,
    };
    let w = out.writer();
    if listing.json {
        write!(w, "{{\"changes\": [")?;
    }
    // A record's changes (they share a position) are held back until the
    // record ends, so a record that would take the listing past --limit is
    // left whole for the next one: a resumed listing starts after the last
    // record shown, never inside one. Only a first record bigger than the
    // limit is shown whole (else the listing could never move on), streamed.
    // The buffer holds at most --limit changes; without --limit, nothing.
    let mut record: Vec<Change> = Vec::new();
    let mut more = false;
    for change in changes.by_ref() {
        let change = change.context("cannot read the change log")?;
        let current = record.first().map(|c| c.position).or(listing.last);
        if current != Some(change.position) {
            listing.show(w, record.drain(..))?;
        }
        record.push(change);
        let streaming = limit == usize::MAX || listing.last == Some(record[0].position);
        if streaming || (listing.shown == 0 && record.len() > limit) {
            listing.show(w, record.drain(..))?;
        } else if listing.shown + record.len() > limit {
            more = true;
            break;
        }
    }
    if !more {
        listing.show(w, record.drain(..))?;
    }
    let next = listing.last.filter(|_| more).map(|position| {
        SyncCursor {
            base: args.since.base,
            position,
            partial: None,
        }
        .to_string()
    });
    if listing.json {
        writeln!(w, "\n], \"next\": {}}}", json!(next))?;
    }
    if let Some(next) = next {
        let mut command = format!("more changes: shoal log --since {next}");
        if let Some(limit) = args.limit {
            command.push_str(&format!(" --limit {limit}"));
        }
        hint(command);
    }
    Ok(())
}

/// What a listing has shown so far.
struct Listing {
    json: bool,
    shown: usize,
    last: Option<LogPosition>,
}

impl Listing {
    /// Prints changes (of whole records), one line or JSON object each.
    fn show(&mut self, w: &mut impl Write, changes: impl Iterator<Item = Change>) -> Result<()> {
        for change in changes {
            if self.json {
                let sep = if self.shown == 0 { "" } else { "," };
                write!(w, "{sep}\n  {}", change_json(&change))?;
            } else {
                writeln!(w, "{}", change_text(&change))?;
            }
            self.shown += 1;
            self.last = Some(change.position);
        }
        Ok(())
    }
}

/// One change as a text line.
fn change_text(c: &Change) -> String {
    let (slot, value) = match (&c.slot, &c.value) {
        (Slot::Life, _) => {
            let state = if c.life.is_alive() {
                "alive"
            } else {
                "deleted"
            };
            ("life".to_string(), state.to_string())
        }
        (Slot::Field(f), v) => (format!(".{f}"), shown_value(v.as_ref())),
        (Slot::Entry(f, k), v) => (format!(".{f}[{k}]"), shown_value(v.as_ref())),
    };
    format!(
        "{}  {}/{}  {slot}  {value}  {}  life {}",
        c.position, c.collection, c.id, c.clock, c.life
    )
}

fn shown_value(value: Option<&shoal::CanonicalJson>) -> String {
    match value {
        Some(v) => shorten(v.as_str(), TEXT_VALUE_MAX),
        None => "(removed)".to_string(),
    }
}

/// One change as a JSON object. `removed` tells a tombstone from a field
/// that holds JSON `null`.
fn change_json(c: &Change) -> Value {
    let (slot, field, key) = match &c.slot {
        Slot::Life => ("life", None, None),
        Slot::Field(f) => ("field", Some(f.as_str()), None),
        Slot::Entry(f, k) => ("entry", Some(f.as_str()), Some(k.as_str())),
    };
    json!({
        "position": c.position.to_string(),
        "version": c.position.version.0,
        "seq": c.position.seq,
        "collection": c.collection.as_str(),
        "id": c.id.as_str(),
        "slot": slot,
        "field": field,
        "key": key,
        "value": c.value.as_ref().map(|v| v.to_value()),
        "removed": c.value.is_none() && !matches!(c.slot, Slot::Life),
        // A clock's shape everywhere (write replies, Sync Details' slots):
        // `WALL_MS.COUNTER@SITE`, with its wall time and site beside it.
        "clock": c.clock.to_string(),
        "wall_ms": c.clock.hlc.wall_ms(),
        "site": c.clock.site.to_string(),
        "life": c.life.0,
        "alive": c.life.is_alive(),
    })
}
