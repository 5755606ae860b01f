//! One file of the browser build answered over HTTP: an entity tag of its
//! bytes (`304 Not Modified` when the request's `If-None-Match` names it),
//! and the bytes gzipped when the request accepts gzip — the 3.4 MB
//! `.wasm` crosses as 1.2 MB, which matters to a tab that reaches the
//! daemon over the internet. A gzipped copy is made once per content and
//! kept ([`GzipCache`]), so a build is compressed once, not per page load
//! nor per request arriving while it is being compressed; a `304` needs no
//! compression at all.
//!
//! It owns the representation (identity or gzip, each with its own tag and
//! `Vary: Accept-Encoding`) and the conditional answer; which files are
//! served, from where, is `web_pkg.rs`'s.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Gzipped copies kept at most: the build's files, twice (a rebuild's new
/// copies while the old ones are still asked for), before all are dropped.
const MAX_KEPT: usize = 12;

/// One content's gzipped copy, made by the first request that needs it;
/// the requests arriving meanwhile wait for that one compression.
type Copy = Arc<OnceCell<Bytes>>;

/// Gzipped copies of files, by the tag of their bytes.
#[derive(Debug, Default)]
pub struct GzipCache {
    by_tag: Mutex<HashMap<String, Copy>>,
}

impl GzipCache {
    /// The gzipped copy of `body`, whose tag is `tag`: kept, or made now —
    /// once however many requests ask at the same time, on a blocking
    /// thread (compressing the `.wasm` takes a while).
    async fn gzipped(&self, tag: &str, body: Bytes) -> std::io::Result<Bytes> {
        let copy = {
            let mut kept = self.by_tag.lock().unwrap_or_else(|e| e.into_inner());
            if !kept.contains_key(tag) && kept.len() >= MAX_KEPT {
                kept.clear();
            }
            kept.entry(tag.to_string()).or_default().clone()
        };
        copy.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
                encoder.write_all(&body)?;
                encoder.finish().map(Bytes::from)
            })
            .await
            .map_err(std::io::Error::other)?
        })
        .await
        .cloned()
    }
}

/// The answer to `request` for a file of `content_type` holding `body`:
/// `304` when the browser's copy is current (nothing compressed for it),
/// else the bytes, gzipped if the request accepts gzip. Always
/// revalidated (`no-cache`: a rebuild happens in place).
pub async fn answer(
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    gzip: &GzipCache,
) -> Response {
    let digest = blake3::hash(&body).to_hex();
    let identity_tag = format!("\"{}\"", &digest[..32]);
    let gzipped = accepts_gzip(request);
    let tag = match gzipped {
        true => format!("\"{}-gzip\"", &digest[..32]),
        false => identity_tag.clone(),
    };
    // What a 304 carries too (RFC 9110 15.4.5): the validator, Vary and
    // Cache-Control, and nothing about the representation's bytes.
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    if none_match(request, &tag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let body = Bytes::from(body);
    if gzipped {
        match gzip.gzipped(&identity_tag, body.clone()).await {
            Ok(encoded) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                return (headers, encoded).into_response();
            }
            // Not worth failing the request over: the bytes as they are,
            // under their own tag.
            Err(e) => {
                tracing::warn!("could not gzip a file of the browser build: {e}");
                if let Ok(value) = HeaderValue::from_str(&identity_tag) {
                    headers.insert(header::ETAG, value);
                }
            }
        }
    }
    (headers, body).into_response()
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
                .filter_map(|param| {
                    let (name, value) = param.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then_some(value.trim())
                })
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
        for accepted in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1, GZIP;q=0.5",
            "x-gzip",
            "gzip; Q=1",
        ] {
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

    #[tokio::test]
    async fn the_cache_compresses_each_content_once_and_stays_bounded() {
        let cache = GzipCache::default();
        let body = Bytes::from(vec![7u8; 100_000]);
        let asked =
            futures::future::join_all((0..8).map(|_| cache.gzipped("\"same\"", body.clone())))
                .await;
        let first = asked[0].as_ref().unwrap().clone();
        assert!(first.len() < 1_000, "{} bytes", first.len());
        for copy in &asked {
            // One compression: every request got the very same buffer.
            assert_eq!(copy.as_ref().unwrap().as_ptr(), first.as_ptr());
        }
        for i in 0..(2 * MAX_KEPT) {
            cache
                .gzipped(&format!("\"{i}\""), Bytes::from(vec![i as u8; 10]))
                .await
                .unwrap();
            let kept = cache.by_tag.lock().unwrap().len();
            assert!(kept <= MAX_KEPT, "{kept} copies kept");
        }
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
