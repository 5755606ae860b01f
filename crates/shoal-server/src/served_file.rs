//! One file of the browser build answered over HTTP: an entity tag of its
//! bytes (`304 Not Modified` when the request's `If-None-Match` names it),
//! and the bytes gzipped when the request accepts gzip — the 3.4 MB
//! `.wasm` crosses as 1.2 MB, which matters to a tab that reaches the
//! daemon over the internet. A gzipped copy is made once per content and
//! kept ([`GzipCache`]), so a build is compressed once, not per page load.
//!
//! It owns the representation (identity or gzip, each with its own tag and
//! `Vary: Accept-Encoding`) and the conditional answer; which files are
//! served, from where, is `web_pkg.rs`'s.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Gzipped copies kept at most: the build's files, twice (a rebuild's new
/// copies while the old ones are still asked for), before all are dropped.
const MAX_KEPT: usize = 12;

/// Gzipped copies of files, by the tag of their bytes.
#[derive(Debug, Default)]
pub struct GzipCache {
    by_tag: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl GzipCache {
    /// The gzipped copy of `body`, whose tag is `tag`: kept, or made now
    /// (on a blocking thread: compressing the `.wasm` takes a while).
    async fn gzipped(&self, tag: &str, body: Arc<Vec<u8>>) -> std::io::Result<Arc<Vec<u8>>> {
        if let Some(kept) = self.kept().get(tag) {
            return Ok(kept.clone());
        }
        let gzipped = tokio::task::spawn_blocking(move || {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(&body)?;
            encoder.finish()
        })
        .await
        .map_err(std::io::Error::other)??;
        let gzipped = Arc::new(gzipped);
        let mut kept = self.kept();
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(tag.to_string(), gzipped.clone());
        Ok(gzipped)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        // A panic while holding the map leaves nothing half-written in it.
        self.by_tag.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The answer to `request` for a file of `content_type` holding `body`:
/// `304` when the browser's copy is current, else the bytes, gzipped if the
/// request accepts gzip. Always revalidated (`no-cache`: a rebuild happens
/// in place).
pub async fn answer(
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    gzip: &GzipCache,
) -> Response {
    let digest = blake3::hash(&body).to_hex();
    let identity_tag = format!("\"{}\"", &digest[..32]);
    let body = Arc::new(body);
    let (tag, encoded) = match accepts_gzip(request) {
        true => match gzip.gzipped(&identity_tag, body.clone()).await {
            Ok(gzipped) => (format!("\"{}-gzip\"", &digest[..32]), Some(gzipped)),
            // Not worth failing the request over: the bytes as they are.
            Err(e) => {
                tracing::warn!("could not gzip a file of the browser build: {e}");
                (identity_tag, None)
            }
        },
        false => (identity_tag, None),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("accept-encoding"),
    );
    if encoded.is_some() {
        headers.insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    if let Ok(value) = header::HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    if none_match(request, &tag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let bytes = encoded.unwrap_or(body);
    (headers, Arc::unwrap_or_clone(bytes)).into_response()
}

/// Whether the request's `If-None-Match` names `tag` (or is `*`): then the
/// browser's copy is current. A list of tags is compared one by one, weak
/// ones (`W/"…"`) by their opaque part, as RFC 9110 asks of `If-None-Match`.
fn none_match(request: &HeaderMap, tag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|given| given == "*" || given.trim_start_matches("W/") == tag)
}

/// Whether `Accept-Encoding` lists gzip (or x-gzip) with a weight above 0.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let weight = parts
                .filter_map(|param| param.strip_prefix("q="))
                .map(|q| q.parse::<f32>().unwrap_or(0.0))
                .next()
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip"))
                && weight > 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, header::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn gzip_is_accepted_when_listed_with_a_weight_above_zero() {
        for accepted in ["gzip", "gzip, deflate, br", "br;q=1, GZIP;q=0.5", "x-gzip"] {
            assert!(
                accepts_gzip(&headers(&[("accept-encoding", accepted)])),
                "{accepted}"
            );
        }
        for refused in [
            "",
            "br",
            "identity",
            "gzip;q=0",
            "gzip;q=0.0, br",
            "gzip;q=nonsense",
            "gzipx",
        ] {
            assert!(
                !accepts_gzip(&headers(&[("accept-encoding", refused)])),
                "{refused}"
            );
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_names_the_tag_alone_in_a_list_weakly_or_by_star() {
        let tag = "\"abc\"";
        for given in ["\"abc\"", "\"x\", \"abc\"", "W/\"abc\"", "*"] {
            assert!(
                none_match(&headers(&[("if-none-match", given)]), tag),
                "{given}"
            );
        }
        for given in ["\"abcd\"", "abc", "\"x\""] {
            assert!(
                !none_match(&headers(&[("if-none-match", given)]), tag),
                "{given}"
            );
        }
        assert!(!none_match(&HeaderMap::new(), tag));
    }
}
