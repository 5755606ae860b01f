//! The web dashboard: static files embedded in the binary, served at `/`
//! and `/assets/...` without the token (they hold no data; every call they
//! make to `/api` carries it).
//!
//! This module owns only the serving of those files — which files exist,
//! their content types and the headers that keep the page to itself (a
//! strict Content-Security-Policy, `nosniff`, no framing, no referrer). What
//! the dashboard shows and does is the JavaScript's in `dashboard/` (plain ES
//! modules, no build step), over the documented HTTP API.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page at `/`.
const INDEX: &str = include_str!("../dashboard/index.html");

/// Every file under `/assets/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("style.css", CSS, include_bytes!("../dashboard/style.css")),
    ("app.js", JS, include_bytes!("../dashboard/app.js")),
    ("api.js", JS, include_bytes!("../dashboard/api.js")),
    ("feed.js", JS, include_bytes!("../dashboard/feed.js")),
    ("dom.js", JS, include_bytes!("../dashboard/dom.js")),
    ("toast.js", JS, include_bytes!("../dashboard/toast.js")),
    ("node.js", JS, include_bytes!("../dashboard/node.js")),
    ("devices.js", JS, include_bytes!("../dashboard/devices.js")),
    (
        "instances.js",
        JS,
        include_bytes!("../dashboard/instances.js"),
    ),
    (
        "collections.js",
        JS,
        include_bytes!("../dashboard/collections.js"),
    ),
    ("drawer.js", JS, include_bytes!("../dashboard/drawer.js")),
    (
        "conflicts.js",
        JS,
        include_bytes!("../dashboard/conflicts.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../dashboard/favicon.svg"),
    ),
];

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Scripts, styles, images and API calls from this origin only; nothing inline.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The dashboard's routes, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
}

async fn index() -> Response {
    let mut response = file("text/html; charset=utf-8", INDEX.as_bytes());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match lookup(&name) {
        Some((content_type, body)) => file(content_type, body),
        None => {
            let body = serde_json::json!({
                "code": "not-found",
                "message": format!("no dashboard file `{name}`"),
            });
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }
}

/// The content type and bytes of the asset `name`.
fn lookup(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, content_type, body)| (*content_type, *body))
}

fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small files, embedded: always revalidate, so a new binary's
            // dashboard is never mixed with an old cached module.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/assets/NAME` the page names, and every `./NAME.js` a module
    /// imports, is embedded.
    #[test]
    fn every_referenced_file_is_embedded() {
        let mut referenced: Vec<String> = INDEX
            .split("/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect();
        for (name, content_type, body) in ASSETS {
            if *content_type != JS {
                continue;
            }
            let text = std::str::from_utf8(body).unwrap();
            for rest in text.split("from './").skip(1) {
                referenced.push(rest.split('\'').next().unwrap().to_string());
            }
            assert!(!body.is_empty(), "{name} is empty");
        }
        assert!(referenced.iter().any(|r| r == "app.js"), "{referenced:?}");
        for name in &referenced {
            assert!(
                lookup(name).is_some(),
                "`{name}` is referenced, not embedded"
            );
        }
        assert!(lookup("../token").is_none());
        assert!(lookup("").is_none());
    }
}
