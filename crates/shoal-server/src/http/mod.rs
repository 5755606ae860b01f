//! The daemon's HTTP API (docs/http-api.md is the contract): the router,
//! the bearer-token check every `/api` request (and `/metrics`, unless
//! public) passes, and what the handlers share.
//!
//! This module owns the route table, the token check (the scheme
//! case-insensitive, the token compared in constant time; `401
//! unauthorized` otherwise), the 1 MiB cap on JSON bodies, and the
//! guarantee that every failure — unknown routes, wrong methods and
//! framework rejections included — is our JSON `{"code", "message"}`
//! (`error.rs`). It must not serve the dashboard's static files behind the
//! token, nor any `/api` route without it. The handlers live in one file
//! per area (`monitor.rs`: health, readiness, metrics); the shapes of the
//! bodies are `api.rs`'s.

mod blobs;
mod conflicts;
mod devices;
pub(crate) mod error;
mod extract;
mod federation;
mod feed;
mod maps;
mod monitor;
mod openapi;
mod peers;
mod query_string;
mod records;
mod schemas;
mod sharing;
mod sync_details;

use crate::options::{MetricsAccess, Options};
pub use crate::peer_book::PeerBook;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
pub use error::Failure;
pub use peers::invite_address;
use shoal::{GroupKey, GroupSalt, Node, Store};
use std::sync::Arc;

/// Largest JSON body a route accepts.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// What the handlers share.
pub(crate) struct Control {
    /// The running node.
    pub node: Arc<Node>,
    /// The store it syncs.
    pub store: Store,
    /// Where added peers are remembered; `None`: only dialed.
    pub peer_book: Option<Arc<dyn PeerBook>>,
    /// BLAKE3 of the access token (compared in constant time).
    pub token_hash: blake3::Hash,
    /// The group key (invite codes carry it).
    pub key: GroupKey,
    /// The group's salt (invite codes carry it).
    pub salt: GroupSalt,
    /// Where the owner key's recovery code is kept (`devices.rs`).
    pub owner_key_file: Option<std::path::PathBuf>,
    /// What the dashboard calls this node (default: from its peer id).
    pub name: Option<String>,
    /// Fingerprint of the group key.
    pub group: String,
    /// Whether `/metrics` answers without the token.
    pub metrics_public: bool,
}

impl Control {
    /// The shared state for `node`, syncing `store`.
    fn new(node: Arc<Node>, store: Store, options: Options) -> Self {
        Control {
            node,
            store,
            peer_book: options.peer_book,
            token_hash: blake3::hash(options.token.as_bytes()),
            group: crate::api::fingerprint(&options.key),
            key: options.key,
            salt: options.salt,
            owner_key_file: options.owner_key_file,
            name: options.name,
            metrics_public: options.metrics == MetricsAccess::Public,
        }
    }
}

type Shared = Arc<Control>;

/// The whole HTTP surface over `node` and the `store` it syncs: the
/// dashboard's static files, the example apps under `/apps/`, `/healthz`
/// and `/readyz` without the token, every `/api` route behind it,
/// `/metrics` behind it unless [`MetricsAccess::Public`]. An app mounts it beside its own routes with
/// [`Router::merge`] (it has a fallback, so the app's router must not).
pub fn router(node: Arc<Node>, store: Store, options: Options) -> Router {
    let apps = crate::apps::router(node.clone(), options.web_pkg.clone());
    let shared: Shared = Arc::new(Control::new(node, store, options));
    let api = Router::new()
        .route("/healthz", get(monitor::healthz))
        .route("/readyz", get(monitor::readyz))
        .route("/metrics", get(monitor::metrics))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/node", get(peers::node))
        .route("/api/sync", post(peers::sync))
        .route("/api/peers", get(peers::list).post(peers::add))
        .route("/api/peers/{peer}", axum::routing::delete(peers::forget))
        .route("/api/peers/{peer}/diff", get(federation::diff))
        .route("/api/peers/{peer}/pull", post(federation::pull))
        .route("/api/peers/{peer}/push", post(federation::push))
        .route("/api/collections", get(records::collections))
        .route(
            "/api/collections/{collection}/records",
            get(records::list).post(records::create),
        )
        .route(
            "/api/collections/{collection}/records/{id}",
            get(records::get)
                .put(records::put)
                .patch(records::patch)
                .delete(records::delete),
        )
        .route(
            "/api/collections/{collection}/schema",
            get(schemas::get).put(schemas::set).delete(schemas::remove),
        )
        .route(
            "/api/collections/{collection}/records/{id}/sync",
            get(sync_details::details),
        )
        .route(
            "/api/collections/{collection}/records/{id}/maps/{field}/{key}",
            put(maps::map_set).delete(maps::map_remove),
        )
        .route("/api/changes", get(feed::changes))
        .route("/api/sharing", get(sharing::rules).put(sharing::set_rule))
        .route("/api/conflicts", get(conflicts::list))
        .route("/api/devices", get(devices::list))
        .route("/api/devices/{peer}/approve", post(devices::approve))
        .route("/api/devices/{peer}/revoke", post(devices::revoke))
        .route("/api/sharing/local-only", put(sharing::set_local_only))
        .route(
            "/api/blobs",
            get(blobs::list).post(blobs::upload.layer(DefaultBodyLimit::disable())),
        )
        .route("/api/blobs/{hash}", get(blobs::download))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .layer(middleware::from_fn(error::json_errors))
        .with_state(shared);
    // The dashboard's pages answer a wrong method in our JSON shape too.
    crate::dashboard::router()
        .merge(apps)
        .method_not_allowed_fallback(error::method_not_allowed)
        .merge(api)
}

/// The token check. Only paths outside `/api` pass without it — they reach
/// `/healthz`, `/readyz`, `/metrics` when it is public, and the not-found
/// fallback (the dashboard's routes are merged outside this layer).
async fn authorize(State(control): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let guarded = path == "/api"
        || path.starts_with("/api/")
        || (path == "/metrics" && !control.metrics_public);
    if !guarded {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(|token| blake3::hash(token.as_bytes()));
    // blake3::Hash compares in constant time.
    if given != Some(control.token_hash) {
        return Failure::unauthorized().into_response();
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER` too), spaces around
/// the token do not count.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Runs a blocking store call off the async executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::internal(format!("a store call panicked: {e}")))?
}
