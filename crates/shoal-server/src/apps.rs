//! The example apps the daemon serves under `/apps/` without the token: the
//! notes app's static files (embedded in the binary, like the dashboard's),
//! the browser build of Shoal they load (`/apps/pkg/`, `web_pkg.rs`), and
//! `/apps/daemon.json`, what a page needs to connect to this daemon as a
//! peer (its peer id and WebSocket addresses; nothing secret).
//!
//! This module owns which files exist, their content types and the headers
//! that keep the pages to themselves (a strict Content-Security-Policy that
//! allows WebAssembly and WebSocket connections, `nosniff`, no framing, no
//! referrer). What the notes page does is its JavaScript's, in `apps/notes/`
//! (plain ES modules, no build step), over shoal-web's API; it must not
//! reach `/api` (the page holds no token) nor serve the group secret.

use crate::http::error::Failure;
use crate::web_pkg::WebPkg;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shoal::Node;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The page at `/apps/`: the list of apps.
const APPS_INDEX: &str = include_str!("../apps/index.html");

/// The notes app's files under `/apps/notes/`: name (`""` is the page),
/// content type, bytes.
const NOTES: &[(&str, &str, &[u8])] = &[
    ("", HTML, include_bytes!("../apps/notes/index.html")),
    ("style.css", CSS, include_bytes!("../apps/notes/style.css")),
    ("app.js", JS, include_bytes!("../apps/notes/app.js")),
    ("notes.js", JS, include_bytes!("../apps/notes/notes.js")),
    ("network.js", JS, include_bytes!("../apps/notes/network.js")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Scripts, styles and fetches from this origin; WebAssembly compiled from
/// them (`wasm-unsafe-eval`); WebSocket connections to peers anywhere (the
/// user says which); nothing inline.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    worker-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// What the apps' routes share.
#[derive(Clone)]
struct Apps {
    node: Arc<Node>,
    pkg: Arc<WebPkg>,
}

/// `GET /apps/daemon.json`: how a page served here reaches this daemon.
#[derive(Debug, Serialize)]
struct DaemonInfo {
    /// The daemon's peer id.
    peer_id: String,
    /// Its WebSocket listen addresses (`…/ws/p2p/<peer id>`); empty when it
    /// listens on none (`shoal serve --listen …/tcp/PORT/ws`).
    websocket: Vec<String>,
    /// Whether `/apps/pkg/` serves the browser build, and if not, why.
    pkg: PkgStatus,
}

/// Whether the browser build is served.
#[derive(Debug, Serialize)]
struct PkgStatus {
    /// `true` when every file of it is there.
    ready: bool,
    /// What is wrong and how to fix it, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// The `/apps/` routes over `node`, serving the browser build from `web_pkg`
/// (`None`: not configured; the pages say how to).
pub fn router<S: Clone + Send + Sync + 'static>(
    node: Arc<Node>,
    web_pkg: Option<PathBuf>,
) -> Router<S> {
    let pkg = WebPkg::new(web_pkg);
    pkg.log_status();
    Router::new()
        .route("/apps", get(|| async { Redirect::permanent("/apps/") }))
        .route("/apps/", get(apps_index))
        .route("/apps/daemon.json", get(daemon))
        .route("/apps/pkg/{name}", get(crate::web_pkg::serve))
        .route(
            "/apps/notes",
            get(|| async { Redirect::permanent("/apps/notes/") }),
        )
        .route("/apps/notes/", get(|| notes_file(Path(String::new()))))
        .route("/apps/notes/{name}", get(notes_file))
        .with_state(Apps {
            node,
            pkg: Arc::new(pkg),
        })
}

impl axum::extract::FromRef<Apps> for Arc<WebPkg> {
    fn from_ref(apps: &Apps) -> Arc<WebPkg> {
        apps.pkg.clone()
    }
}

async fn apps_index() -> Response {
    page(HTML, APPS_INDEX.as_bytes())
}

async fn notes_file(Path(name): Path<String>) -> Response {
    match NOTES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => page(content_type, body),
        None => Failure::not_found(format!("no file `{name}` in the notes app")).into_response(),
    }
}

async fn daemon(State(apps): State<Apps>) -> Json<DaemonInfo> {
    let listen = apps
        .node
        .listen_addrs(Duration::from_secs(1))
        .await
        .unwrap_or_default();
    let problem = apps.pkg.problem();
    Json(DaemonInfo {
        peer_id: apps.node.peer_id().to_string(),
        websocket: websocket_addresses(listen.iter().map(|a| a.to_string())),
        pkg: PkgStatus {
            ready: problem.is_none(),
            problem,
        },
    })
}

/// The WebSocket ones among listen addresses, loopback first (a page served
/// on loopback reaches those without leaving the machine).
fn websocket_addresses(listen: impl Iterator<Item = String>) -> Vec<String> {
    let mut ws: Vec<String> = listen
        .filter(|a| a.split('/').any(|p| p == "ws" || p == "wss"))
        .collect();
    ws.sort_by_key(|a| !(a.starts_with("/ip4/127.") || a.starts_with("/ip6/::1/")));
    ws
}

/// One of the embedded files, with the page headers.
fn page(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            // Embedded: always revalidate, so a new binary's app is never
            // mixed with an old cached module.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response();
    if content_type == HTML {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `./NAME` the notes page or a module of it names is embedded.
    #[test]
    fn every_referenced_notes_file_is_embedded() {
        let mut referenced = Vec::new();
        for (name, content_type, body) in NOTES {
            let text = std::str::from_utf8(body).unwrap();
            assert!(!text.is_empty(), "{name} is empty");
            let quote = if *content_type == HTML { '"' } else { '\'' };
            for rest in text.split(&format!("{quote}./")).skip(1) {
                referenced.push(rest.split(quote).next().unwrap().to_string());
            }
        }
        for needed in ["app.js", "style.css", "notes.js", "network.js"] {
            assert!(referenced.iter().any(|r| r == needed), "{referenced:?}");
        }
        for name in &referenced {
            assert!(
                NOTES.iter().any(|(file, _, _)| file == name),
                "`{name}` is referenced, not embedded"
            );
        }
    }

    #[test]
    fn websocket_addresses_are_picked_loopback_first() {
        let listen = [
            "/ip4/10.0.0.2/tcp/4041/ws/p2p/12D3",
            "/ip4/127.0.0.1/tcp/4040/p2p/12D3",
            "/ip4/127.0.0.1/tcp/4041/ws/p2p/12D3",
            "/ip4/127.0.0.1/udp/4040/quic-v1/p2p/12D3",
        ];
        assert_eq!(
            websocket_addresses(listen.iter().map(|a| a.to_string())),
            [
                "/ip4/127.0.0.1/tcp/4041/ws/p2p/12D3",
                "/ip4/10.0.0.2/tcp/4041/ws/p2p/12D3"
            ]
        );
    }
}
