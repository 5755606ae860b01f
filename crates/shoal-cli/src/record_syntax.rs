//! The value syntaxes of the record commands' flags, parsed into values:
//! `--since` (`shoal log`: `V` or `V+DBV.SEQ`) and the query filters
//! (`--eq FIELD=JSON`, `--range FIELD=MIN..MAX`, `--order FIELD[:desc]`).
//!
//! It owns turning that text into values, with errors that say what was
//! expected; the flags are `record_args.rs`'s, running the commands is
//! `log.rs`'s and `query.rs`'s.

use serde_json::Value;
use shoal::{DbVersion, LogPosition, Order, SyncCursor};

/// Where `--since` starts: after a whole version (`V`), or part-way through a
/// listing that stopped (`V+D.S`: versions after V, records after position D.S).
pub type Since = SyncCursor;

/// Parses `VERSION` or `VERSION+DBV.SEQ` (what a cut listing prints to resume).
pub fn parse_since(arg: &str) -> Result<Since, String> {
    let bad = || format!("expected VERSION or VERSION+DBV.SEQ (e.g. 42 or 42+57.3), got {arg:?}");
    let number = |text: &str| text.parse::<u64>().map_err(|_| bad());
    match arg.split_once('+') {
        None => Ok(SyncCursor::complete(DbVersion(number(arg)?))),
        Some((base, position)) => {
            let (version, seq) = position.split_once('.').ok_or_else(bad)?;
            Ok(SyncCursor {
                base: DbVersion(number(base)?),
                position: LogPosition {
                    version: DbVersion(number(version)?),
                    seq: seq.parse().map_err(|_| bad())?,
                },
                partial: None,
            })
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[test]
    fn since_forms() {
        assert_eq!(
            parse_since("42").unwrap(),
            SyncCursor::complete(DbVersion(42))
        );
        let cut = parse_since("42+57.3").unwrap();
        assert_eq!(cut.base, DbVersion(42));
        assert_eq!(
            cut.position,
            LogPosition {
                version: DbVersion(57),
                seq: 3
            }
        );
        assert_eq!(
            parse_since(&cut.to_string()).unwrap(),
            cut,
            "what a cut listing prints parses back"
        );
        assert!(parse_since("-1").is_err());
        assert!(parse_since("4+x").is_err());
        assert!(parse_since("4+5").is_err());
        assert!(parse_since("").is_err());
    }
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
