//! Collection schemas over HTTP: read, declare and remove the data version
//! and JSON Schema the app on this node declares for a collection — each
//! one library call, run off the async executor.
//!
//! It owns only the HTTP meaning (the declaration as the reply, 404 when
//! none is declared, 400 for a bad schema or an older version); the rules
//! are the store's.

use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking};
use crate::api::{ApiError, SchemaBody};
use axum::Json;
use axum::extract::{Path, State};

/// The collection's declaration on this node.
#[utoipa::path(get, path = "/api/collections/{collection}/schema", tag = "records",
    operation_id = "get_schema",
    params(("collection" = String, Path)),
    responses((status = 200, body = SchemaBody), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn get(
    State(control): State<Shared>,
    Path(collection): Path<String>,
) -> Result<Json<SchemaBody>, Failure> {
    let name = extract::collection(&collection)?;
    let store = control.store.clone();
    let found = blocking(move || {
        store
            .collection(name.as_str())
            .and_then(|c| c.schema())
            .map_err(Failure::store)
    })
    .await?;
    match found {
        Some(declared) => Ok(Json(SchemaBody {
            version: declared.version,
            schema: declared.schema,
        })),
        None => Err(Failure::not_found(format!(
            "no schema is declared for collection {collection} on this node"
        ))),
    }
}

/// Declares the collection's data version and JSON Schema on this node
/// (local writes are then validated and stamped).
#[utoipa::path(put, path = "/api/collections/{collection}/schema", tag = "records",
    operation_id = "set_schema",
    params(("collection" = String, Path)), request_body = SchemaBody,
    responses((status = 200, body = SchemaBody, description = "declared"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 415, body = ApiError)))]
pub async fn set(
    State(control): State<Shared>,
    Path(collection): Path<String>,
    JsonBody(body): JsonBody<SchemaBody>,
) -> Result<Json<SchemaBody>, Failure> {
    let name = extract::collection(&collection)?;
    let store = control.store.clone();
    blocking(move || {
        store
            .collection(name.as_str())
            .and_then(|c| c.set_schema(body.version, &body.schema))
            .map_err(Failure::store)?;
        Ok(body)
    })
    .await
    .map(Json)
}

/// Removes the collection's declaration on this node.
#[utoipa::path(delete, path = "/api/collections/{collection}/schema", tag = "records",
    operation_id = "remove_schema",
    params(("collection" = String, Path)),
    responses((status = 200, body = SchemaBody, description = "the declaration removed"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub async fn remove(
    State(control): State<Shared>,
    Path(collection): Path<String>,
) -> Result<Json<SchemaBody>, Failure> {
    let name = extract::collection(&collection)?;
    let store = control.store.clone();
    let removed = blocking(move || {
        let records = store.collection(name.as_str()).map_err(Failure::store)?;
        let declared = records.schema().map_err(Failure::store)?;
        records.remove_schema().map_err(Failure::store)?;
        Ok(declared)
    })
    .await?;
    match removed {
        Some(declared) => Ok(Json(SchemaBody {
            version: declared.version,
            schema: declared.schema,
        })),
        None => Err(Failure::not_found(format!(
            "no schema is declared for collection {collection} on this node"
        ))),
    }
}
