//! The browser build of Shoal (`crates/shoal-web` built by
//! `scripts/wasm-build.sh`: `shoal_web.js`, `shoal_web_bg.wasm`,
//! `shoal_web.d.ts`, and the worker route's `shoal_worker.js`,
//! `shoal_client.js`, `shoal_client.d.ts`) served at `/apps/pkg/` from a
//! directory on disk —
//! `shoal serve --web-pkg DIR` — for the pages under `/apps/`.
//!
//! The build is not committed nor embedded (the daemon builds without the
//! wasm toolchain), so this module owns finding it, saying clearly what is
//! missing (in the log at start, in `/apps/daemon.json` and in the body of
//! a `503`), and serving exactly those six files, read afresh on each
//! request so a rebuild needs no restart (each with an `ETag` of its
//! bytes, and gzipped for a browser that accepts it: `served_file.rs`). It
//! must not serve anything else from that directory.

use crate::http::error::Failure;
use crate::served_file::{self, GzipCache};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use std::sync::Arc;

/// The files of the package: name and content type.
const FILES: [(&str, &str); 6] = [
    ("shoal_web.js", "text/javascript; charset=utf-8"),
    ("shoal_web_bg.wasm", "application/wasm"),
    ("shoal_web.d.ts", "text/plain; charset=utf-8"),
    // The worker route: a page's store in a dedicated Worker (OPFS).
    ("shoal_worker.js", "text/javascript; charset=utf-8"),
    ("shoal_client.js", "text/javascript; charset=utf-8"),
    ("shoal_client.d.ts", "text/plain; charset=utf-8"),
];

/// How to get the package, for the messages.
const HOW: &str = "build it with scripts/wasm-build.sh (it writes target/wasm/pkg) and start \
    the daemon with `shoal serve --web-pkg DIR` (config key `web-pkg`)";

/// Where the package is, if configured.
#[derive(Debug)]
pub struct WebPkg {
    dir: Option<PathBuf>,
    /// The files' gzipped copies, made once per content.
    gzip: GzipCache,
}

impl WebPkg {
    /// The package in `dir` (`None`: not configured).
    pub fn new(dir: Option<PathBuf>) -> Self {
        WebPkg {
            dir,
            gzip: GzipCache::default(),
        }
    }

    /// What is wrong with the package, and how to fix it; `None` when all
    /// of its files are there.
    pub fn problem(&self) -> Option<String> {
        let Some(dir) = &self.dir else {
            return Some(format!(
                "this daemon serves no browser build of Shoal: {HOW}"
            ));
        };
        let missing: Vec<&str> = FILES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !dir.join(name).is_file())
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "the browser build of Shoal is incomplete: {} not in {}; {HOW}",
                missing.join(", "),
                dir.display()
            )
        })
    }

    /// Logs where the package comes from, or what is wrong with it.
    pub fn log_status(&self) {
        match (&self.dir, self.problem()) {
            (Some(dir), None) => {
                tracing::info!(
                    "serving the browser build at /apps/pkg/ from {}",
                    dir.display()
                )
            }
            (None, Some(problem)) => tracing::info!("/apps/: {problem}"),
            (Some(_), Some(problem)) => tracing::warn!("/apps/: {problem}"),
            (None, None) => {}
        }
    }
}

/// `GET /apps/pkg/{name}`: one of the package's files, `404` for any other
/// name, `503` with what to do when the package is not there.
/// A file's `ETag` is the digest of its bytes, so a browser that holds the
/// same build revalidates with `If-None-Match` and gets a `304` instead of
/// the 3.4 MB `.wasm` again, and a rebuild changes it at once; a browser
/// that accepts gzip gets the bytes gzipped (`served_file.rs`).
pub async fn serve(
    State(pkg): State<Arc<WebPkg>>,
    Path(name): Path<String>,
    request: HeaderMap,
) -> Response {
    let Some((file, content_type)) = FILES.iter().find(|(file, _)| *file == name) else {
        return Failure::not_found(format!("no file `{name}` in the browser build"))
            .into_response();
    };
    let unavailable = |message: String| {
        let body = serde_json::json!({ "code": "unavailable", "message": message });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    let Some(dir) = &pkg.dir else {
        return unavailable(pkg.problem().unwrap_or_default());
    };
    match tokio::fs::read(dir.join(file)).await {
        Ok(body) => served_file::answer(&request, content_type, body, &pkg.gzip).await,
        Err(e) => unavailable(format!(
            "cannot read {}: {e}; {HOW}",
            dir.join(file).display()
        )),
    }
}
