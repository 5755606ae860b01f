//! Partial replicas: the filters a device declares per collection ("send me
//! only the records where `owner = "bo"`"), which the *sending* peer checks
//! on every path that hands it a record. See `docs/partial.md`.
//!
//! This module owns the filter tree ([`Filter`]), the per-collection set a
//! device declares ([`PartialFilters`]) and its wire form. Parsing is
//! `parse.rs`'s and evaluation `eval.rs`'s; nothing here touches a store,
//! a socket or a clock (time comes in as `now_ms`).

mod eval;
mod parse;

pub use parse::{FilterError, MAX_FILTER_DEPTH, MAX_FILTER_LEN};

use crate::ids::{CollectionName, FieldName};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Most collections one device may filter (bounds what a peer makes us keep).
pub const MAX_FILTERED_COLLECTIONS: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A value a field is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A JSON string.
    Str(String),
    /// A JSON number (compared as a 64-bit float).
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `now` plus this many milliseconds (negative: in the past), read at
    /// evaluation time: against a number field it is Unix milliseconds,
    /// against a string field an RFC 3339 UTC timestamp text.
    Now(i64),
}

/// One comparison of a field with a literal.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    /// The record's top-level field.
    pub field: FieldName,
    /// How it is compared.
    pub op: Op,
    /// With what.
    pub value: Literal,
}

/// A parsed filter: which records of a collection a partial replica takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part matches.
    And(Vec<Filter>),
    /// Some part matches.
    Or(Vec<Filter>),
    /// The inner filter does not match.
    Not(Box<Filter>),
    /// The field is present (any value, `null` included).
    Exists(FieldName),
    /// A comparison.
    Cmp(Cmp),
}

impl Filter {
    /// Parses a filter's text, e.g. `owner = "bo" and date >= now-30d`.
    ///
    /// ```
    /// use shoal_core::partial::Filter;
    /// let f: Filter = "owner = \"bo\" and not archived = true".parse().unwrap();
    /// let record = serde_json::json!({"owner": "bo"});
    /// assert!(f.matches(record.as_object().unwrap(), 0));
    /// let bad = "owner = bo".parse::<Filter>().unwrap_err();
    /// assert_eq!(bad.at, 8);
    /// ```
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        parse::parse(text)
    }

    /// Whether a live record with these fields matches at `now_ms` (Unix
    /// milliseconds, used by `now` literals only).
    pub fn matches(&self, fields: &Map<String, Value>, now_ms: u64) -> bool {
        eval::matches(self, fields, now_ms)
    }

    /// Whether the filter compares with `now` anywhere, so a record can
    /// start or stop matching by time passing alone (a device sweeps such
    /// collections; see `docs/partial.md`).
    ///
    /// ```
    /// use shoal_core::partial::Filter;
    /// assert!("a = 1 or not date < now-30d".parse::<Filter>().unwrap().uses_now());
    /// assert!(!"owner = \"bo\"".parse::<Filter>().unwrap().uses_now());
    /// ```
    pub fn uses_now(&self) -> bool {
        match self {
            Filter::And(parts) | Filter::Or(parts) => parts.iter().any(Filter::uses_now),
            Filter::Not(inner) => inner.uses_now(),
            Filter::Exists(_) => false,
            Filter::Cmp(cmp) => matches!(cmp.value, Literal::Now(_)),
        }
    }
}

// Number literals are finite (the parser refuses others), so equality is
// reflexive.
impl Eq for Literal {}
impl Eq for Cmp {}
impl Eq for Filter {}

impl FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    /// The filter in its canonical text, which parses back to the same tree:
    /// parentheses only where the tree needs them (an `and` or `or` inside a
    /// `not` or an `and`, an `or` inside an `or`), field names bare unless
    /// they need backquotes. So the text nests no deeper than any text that
    /// parses to this tree (the depth limit holds for it too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(parts) => join(f, parts, "and", |p| {
                matches!(p, Filter::And(_) | Filter::Or(_))
            }),
            Filter::Or(parts) => join(f, parts, "or", |p| matches!(p, Filter::Or(_))),
            Filter::Not(inner) => {
                f.write_str("not ")?;
                part(f, inner, matches!(**inner, Filter::And(_) | Filter::Or(_)))
            }
            Filter::Exists(field) => write!(f, "{} exists", Field(field)),
            Filter::Cmp(Cmp { field, op, value }) => {
                write!(f, "{} {} ", Field(field), op.as_str())?;
                match value {
                    Literal::Str(s) => write!(f, "{}", Value::String(s.clone())),
                    Literal::Num(n) => write!(f, "{}", Value::from(*n)),
                    Literal::Bool(b) => write!(f, "{b}"),
                    Literal::Null => f.write_str("null"),
                    Literal::Now(0) => f.write_str("now"),
                    // Offsets are whole seconds by construction (s, m, h, d);
                    // printed in the largest unit that divides them, so the
                    // number is never larger than the one parsed (which is
                    // bounded) and the text parses back.
                    Literal::Now(ms) => {
                        let sign = if *ms < 0 { '-' } else { '+' };
                        let abs = ms.unsigned_abs();
                        let (unit_ms, unit) = [(86_400_000, 'd'), (3_600_000, 'h'), (60_000, 'm')]
                            .into_iter()
                            .find(|(unit_ms, _)| abs % unit_ms == 0)
                            .unwrap_or((1_000, 's'));
                        write!(f, "now{sign}{}{unit}", abs / unit_ms)
                    }
                }
            }
        }
    }
}

