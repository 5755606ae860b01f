//! `shoal query`: running the parsed filters (`--eq`, `--range`, `--order`;
//! their syntax is `record_syntax.rs`'s) as a [`shoal::Query`] and showing
//! the records found.
//!
//! This module owns turning the flags into a query and the output; what a
//! query means (comparison, null handling, ordering) is the library's.

use crate::output::{Output, pad};
use crate::record_args::QueryArgs;
use crate::record_syntax::{EqFilter, RangeFilter, SortOrder};
use crate::records::compact;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use shoal::{Query, Store};

/// `shoal query`.
pub fn run(store: &Store, args: QueryArgs, out: &mut Output) -> Result<()> {
    let mut query = Query::new().limit(args.limit as usize);
    for EqFilter { field, value } in args.eq {
        query = query.eq(field, value);
    }
    for RangeFilter { field, min, max } in args.range {
        query = query.range(field, min, max);
    }
    if let Some(SortOrder { field, order }) = args.order {
        query = query.order_by(field, order);
    }
    let records = store
        .collection(&args.collection)
        .and_then(|c| c.query(&query))
        .with_context(|| format!("cannot query {}", args.collection))?;
    if out.is_json() {
        let records: Vec<Value> = records
            .iter()
            .map(|(id, fields)| json!({"id": id.as_str(), "value": fields}))
            .collect();
        // The list shape of every command and the HTTP API; a query is not
        // paged (--limit caps it), so there is never a next page.
        out.json(&json!({"collection": args.collection, "records": records, "next": null}))?;
        return Ok(());
    }
    let width = records
        .iter()
        .map(|(id, _)| id.as_str().len())
        .max()
        .unwrap_or(0);
    for (id, fields) in &records {
        out.line(format_args!(
            "{}  {}",
            pad(id.as_str(), width),
            compact(fields)
        ))?;
    }
    Ok(())
}
