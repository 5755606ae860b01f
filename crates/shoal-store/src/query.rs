//! Simple queries over a collection's live records — field equals, field range,
//! order by a field, limit — run on SQLite's JSON functions, and the per-field
//! expression indexes a collection declares to make them fast.
//!
//! This module owns the SQL it generates and the rules for what can be queried;
//! it does not page through whole collections (that is `read.rs`'s `list`).

use crate::error::StoreError;
use crate::page_limit::check_limit;
use crate::read::{Record, parse_object};
use crate::write_txn::WriteTxn;
use crate::{Store, rows};
use rusqlite::OptionalExtension;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;
use shoal_core::{CollectionName, FieldName, RecordId};
use std::ops::Bound;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// One condition on a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// The field equals the value (`null` matches a null or missing field).
    Eq(String, Value),
    /// The field lies within the bounds.
    Range(String, Bound<Value>, Bound<Value>),
}

/// A query: all filters must hold; results ordered by a field (then by id), at most `limit`.
///
/// ```
/// use shoal_store::{Query, Order};
/// use serde_json::json;
/// let q = Query::new().eq("done", json!(false)).range("due", json!(10).into(), None).order_by("due", Order::Asc).limit(20);
/// assert_eq!(q.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Conditions, all of which must hold.
    pub filters: Vec<Filter>,
    /// Field to order by; id order when `None`.
    pub order_by: Option<(String, Order)>,
    /// Most records returned (1..=[`MAX_QUERY_LIMIT`](crate::MAX_QUERY_LIMIT)).
    pub limit: usize,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            filters: Vec::new(),
            order_by: None,
            limit: 100,
        }
    }
}

impl Query {
    /// A query matching every live record, in id order, limit 100.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `field == value`.
    pub fn eq(mut self, field: impl Into<String>, value: Value) -> Self {
        self.filters.push(Filter::Eq(field.into(), value));
        self
    }

    /// Adds `min <= field < max`; either side may be open (`None`).
    pub fn range(
        mut self,
        field: impl Into<String>,
        min: Option<Value>,
        max: Option<Value>,
    ) -> Self {
        let lower = min.map_or(Bound::Unbounded, Bound::Included);
        let upper = max.map_or(Bound::Unbounded, Bound::Excluded);
        self.filters.push(Filter::Range(field.into(), lower, upper));
        self
    }

    /// Orders by a field (ties broken by id).
    pub fn order_by(mut self, field: impl Into<String>, order: Order) -> Self {
        self.order_by = Some((field.into(), order));
        self
    }

    /// Sets the most records returned.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// The SQL expression for a field's value; identical text in indexes and queries
/// so SQLite can match them.
fn field_expr(field: &str) -> Result<String, StoreError> {
    let name = FieldName::new(field)?;
    if name.as_str().contains(['"', '\\', '\'']) {
        return Err(StoreError::InvalidQuery(format!(
            "field {field:?} cannot be queried: quotes and backslashes are not allowed in queried field names"
        )));
    }
    Ok(format!("json_extract(data, '$.\"{}\"')", name.as_str()))
}

/// The SQLite name of the index on `field` of collection `cid`.
fn index_name(cid: i64, field: &str) -> String {
    format!(
        "ix_{cid}_{}",
        &blake3::hash(field.as_bytes()).to_hex()[..16]
    )
}

/// The fields collection `cid` declared indexes on (none for an unknown id).
fn indexes_of(conn: &rusqlite::Connection, cid: i64) -> Result<Vec<String>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT indexes FROM collections WHERE cid = ?1")?
        .query_row([cid], |r| r.get(0))
        .optional()?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Which declared index the query should be pinned to, if any: an equality
/// on an indexed field first, then a range, then the order. Without table
/// statistics SQLite prefers the `(cid, rid)` key over a partial expression
/// index, so the choice is made here, deterministically.
fn pinned_index(query: &Query, indexed: &[String]) -> Option<String> {
    let is_indexed = |f: &String| indexed.contains(f);
    let eq = query.filters.iter().find_map(|f| match f {
        Filter::Eq(field, _) if is_indexed(field) => Some(field),
        _ => None,
    });
    let range = query.filters.iter().find_map(|f| match f {
        Filter::Range(field, ..) if is_indexed(field) => Some(field),
        _ => None,
    });
    let order = query
        .order_by
        .as_ref()
        .map(|(field, _)| field)
        .filter(|f| is_indexed(f));
    eq.or(range).or(order).cloned()
}

fn sql_value(value: &Value) -> Result<SqlValue, StoreError> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(StoreError::InvalidQuery(
                "only strings, numbers, booleans and null can be compared".into(),
            ));
        }
    })
}

