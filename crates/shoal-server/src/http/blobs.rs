//! Blobs over HTTP: streaming upload (`POST /api/blobs`), streaming
//! download (`GET /api/blobs/{hash}`, with `Content-Length`), and the list
//! of blobs held here or (`?missing=true`) referenced but not here yet.
//!
//! Bytes are never held whole in memory: an upload flows from the request
//! body through a blocking bridge into the library's hashing writer (the
//! size cap is the store's; over it is `413`), a download from the file to
//! the socket a chunk at a time. It must not trust a client's hash or size.

use super::extract;
use super::{Failure, Shared, blocking};
use crate::api::{ApiError, BlobRefBody, BlobRow, BlobTransferInfo, BlobsReply};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use shoal::{BlobRef, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

/// Blobs a list page holds unless `limit` says otherwise.
const DEFAULT_PAGE: usize = 50;
/// Most blobs one list page holds.
const MAX_PAGE: usize = 500;
/// The media type of a download (a hash does not say what the bytes are).
const OCTET_STREAM: &str = "application/octet-stream";

/// `GET /api/blobs` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlobsQuery {
    /// Only hashes after this one (the previous page's `next`).
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<usize>,
    /// List the blobs live records reference that are not here yet.
    missing: Option<bool>,
}

/// Adds the request body as a blob; its `Content-Type` becomes the
/// reference's `type`.
#[utoipa::path(post, path = "/api/blobs", tag = "blobs",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the bytes, streamed"),
    responses((status = 201, body = BlobRefBody), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 413, body = ApiError)))]
pub async fn upload(
    State(control): State<Shared>,
    request: Request,
) -> Result<(StatusCode, Json<BlobRefBody>), Failure> {
    let mime = match request.headers().get(header::CONTENT_TYPE) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| Failure::bad_request("Content-Type is not text"))?
                .trim()
                .to_string();
            // Checked with the library's own rule before storing anything.
            let probe = BlobRef {
                hash: shoal::BlobHash::of(b""),
                size: 0,
                mime: Some(text.clone()),
            };
            BlobRef::from_json(&probe.to_json())
                .map_err(|e| Failure::bad_request(format!("invalid Content-Type: {e}")))?;
            Some(text)
        }
    };
    let cap = control.store.max_blob_bytes();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared.filter(|size| *size > cap) {
        return Err(Failure::too_large(format!(
            "a blob of {size} bytes exceeds the cap of {cap} bytes"
        )));
    }
    // Whether the body itself failed (the client broke off), as opposed to
    // the store.
    let broke = Arc::new(AtomicBool::new(false));
    let seen = broke.clone();
    let stream = request.into_body().into_data_stream().map_err(move |e| {
        seen.store(true, Ordering::Relaxed);
        std::io::Error::other(e)
    });
    // The bridge blocks its thread on the async body: only ever in spawn_blocking.
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let store = control.store.clone();
    let added = tokio::task::spawn_blocking(move || store.add_blob(reader))
        .await
        .map_err(|e| Failure::internal(format!("the upload panicked: {e}")))?;
    let blob = match added {
        Ok(blob) => blob,
        Err(shoal::Error::Store(StoreError::Io { detail, .. }))
            if broke.load(Ordering::Relaxed) =>
        {
            return Err(Failure::bad_request(format!(
                "the upload broke off: {detail}"
            )));
        }
        Err(e) => return Err(Failure::store(e)),
    };
    Ok((
        StatusCode::CREATED,
        Json(BlobRefBody {
            blob: blob.hash.to_hex(),
            size: blob.size,
            mime,
        }),
    ))
}

/// The bytes of a blob held here; with blobs on demand, one a peer holds is
/// fetched first (waiting up to 20 s).
#[utoipa::path(get, path = "/api/blobs/{hash}", tag = "blobs",
    params(("hash" = String, Path, description = "64 hex digits")),
    responses((status = 200, description = "the bytes", content_type = "application/octet-stream",
            body = Vec<u8>),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 404, body = ApiError),
        (status = 502, description = "blobs on demand: no connected peer sent it", body = ApiError),
        (status = 503, description = "blobs on demand: still fetching; try again", body = ApiError)))]
