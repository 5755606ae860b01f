//! The daemon's HTTP API (docs/http-api.md is the contract): the router,
//! the bearer-token check every `/api` request passes, and what the
//! handlers share.
//!
//! This module owns the route table, the token check (the scheme
//! case-insensitive, the token compared in constant time; `401
//! unauthorized` otherwise), the 1 MiB cap on JSON bodies, and the
//! guarantee that every failure — unknown routes, wrong methods and
//! framework rejections included — is our JSON `{"code", "message"}`
//! (`error.rs`), and how the server stops ([`serve_until`]). It must not
//! serve the dashboard's static files behind the token, nor any `/api` route
//! without it. The handlers live in one file per area; the shapes of the
//! bodies are `api.rs`'s.

mod blobs;
mod error;
mod extract;
mod federation;
mod feed;
mod maps;
mod openapi;
mod peers;
mod query_string;
mod records;
mod sharing;
mod sync_details;

use crate::datadir::DataDir;
use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
pub use error::Failure;
use shoal::{GroupKey, Node, Store};
use std::sync::Arc;
use std::time::Duration;

/// Largest JSON body a route accepts.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// What the handlers share.
pub struct Control {
    /// The running node.
    pub node: Arc<Node>,
    /// The store it syncs.
    pub store: Store,
    /// The data directory (for `peers.txt`).
    pub data: DataDir,
    /// BLAKE3 of the access token (compared in constant time).
    pub token_hash: blake3::Hash,
    /// The group key (invite codes carry it).
    pub key: GroupKey,
    /// What the dashboard calls this node (default: from its peer id).
    pub name: Option<String>,
    /// Fingerprint of the group key.
    pub group: String,
}

impl Control {
    /// The shared state for `node`, syncing `store`.
    pub fn new(node: Arc<Node>, store: Store, data: DataDir, token: &str, key: GroupKey) -> Self {
        Control {
            node,
            store,
            data,
            token_hash: blake3::hash(token.as_bytes()),
            group: crate::secrets::fingerprint(&key),
            key,
            name: None,
        }
    }

    /// Names the node (`GET /api/node`'s `name`).
    pub fn named(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }
}

type Shared = Arc<Control>;

/// The whole HTTP surface: the dashboard's static files without the token,
/// every `/api` route behind it.
pub fn router(control: Control) -> Router {
    let shared: Shared = Arc::new(control);
    let api = Router::new()
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
            "/api/collections/{collection}/records/{id}/sync",
            get(sync_details::details),
        )
        .route(
            "/api/collections/{collection}/records/{id}/maps/{field}/{key}",
            put(maps::map_set).delete(maps::map_remove),
        )
        .route("/api/changes", get(feed::changes))
        .route("/api/sharing", get(sharing::rules).put(sharing::set_rule))
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
        .method_not_allowed_fallback(error::method_not_allowed)
        .merge(api)
}

/// Serves `router` on `listener` until `stop` completes, then lets open
/// requests finish for up to `drain` and closes what is left: an open change
/// feed never ends by itself, nor may an idle keep-alive client hold the stop
/// up.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: impl Future<Output = ()>,
    drain: Duration,
) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    let served = tokio::select! {
        () = stop => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(drain, &mut server).await {
                Ok(done) => done,
                Err(_) => {
                    server.abort();
                    let _ = (&mut server).await;
                    Ok(Ok(()))
                }
            }
        }
        done = &mut server => done,
    };
    served
        .context("the HTTP API panicked")?
        .context("the HTTP API failed")
}

/// The token check. Only paths outside `/api` pass without it — they reach
/// nothing but the not-found fallback (the dashboard's routes are merged
/// outside this layer).
async fn authorize(State(control): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path != "/api" && !path.starts_with("/api/") {
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