/// Writes `parts` joined by `word`, parenthesizing those `needs_parens` picks.
fn join(
    f: &mut fmt::Formatter<'_>,
    parts: &[Filter],
    word: &str,
    needs_parens: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (n, p) in parts.iter().enumerate() {
        if n > 0 {
            write!(f, " {word} ")?;
        }
        part(f, p, needs_parens(p))?;
    }
    Ok(())
}

fn part(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({filter})")
    } else {
        write!(f, "{filter}")
    }
}

/// A field name as the grammar reads it back: bare when it is a word that is
/// not a keyword (nor `now-…`, which reads as `now` with an offset), else in
/// backquotes.
struct Field<'a>(&'a FieldName);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.as_str();
        if parse::is_bare_field(name) {
            f.write_str(name)
        } else {
            write!(f, "`{name}`")
        }
    }
}

/// A device's filters, one per collection it takes in part. Collections
/// without one are taken whole (sharing rules still apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialFilters {
    filters: BTreeMap<CollectionName, (String, Filter)>,
}

/// Why a set of filters (from a peer or from config) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FiltersError {
    /// One collection's filter did not parse.
    #[error("filter for collection {collection}: {error}")]
    Bad {
        /// The collection.
        collection: String,
        /// Why.
        error: FilterError,
    },
    /// The same collection was named twice.
    #[error("collection {0} is filtered twice")]
    Duplicate(String),
    /// More than [`MAX_FILTERED_COLLECTIONS`].
    #[error("more than {MAX_FILTERED_COLLECTIONS} filtered collections")]
    TooMany,
}

impl PartialFilters {
    /// Sets (replaces) the filter of `collection` from its text.
    pub fn set(&mut self, collection: CollectionName, text: &str) -> Result<(), FiltersError> {
        let filter = Filter::parse(text).map_err(|error| FiltersError::Bad {
            collection: collection.to_string(),
            error,
        })?;
        if !self.filters.contains_key(&collection) && self.filters.len() >= MAX_FILTERED_COLLECTIONS
        {
            return Err(FiltersError::TooMany);
        }
        self.filters.insert(collection, (text.to_string(), filter));
        Ok(())
    }

    /// Removes the filter of `collection` (it is taken whole again).
    pub fn remove(&mut self, collection: &CollectionName) -> bool {
        self.filters.remove(collection).is_some()
    }

    /// Whether no collection is filtered (the replica is full).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The filter of `collection`, if it is taken in part.
    pub fn get(&self, collection: &CollectionName) -> Option<&Filter> {
        self.filters.get(collection).map(|(_, f)| f)
    }

    /// Whether `collection` is taken in part.
    pub fn filters(&self, collection: &CollectionName) -> bool {
        self.filters.contains_key(collection)
    }

    /// Whether a record of `collection` goes to this replica: always when
    /// the collection is not filtered; else only a live record (`fields`
    /// `Some`) that matches at `now_ms`. A deleted record matches no filter
    /// (it leaves the replica instead; see `docs/partial.md`).
    pub fn admits(
        &self,
        collection: &CollectionName,
        fields: Option<&Map<String, Value>>,
        now_ms: u64,
    ) -> bool {
        match (self.get(collection), fields) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(filter), Some(fields)) => filter.matches(fields, now_ms),
        }
    }

    /// The filters as (collection, text) pairs, in collection order: the
    /// wire and config form.
    pub fn to_texts(&self) -> Vec<(CollectionName, String)> {
        self.filters
            .iter()
            .map(|(c, (text, _))| (c.clone(), text.clone()))
            .collect()
    }

    /// Parses the wire or config form; refuses a bad filter, a collection
    /// named twice or too many collections.
    pub fn from_texts(texts: &[(CollectionName, String)]) -> Result<Self, FiltersError> {
        if texts.len() > MAX_FILTERED_COLLECTIONS {
            return Err(FiltersError::TooMany);
        }
        let mut out = Self::default();
        for (collection, text) in texts {
            if out.filters(collection) {
                return Err(FiltersError::Duplicate(collection.to_string()));
            }
            out.set(collection.clone(), text)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
