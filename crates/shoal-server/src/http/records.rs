//! Records over HTTP: the collection list, paged record lists, and create,
//! read, put, patch and delete of one record — each one library call (one
//! store transaction), run off the async executor.
//!
//! It owns the HTTP meaning of those calls (201 on create, 409 for a live
//! id, 404 for an absent one, generated ids); merge rules and validation of
//! names, ids and values are the library's. It must not read other
//! collections' data or hold the store lock across an await.

use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking};
use crate::api::{
    ApiError, CollectionInfo, CollectionsReply, CreateRecord, RecordBody, RecordsPage, WriteReply,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use shoal::{Edit, ListOptions};

/// Records a list page holds unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 50;
/// Most records one list page holds.
pub const MAX_PAGE: usize = 500;

/// `GET /api/collections/{c}/records` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only ids starting with this.
    prefix: Option<String>,
    /// Only ids after this one (the previous page's `next`).
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Every collection with its live and deleted record counts.
#[utoipa::path(get, path = "/api/collections", tag = "records",
    responses((status = 200, body = CollectionsReply), (status = 401, body = ApiError)))]
pub async fn collections(State(control): State<Shared>) -> Result<Json<CollectionsReply>, Failure> {
    let store = control.store.clone();
    let status = blocking(move || store.status().map_err(Failure::store)).await?;
    Ok(Json(CollectionsReply {
        collections: status
            .collections
            .into_iter()
            .map(|c| CollectionInfo {
                name: c.name.to_string(),
                live: c.live,
                deleted: c.deleted,
            })
            .collect(),
    }))
}

/// One page of live records in id order.
#[utoipa::path(get, path = "/api/collections/{collection}/records", tag = "records",
    operation_id = "list_records",
    params(("collection" = String, Path), ListQuery),
    responses((status = 200, body = RecordsPage), (status = 400, body = ApiError),
        (status = 401, body = ApiError)))]
pub async fn list(
    State(control): State<Shared>,
    Path(collection): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<RecordsPage>, Failure> {
    let name = extract::collection(&collection)?;
    let limit = extract::limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let after = query.after.as_deref().map(extract::record_id).transpose()?;
    let options = ListOptions {
        prefix: query.prefix.unwrap_or_default(),
        after,
        limit,
    };
    let store = control.store.clone();
    let (page, check) = blocking(move || {
        let records = store.collection(name.as_str()).map_err(Failure::store)?;
        let page = records.list(&options).map_err(Failure::store)?;
        Ok((page, records.data_version_check().map_err(Failure::store)?))
    })
    .await?;
    Ok(Json(RecordsPage {
        records: page
            .records
            .into_iter()
            .map(|(id, value)| RecordBody {
                id: id.to_string(),
                newer_data_version: check.newer(&value),
                value: Value::Object(value),
            })
            .collect(),
        next: page.next.map(|id| id.to_string()),
    }))
}

/// Creates a record; without `id` one is generated.
#[utoipa::path(post, path = "/api/collections/{collection}/records", tag = "records",
    params(("collection" = String, Path)), request_body = CreateRecord,
    responses((status = 201, body = WriteReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 409, body = ApiError),
        (status = 413, body = ApiError), (status = 415, body = ApiError)))]
pub async fn create(
    State(control): State<Shared>,
    Path(collection): Path<String>,
    JsonBody(body): JsonBody<CreateRecord>,
) -> Result<(StatusCode, Json<WriteReply>), Failure> {
    let name = extract::collection(&collection)?;
    let id = match body.id {
        Some(id) => extract::record_id(&id)?.to_string(),
        None => generated_id()?,
    };
    let store = control.store.clone();
    let written = {
        let id = id.clone();
        let name = name.clone();
        blocking(move || {
            let records = store.collection(name.as_str()).map_err(Failure::store)?;
            records
                .write(&id, Edit::Create(body.value))
                .map_err(|e| match e {
                    shoal::Error::Exists { .. } => Failure::exists(format!(
                        "record {name}/{id} exists; PUT or PATCH it to change it"
                    )),
                    other => Failure::store(other),
                })
        })
        .await?
    };
    Ok((
        StatusCode::CREATED,
        Json(WriteReply::new(name.as_str(), &id, written)),
    ))
}

/// One live record.
#[utoipa::path(get, path = "/api/collections/{collection}/records/{id}", tag = "records",
    params(("collection" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = RecordBody), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn get(
    State(control): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
) -> Result<Json<RecordBody>, Failure> {
    let name = extract::collection(&collection)?;
    let id = extract::record_id(&id)?;
    let store = control.store.clone();
    let wanted = id.clone();
    let (found, check) = blocking(move || {
        let records = store.collection(name.as_str()).map_err(Failure::store)?;
        let found = records.get(wanted.as_str()).map_err(Failure::store)?;
        Ok((found, records.data_version_check().map_err(Failure::store)?))
    })
    .await?;
    match found {
        Some(value) => Ok(Json(RecordBody {
            id: id.to_string(),
            newer_data_version: check.newer(&value),
            value: Value::Object(value),
        })),
        None => Err(Failure::not_found(format!(
            "no record {collection}/{id} (absent or deleted)"
        ))),
    }
}

/// Makes the record exactly the body (creating or re-creating it).
#[utoipa::path(put, path = "/api/collections/{collection}/records/{id}", tag = "records",
    params(("collection" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "the whole value"),
    responses((status = 200, body = WriteReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 413, body = ApiError),
        (status = 415, body = ApiError)))]
pub async fn put(
    State(control): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
    JsonBody(value): JsonBody<Value>,
) -> Result<Json<WriteReply>, Failure> {
    write(&control, &collection, &id, Edit::Put(value)).await
}

/// Changes the given fields of a live record (`null` removes a field).
#[utoipa::path(patch, path = "/api/collections/{collection}/records/{id}", tag = "records",
    params(("collection" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "the fields to change"),
    responses((status = 200, body = WriteReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError),
        (status = 413, body = ApiError), (status = 415, body = ApiError)))]
pub async fn patch(
    State(control): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
    JsonBody(fields): JsonBody<Value>,
) -> Result<Json<WriteReply>, Failure> {
    write(&control, &collection, &id, Edit::Patch(fields)).await
}

/// Deletes a live record.
#[utoipa::path(delete, path = "/api/collections/{collection}/records/{id}", tag = "records",
    params(("collection" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = WriteReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete(
    State(control): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
) -> Result<Json<WriteReply>, Failure> {
    write(&control, &collection, &id, Edit::Delete).await
}

/// One write to one record, off the executor (map entries' routes too).
pub(super) async fn write(
    control: &Shared,
    collection: &str,
    id: &str,
    edit: Edit,
) -> Result<Json<WriteReply>, Failure> {
    let name = extract::collection(collection)?;
    let id = extract::record_id(id)?.to_string();
    let store = control.store.clone();
    let (target, records) = (id.clone(), name.clone());
    let written = blocking(move || {
        store
            .collection(records.as_str())
            .and_then(|c| c.write(&target, edit))
            .map_err(Failure::store)
    })
    .await?;
    Ok(Json(WriteReply::new(name.as_str(), &id, written)))
}

/// A random record id: 32 hex digits (128 bits). Records that belong to an
/// owner should rather get a deterministic id (`derive_id`) from the client.
fn generated_id() -> Result<String, Failure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::internal(format!("no randomness available: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
