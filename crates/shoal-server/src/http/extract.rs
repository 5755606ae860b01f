//! What a request may carry, checked at the edge: a JSON body (right
//! content type, at most 1 MiB, well-formed — each refusal one of our
//! codes) and the path parameters every area shares (peer ids, collection
//! names, record ids, blob hashes), each refused with its own `invalid-*`
//! code.
//!
//! It must not touch the store or the node.

use super::Failure;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use shoal::{BlobHash, CollectionName, PeerId, RecordId};

/// A JSON body, refused as `415 unsupported-media-type` without
/// `Content-Type: application/json`, `413 payload-too-large` over the cap,
/// `400 bad-request` when malformed or of the wrong shape.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_failure(rejection)),
        }
    }
}

fn json_failure(rejection: JsonRejection) -> Failure {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "this route takes a JSON body: send `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            Failure::bad_request(format!("the body is not JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => {
            Failure::bad_request(format!("the body has the wrong shape: {}", e.body_text()))
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Failure::too_large(format!(
                "a JSON body is at most {} bytes",
                super::MAX_JSON_BODY
            ))
        }
        JsonRejection::BytesRejection(e) => {
            Failure::bad_request(format!("cannot read the body: {}", e.body_text()))
        }
        // The enum is non-exhaustive: a future rejection keeps its status.
        other => Failure::new(other.status(), "bad-request", other.body_text()),
    }
}

/// A peer id parameter (`invalid-peer`).
pub fn peer(text: &str) -> Result<PeerId, Failure> {
    text.parse()
        .map_err(|e| Failure::invalid("invalid-peer", format!("`{text}` is not a peer id: {e}")))
}

/// A collection name parameter (`invalid-collection`).
pub fn collection(text: &str) -> Result<CollectionName, Failure> {
    CollectionName::new(text).map_err(|e| Failure::invalid("invalid-collection", e.to_string()))
}

/// A record id parameter (`invalid-id`).
pub fn record_id(text: &str) -> Result<RecordId, Failure> {
    RecordId::new(text).map_err(|e| Failure::invalid("invalid-id", e.to_string()))
}

/// A blob hash parameter (`invalid-hash`).
pub fn blob_hash(text: &str) -> Result<BlobHash, Failure> {
    BlobHash::from_hex(text).map_err(|e| Failure::invalid("invalid-hash", e.to_string()))
}

/// A page size: `default` when absent, refused outside `1..=max`.
pub fn limit(given: Option<usize>, default: usize, max: usize) -> Result<usize, Failure> {
    match given {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Failure::bad_request(format!(
            "limit must be 1 to {max}, not {n}"
        ))),
    }
}