pub async fn download(
    State(control): State<Shared>,
    Path(hash): Path<String>,
) -> Result<Response, Failure> {
    let hash = extract::blob_hash(&hash)?;
    let store = control.store.clone();
    let on_demand = blocking(move || store.blobs_on_demand().map_err(Failure::store)).await?;
    if on_demand.enabled {
        // Fetched from a peer now if it is not here (bounded wait).
        let opened = control
            .store
            .open_blob_from(&control.node, &hash, DEMAND_WAIT)
            .await
            .map_err(Failure::store)?;
        let Some(file) = opened else {
            return Err(Failure::not_found(format!(
                "blob {hash} is not here and no record references it"
            )));
        };
        let size = file
            .metadata()
            .map_err(|e| Failure::internal(format!("cannot read blob {hash}: {e}")))?
            .len();
        return Ok(stream_file(file, size));
    }
    let store = control.store.clone();
    let opened = blocking(move || {
        let Some(file) = store.open_blob(&hash).map_err(Failure::store)? else {
            return Ok(None);
        };
        let size = file
            .metadata()
            .map_err(|e| Failure::internal(format!("cannot read blob {hash}: {e}")))?
            .len();
        Ok(Some((file, size)))
    })
    .await?;
    let Some((file, size)) = opened else {
        return Err(Failure::not_found(format!("blob {hash} is not here")));
    };
    Ok(stream_file(file, size))
}

/// How long a GET of a blob held by peers only (blobs on demand) waits for
/// its fetch before answering `503 blob-fetching` (the fetch goes on).
const DEMAND_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The response streaming a blob's `size` bytes from `file`.
fn stream_file(file: std::fs::File, size: u64) -> Response {
    let body = Body::from_stream(ReaderStream::new(tokio::fs::File::from_std(file)));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    response
}

/// Blobs held here in hash order, or those referenced and missing.
#[utoipa::path(get, path = "/api/blobs", tag = "blobs", operation_id = "list_blobs",
    params(BlobsQuery),
    responses((status = 200, body = BlobsReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError)))]
pub async fn list(
    State(control): State<Shared>,
    Query(query): Query<BlobsQuery>,
) -> Result<Json<BlobsReply>, Failure> {
    let limit = extract::limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let after = query.after.as_deref().map(extract::blob_hash).transpose()?;
    let store = control.store.clone();
    let missing = query.missing.unwrap_or(false);
    let (transfers, _) = control.node.blob_transfers();
    // One more than a page: whether there is a next one.
    let mut rows = blocking(move || {
        if missing {
            let found = store
                .missing_blobs(after.as_ref(), limit + 1)
                .map_err(Failure::store)?;
            let on_demand = store
                .blobs_on_demand()
                .map_err(Failure::store)?
                .enabled
                .then_some(true);
            Ok(found
                .into_iter()
                .map(|m| BlobRow {
                    hash: m.hash.to_hex(),
                    size: m.size,
                    references: None,
                    added_ms: None,
                    collections: Some(m.collections.iter().map(|c| c.to_string()).collect()),
                    transfer: transfers
                        .iter()
                        .find(|t| t.hash == m.hash)
                        .map(BlobTransferInfo::from),
                    on_demand,
                })
                .collect::<Vec<_>>())
        } else {
            let found = store
                .list_blobs(after.as_ref(), limit + 1)
                .map_err(Failure::store)?;
            Ok(found
                .into_iter()
                .map(|b| BlobRow {
                    hash: b.hash.to_hex(),
                    size: b.size,
                    references: Some(b.references),
                    added_ms: Some(b.added_ms),
                    collections: None,
                    transfer: None,
                    on_demand: None,
                })
                .collect())
        }
    })
    .await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|row| row.hash.clone())
    } else {
        None
    };
    Ok(Json(BlobsReply { blobs: rows, next }))
}
