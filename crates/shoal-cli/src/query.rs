//! `shoal query`: the filter syntax (`--eq field=JSON`, `--range
//! field=MIN..MAX`, `--order field[:desc]`) and running it as a
//! [`shoal::Query`].
//!
//! This module owns parsing that syntax into values; what a query means
//! (comparison, null handling, ordering) is the library's.

use crate::args::QueryArgs;
use crate::output::{Output, pad};
use crate::records::compact;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use shoal::{Order, Query, Store};

/// `--eq FIELD=JSON`.
#[derive(Debug, Clone, PartialEq)]
pub struct EqFilter {
    /// The field.
    pub field: String,
    /// The value it must equal.
    pub value: Value,
}

/// `--range FIELD=MIN..MAX`; `None` is an open side.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeFilter {
    /// The field.
    pub field: String,
    /// Inclusive lower bound.
    pub min: Option<Value>,
    /// Exclusive upper bound.
    pub max: Option<Value>,
}

/// `--order FIELD[:asc|:desc]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortOrder {
    /// The field.
    pub field: String,
    /// The direction.
    pub order: Order,
}

fn split_field(arg: &str) -> Result<(&str, &str), String> {
    match arg.split_once('=') {
        Some((field, rest)) if !field.is_empty() => Ok((field, rest)),
        _ => Err(format!("expected FIELD=VALUE, got {arg:?}")),
    }
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("{text:?} is not JSON ({e}); quote strings, e.g. 'title=\"milk\"'"))
}

/// Parses `FIELD=JSON`.
pub fn parse_eq(arg: &str) -> Result<EqFilter, String> {
    let (field, value) = split_field(arg)?;
    Ok(EqFilter {
        field: field.to_string(),
        value: parse_json(value)?,
    })
}

/// Parses `FIELD=MIN..MAX`, either side possibly empty. The `..` that splits
/// is the first one with valid JSON (or nothing) on both sides, so string
/// bounds may contain `..` themselves.
pub fn parse_range(arg: &str) -> Result<RangeFilter, String> {
    let (field, bounds) = split_field(arg)?;
    let side = |text: &str| -> Result<Option<Value>, String> {
        let text = text.trim();
        if text.is_empty() {
            Ok(None)
        } else {
            parse_json(text).map(Some)
        }
    };
    let mut first_error = None;
    for (at, _) in bounds.match_indices("..") {
        match (side(&bounds[..at]), side(&bounds[at + 2..])) {
            (Ok(min), Ok(max)) => {
                return Ok(RangeFilter {
                    field: field.to_string(),
                    min,
                    max,
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| format!("expected FIELD=MIN..MAX, got {arg:?}")))
}

/// Parses `FIELD`, `FIELD:asc` or `FIELD:desc`.
pub fn parse_order(arg: &str) -> Result<SortOrder, String> {
    let (field, order) = match arg.rsplit_once(':') {
        Some((field, "desc")) => (field, Order::Desc),
        Some((field, "asc")) => (field, Order::Asc),
        _ => (arg, Order::Asc),
    };
    if field.is_empty() {
        return Err(format!("expected FIELD or FIELD:desc, got {arg:?}"));
    }
    Ok(SortOrder {
        field: field.to_string(),
        order,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_on_the_right_dots() {
        let r = parse_range("due=1.5..2.5").unwrap();
        assert_eq!((r.min, r.max), (Some(json!(1.5)), Some(json!(2.5))));
        let r = parse_range("due=..10").unwrap();
        assert_eq!((r.min, r.max), (None, Some(json!(10))));
        let r = parse_range("name=\"a..b\"..\"c\"").unwrap();
        assert_eq!(r.min, Some(json!("a..b")));
        assert!(parse_range("due=1-2").is_err());
        assert!(parse_range("=1..2").is_err());
    }

    #[test]
    fn orders_and_equalities() {
        assert_eq!(parse_order("due:desc").unwrap().order, Order::Desc);
        assert_eq!(parse_order("a:b").unwrap().field, "a:b");
        assert_eq!(parse_eq("done=false").unwrap().value, json!(false));
        assert!(parse_eq("title=milk").is_err());
    }
}
