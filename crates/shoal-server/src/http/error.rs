//! Failures of the HTTP API: the [`Failure`] every handler returns, the
//! stable codes of docs/http-api.md, how library errors map to them, and the
//! last line of defence that turns any non-JSON error response (a framework
//! rejection, a body over the cap) into our `{"code", "message"}` shape.
//!
//! It decides statuses and codes only; it must not log request bodies or
//! tokens, and holds no handler logic.

use crate::api::ApiError;
use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal::{CoreError, FedError, NetError, Refusal, StoreError, Transfer};

/// Most bytes of a framework rejection's text kept as the message.
const MAX_REJECTION_TEXT: usize = 4096;

/// A failed request: status, stable code and a message for people.
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (`bad-request`, `not-found`, ...).
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl Failure {
    /// A failure with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            status,
            code,
            message: message.into(),
        }
    }

    /// `400 bad-request`: a malformed body, query or parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// `400` with a parameter's own code (`invalid-id`, `invalid-peer`, ...).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `404 not-found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// `401 unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong `Authorization: Bearer <token>` (the token is in DATA/token)",
        )
    }

    /// `500 internal`: the store (or the daemon) failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A library error: bad names and ids are the client's, a missing
    /// record is `404`, an existing one (for a create) `409`, a value or blob
    /// over its cap `413`, the rest ours.
    pub fn store(error: shoal::Error) -> Self {
        let message = error.to_string();
        match error {
            shoal::Error::NotFound { .. } => Self::not_found(message),
            shoal::Error::Exists { .. } => Self::exists(message),
            shoal::Error::Invalid(core) => match core {
                CoreError::InvalidCollectionName { .. } => {
                    Self::invalid("invalid-collection", message)
                }
                CoreError::InvalidRecordId { .. } => Self::invalid("invalid-id", message),
                CoreError::ValueTooLarge { .. } | CoreError::RecordTooLarge { .. } => {
                    Self::too_large(message)
                }
                CoreError::RecordNotFound => Self::not_found(message),
                CoreError::RecordExists => Self::exists(message),
                CoreError::LifeExhausted => {
                    Self::new(StatusCode::CONFLICT, "life-exhausted", message)
                }
                CoreError::InvalidFieldName { .. }
                | CoreError::InvalidMapKey { .. }
                | CoreError::NotAnObject { .. }
                | CoreError::InvalidJson(_)
                | CoreError::ClockTooFarAhead { .. }
                | CoreError::MalformedChange { .. } => Self::bad_request(message),
            },
            shoal::Error::Serde { .. } => Self::bad_request(message),
            shoal::Error::Store(StoreError::BlobTooLarge { .. }) => Self::too_large(message),
            shoal::Error::Store(StoreError::BadBlobRef(_)) => Self::bad_request(message),
            shoal::Error::Store(StoreError::SchemaViolation { .. }) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "schema-violation",
                message,
            ),
            shoal::Error::Store(StoreError::BadSchema { .. }) => {
                Self::invalid("invalid-schema", message)
            }
            shoal::Error::Store(StoreError::NewerDataVersion { .. }) => {
                Self::new(StatusCode::CONFLICT, "newer-data-version", message)
            }
            shoal::Error::Store(StoreError::ReadOnlyDevice { .. }) => {
                Self::new(StatusCode::FORBIDDEN, "read-only-device", message)
            }
            shoal::Error::Store(StoreError::ReservedCollection { .. }) => {
                Self::new(StatusCode::FORBIDDEN, "reserved-collection", message)
            }
            shoal::Error::Store(StoreError::Devices(_)) => Self::bad_request(message),
            shoal::Error::BlobUnavailable(shoal::DemandError::StillFetching { .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "blob-fetching", message)
            }
            shoal::Error::BlobUnavailable(shoal::DemandError::Unavailable { .. }) => {
                Self::new(StatusCode::BAD_GATEWAY, "blob-unavailable", message)
            }
            shoal::Error::BlobUnavailable(
                shoal::DemandError::Replica(_) | shoal::DemandError::Stopped,
            )
            | shoal::Error::Store(_)
            | shoal::Error::Net(_) => Self::internal(message),
        }
    }

    /// `409 already-exists`: a create of a live record.
    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "already-exists", message)
    }

    /// `413 payload-too-large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", message)
    }

    /// A failed node command (dial, sync, forget).
    pub fn net(error: NetError) -> Self {
        let message = error.to_string();
        match error {
            NetError::Dial { .. } => Self::invalid("invalid-address", message),
            NetError::Setup(_)
            | NetError::Listen { .. }
            | NetError::NoListenAddress(_)
            | NetError::Stopped => Self::internal(message),
        }
    }

    /// A failed federation request, with the same codes as a failed pull or
    /// push (`peer-unreachable`, `timed-out`, `not-shared-with-you`, ...,
    /// `failed` for a refusal or an answer out of protocol), except that this
    /// node's own store failing is `500 internal`.
    pub fn federation(error: &FedError) -> Self {
        let status = match error {
            FedError::Local(_) => return Self::internal(error.to_string()),
            FedError::Unreachable | FedError::BadAnswer(_) => StatusCode::BAD_GATEWAY,
            FedError::TimedOut => StatusCode::GATEWAY_TIMEOUT,
            FedError::Refused(Refusal::NotShared) | FedError::NotSharedHere(_) => {
                StatusCode::FORBIDDEN
            }
            FedError::Refused(_) | FedError::PeerTooOld(_) => StatusCode::BAD_GATEWAY,
        };
        Self::new(status, fed_code(error), error.to_string())
    }
}

/// The machine code of a failed federation request.
pub fn fed_code(error: &FedError) -> &'static str {
    Transfer::Failed(error.clone()).code()
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Unknown routes.
pub async fn not_found() -> Failure {
    Failure::not_found("no such route; GET /api/openapi.json lists them")
}

/// A known route given a method it does not take.
pub async fn method_not_allowed() -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take that method",
    )
}

/// The code our API gives an error status.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::CONFLICT => "already-exists",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::BAD_GATEWAY => "peer-unreachable",
        StatusCode::GATEWAY_TIMEOUT => "timed-out",
        s if s.is_client_error() => "bad-request",
        _ => "internal",
    }
}

/// Rewrites any error response that is not already JSON — axum's plain-text
/// rejections of a malformed path, query or body, a body over the cap —
/// into our shape (`422` becomes `400 bad-request`), keeping its text as
/// the message.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == HeaderValue::from_static("application/json"));
    if is_json {
        return response;
    }
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let text = match axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        text
    };
    Failure::new(status, code_for(status), message).into_response()
}
