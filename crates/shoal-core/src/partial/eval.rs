//! Evaluating a [`Filter`] against a record's fields, sans IO: `now` comes
//! in as an argument. A comparison with a missing field, or with a field of
//! another JSON type than the literal, is false (whatever the operator);
//! `not` turns that around. Numbers compare as floats, strings by bytes,
//! booleans and `null` only with `=` and `!=`.
//!
//! This module only evaluates; the grammar is `parse.rs`'s.

use super::{Cmp, Filter, Literal, Op};
use serde_json::{Map, Value};
use std::cmp::Ordering;

pub(super) fn matches(filter: &Filter, fields: &Map<String, Value>, now_ms: u64) -> bool {
    match filter {
        Filter::And(parts) => parts.iter().all(|p| matches(p, fields, now_ms)),
        Filter::Or(parts) => parts.iter().any(|p| matches(p, fields, now_ms)),
        Filter::Not(inner) => !matches(inner, fields, now_ms),
        Filter::Exists(field) => fields.contains_key(field.as_str()),
        Filter::Cmp(cmp) => compare(cmp, fields, now_ms),
    }
}

fn compare(cmp: &Cmp, fields: &Map<String, Value>, now_ms: u64) -> bool {
    let Some(value) = fields.get(cmp.field.as_str()) else {
        return false;
    };
    let ordering = match (&cmp.value, value) {
        (Literal::Str(s), Value::String(v)) => Some(v.as_str().cmp(s.as_str())),
        (Literal::Num(n), Value::Number(v)) => v.as_f64().and_then(|v| v.partial_cmp(n)),
        (Literal::Now(offset), Value::Number(v)) => {
            let at = now_ms as f64 + *offset as f64;
            v.as_f64().and_then(|v| v.partial_cmp(&at))
        }
        (Literal::Now(offset), Value::String(v)) => {
            let at = (now_ms as i64).saturating_add(*offset);
            Some(v.as_str().cmp(rfc3339_utc(at).as_str()))
        }
        (Literal::Bool(b), Value::Bool(v)) => {
            return equality(cmp.op, v == b);
        }
        (Literal::Null, Value::Null) => return equality(cmp.op, true),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match cmp.op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
    }
}

/// `=` / `!=` on values with no order; ordering operators are false.
fn equality(op: Op, equal: bool) -> bool {
    match op {
        Op::Eq => equal,
        Op::Ne => !equal,
        Op::Lt | Op::Le | Op::Gt | Op::Ge => false,
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian),
/// so it orders like the RFC 3339 UTC texts records keep.
pub(super) fn rfc3339_utc(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}