impl Store {
    /// Declares an index on `field` of `collection` (idempotent). Queries that
    /// filter or order on the field then use it.
    pub fn create_index(
        &mut self,
        collection: &CollectionName,
        field: &str,
    ) -> Result<(), StoreError> {
        let expr = field_expr(field)?;
        let tx = WriteTxn::begin_deferred(&self.db)?;
        // Created inside the transaction, like every write's collection.
        let cid = rows::collection_id(&tx, collection, true)?.unwrap_or_default();
        let name = index_name(cid, field);
        tx.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {name} ON records ({expr}, rid) WHERE cid = {cid} AND data IS NOT NULL"
        ))?;
        let mut fields = indexes_of(&tx, cid)?;
        if !fields.iter().any(|f| f == field) {
            fields.push(field.to_string());
            fields.sort();
            tx.execute(
                "UPDATE collections SET indexes = ?2 WHERE cid = ?1",
                rusqlite::params![
                    cid,
                    serde_json::to_string(&fields).unwrap_or_else(|_| "[]".into())
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The fields of `collection` that have an index.
    pub fn indexes(&self, collection: &CollectionName) -> Result<Vec<String>, StoreError> {
        match self.collection_id(collection)? {
            Some(cid) => indexes_of(&self.db.conn, cid),
            None => Ok(Vec::new()),
        }
    }

    /// The collection's id, or an id no collection has (so a query on a
    /// collection that does not exist is still validated, and matches nothing).
    fn cid_or_none(&self, collection: &CollectionName) -> Result<i64, StoreError> {
        Ok(self.collection_id(collection)?.unwrap_or(-1))
    }

    fn query_sql(&self, cid: i64, query: &Query) -> Result<(String, Vec<SqlValue>), StoreError> {
        check_limit(query.limit)?;
        // cid is our own integer, inlined so SQLite can match the partial indexes.
        let hint = match pinned_index(query, &indexes_of(&self.db.conn, cid)?) {
            Some(field) => format!(" INDEXED BY {}", index_name(cid, &field)),
            None => String::new(),
        };
        let mut sql =
            format!("SELECT rid, data FROM records{hint} WHERE cid = {cid} AND data IS NOT NULL");
        let mut args = Vec::new();
        for filter in &query.filters {
            match filter {
                Filter::Eq(field, Value::Null) => {
                    sql += &format!(" AND {} IS NULL", field_expr(field)?)
                }
                Filter::Eq(field, value) => {
                    sql += &format!(" AND {} = ?", field_expr(field)?);
                    args.push(sql_value(value)?);
                }
                Filter::Range(field, lower, upper) => {
                    let expr = field_expr(field)?;
                    for (bound, inclusive, exclusive) in [(lower, ">=", ">"), (upper, "<=", "<")] {
                        let (op, value) = match bound {
                            Bound::Included(v) => (inclusive, v),
                            Bound::Excluded(v) => (exclusive, v),
                            Bound::Unbounded => continue,
                        };
                        sql += &format!(" AND {expr} {op} ?");
                        args.push(sql_value(value)?);
                    }
                }
            }
        }
        match &query.order_by {
            Some((field, order)) => {
                let dir = if *order == Order::Asc { "ASC" } else { "DESC" };
                sql += &format!(" ORDER BY {} {dir}, rid {dir}", field_expr(field)?);
            }
            None => sql += " ORDER BY rid",
        }
        sql += &format!(" LIMIT {}", query.limit);
        Ok((sql, args))
    }

    /// Runs a query over the live records of `collection`.
    pub fn query(
        &self,
        collection: &CollectionName,
        query: &Query,
    ) -> Result<Vec<Record>, StoreError> {
        let (sql, args) = self.query_sql(self.cid_or_none(collection)?, query)?;
        let mut stmt = self.db.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((
                RecordId::new(row.get::<_, String>(0)?)?,
                parse_object(&row.get::<_, String>(1)?)?,
            ));
        }
        Ok(out)
    }

    /// SQLite's plan for a query (one line per step), to check an index is used.
    pub fn query_plan(
        &self,
        collection: &CollectionName,
        query: &Query,
    ) -> Result<String, StoreError> {
        let (sql, args) = self.query_sql(self.cid_or_none(collection)?, query)?;
        let mut stmt = self.db.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let lines: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?
            .collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }
}
