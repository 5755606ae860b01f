//! Map fields over HTTP: setting and removing one entry of a record's map
//! field, each one library call (`Collection::write` with `Edit::MapSet` /
//! `Edit::MapRemove`, one store transaction), replying like every write.
//!
//! It owns the HTTP meaning of those calls (setting creates the record if
//! needed; removing from a record that is not alive is `404`; removing an
//! absent entry changes nothing); merge rules and the validation of field
//! names and keys are the library's. It must not hold the store lock across
//! an await.

use super::extract::JsonBody;
use super::records::write;
use super::{Failure, Shared};
use crate::api::{ApiError, WriteReply};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use shoal::Edit;

/// Sets entry `key` of map field `field` to the body (any JSON value),
/// creating the record (or a new life of a deleted one) if needed. Entries
/// merge one by one: concurrent sets of different keys on two replicas both
/// survive.
#[utoipa::path(put, path = "/api/collections/{collection}/records/{id}/maps/{field}/{key}",
    tag = "records",
    params(("collection" = String, Path), ("id" = String, Path),
        ("field" = String, Path, description = "the map field"),
        ("key" = String, Path, description = "the entry's key (percent-encoded)")),
    request_body(content = Value, description = "the entry's value: any JSON value"),
    responses((status = 200, body = WriteReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 409, body = ApiError),
        (status = 413, body = ApiError), (status = 415, body = ApiError)))]
pub async fn map_set(
    State(control): State<Shared>,
    Path((collection, id, field, key)): Path<(String, String, String, String)>,
    JsonBody(value): JsonBody<Value>,
) -> Result<Json<WriteReply>, Failure> {
    write(
        &control,
        &collection,
        &id,
        Edit::MapSet { field, key, value },
    )
    .await
}

/// Removes entry `key` of map field `field` (a tombstone: a replica that
/// still holds the entry cannot bring it back by merging). An absent entry
/// changes nothing (`db_version` null).
#[utoipa::path(delete, path = "/api/collections/{collection}/records/{id}/maps/{field}/{key}",
    tag = "records",
    params(("collection" = String, Path), ("id" = String, Path),
        ("field" = String, Path, description = "the map field"),
        ("key" = String, Path, description = "the entry's key (percent-encoded)")),
    responses((status = 200, body = WriteReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn map_remove(
    State(control): State<Shared>,
    Path((collection, id, field, key)): Path<(String, String, String, String)>,
) -> Result<Json<WriteReply>, Failure> {
    write(&control, &collection, &id, Edit::MapRemove { field, key }).await
}
