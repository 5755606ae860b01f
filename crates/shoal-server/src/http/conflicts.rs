//! `GET /api/conflicts`: this node's conflict journal — values that lost a
//! merge to a concurrent edit — newest first, by collection and time.
//!
//! This file checks the parameters and shows the journal; what is a
//! conflict is the library's. It must not write anything: restoring a
//! value is an ordinary write through the records routes.

use super::{Failure, Shared, blocking, extract};
use crate::api::{ApiError, ConflictInfo, ConflictsReply};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use shoal::{ConflictQuery, MAX_CONFLICTS_LISTED};

/// Entries a reply holds unless `limit` says otherwise.
pub const DEFAULT_CONFLICTS: usize = 100;

/// `GET /api/conflicts` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConflictsQuery {
    /// Only this collection's conflicts.
    collection: Option<String>,
    /// Only conflicts journalled at or after this time (ms since the Unix epoch).
    since: Option<u64>,
    /// Most entries, 1 to 10,000 (default 100).
    limit: Option<usize>,
}

/// The conflict journal, newest first.
#[utoipa::path(get, path = "/api/conflicts", tag = "conflicts", params(ConflictsQuery),
    responses((status = 200, body = ConflictsReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError)))]
pub async fn list(
    State(control): State<Shared>,
    Query(query): Query<ConflictsQuery>,
) -> Result<Json<ConflictsReply>, Failure> {
    let collection = query
        .collection
        .as_deref()
        .map(extract::collection)
        .transpose()?;
    let limit = extract::limit(query.limit, DEFAULT_CONFLICTS, MAX_CONFLICTS_LISTED)?;
    let query = ConflictQuery {
        collection,
        since_ms: query.since,
        limit: Some(limit),
    };
    let store = control.store.clone();
    let entries = blocking(move || store.conflicts(&query).map_err(Failure::store)).await?;
    Ok(Json(ConflictsReply {
        conflicts: entries.iter().map(ConflictInfo::from).collect(),
    }))
}
