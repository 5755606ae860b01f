//! The example apps under `/apps/` over a real socket: the notes page and
//! its modules with their headers, `/apps/daemon.json`, and the browser
//! build at `/apps/pkg/` — served from the configured directory when it is
//! there, a clear `503` saying how to get it when it is not (not
//! configured, or files missing), nothing else from that directory, and no
//! `/api` route opened by any of it. (The page itself runs in headless
//! Chromium in tests/browser/notes.test.js.)

use shoal::{GroupKey, GroupSalt, NodeConfig, Store};
use shoal_server::Options;
use std::path::PathBuf;
use std::sync::Arc;

/// A served router: its base URL, and what stops it.
struct Served {
    base: String,
    node: Arc<shoal::Node>,
    stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve(web_pkg: Option<PathBuf>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("app.db")).unwrap();
    let key = GroupKey::from_random([7; 32]);
    let node = Arc::new(
        store
            .start_node(NodeConfig::loopback(key.clone()))
            .await
            .unwrap(),
    );
    let options = Options {
        web_pkg,
        ..Options::new("t0ken", key, GroupSalt::from_random([3; 16]))
    };
    let app = shoal_server::router(node.clone(), store, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Served {
        base,
        node,
        stop,
        _dir: dir,
    }
}

impl Served {
    /// `GET path`: the status, the content type, the body and the
    /// Content-Security-Policy, if any.
    async fn get(&self, path: &str) -> (u16, String, Vec<u8>, Option<String>) {
        let answer = self.get_with(path, &[]).await;
        let content_type = answer
            .header("content-type")
            .unwrap_or_default()
            .to_string();
        let csp = answer.header("content-security-policy").map(str::to_string);
        (answer.status, content_type, answer.body, csp)
    }

    /// `GET path` with the request headers `sent`, following no redirect:
    /// the status, the response's headers (names lowercase) and the body as
    /// it came.
    async fn get_with(&self, path: &str, sent: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.base);
        let sent: Vec<(String, String)> = sent
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(None)
                .build()
                .into();
            let mut request = agent.get(&url);
            for (name, value) in &sent {
                request = request.header(name, value);
            }
            let mut response = request.call().unwrap();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        value.to_str().unwrap().to_string(),
                    )
                })
                .collect();
            let body = response.body_mut().read_to_vec().unwrap();
            Answer {
                status: response.status().as_u16(),
                headers,
                body,
            }
        })
        .await
        .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.node.shutdown().await;
    }
}

/// A response as [`Served::get_with`] read it.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_notes_app_and_the_browser_build_are_served_from_the_configured_directory() {
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("shoal_web.js"), "export default 1;").unwrap();
    std::fs::write(pkg.path().join("shoal_web_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(pkg.path().join("shoal_web.d.ts"), "export {};").unwrap();
    for worker_file in ["shoal_worker.js", "shoal_client.js", "shoal_client.d.ts"] {
        std::fs::write(pkg.path().join(worker_file), format!("// {worker_file}")).unwrap();
    }
    std::fs::write(pkg.path().join("secret.txt"), "not for the web").unwrap();
    let served = serve(Some(pkg.path().to_path_buf())).await;

    let (status, content_type, body, csp) = served.get("/apps/notes/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(String::from_utf8(body).unwrap().contains("./app.js"));
    let csp = csp.expect("the page has a CSP");
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("ws:"),
        "{csp}"
    );
    for module in ["app.js", "notes.js", "network.js"] {
        let (status, content_type, _, _) = served.get(&format!("/apps/notes/{module}")).await;
        assert_eq!(status, 200, "{module}");
        assert!(
            content_type.starts_with("text/javascript"),
            "{content_type}"
        );
    }
    assert_eq!(
        served.get("/apps/notes").await.0,
        308,
        "redirects to the page"
    );
    assert_eq!(served.get("/apps/notes/nope.js").await.0, 404);
    assert_eq!(served.get("/apps/").await.0, 200);

    let (status, content_type, body, _) = served.get("/apps/pkg/shoal_web_bg.wasm").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/wasm");
    assert_eq!(
        body, b"\0asm\x01\0\0\0",
        "the file's bytes, read from the directory"
    );
    let (status, _, body, _) = served.get("/apps/pkg/shoal_web.js").await;
    assert_eq!((status, body.as_slice()), (200, &b"export default 1;"[..]));
    // The worker route's scripts, as JavaScript (a module worker refuses
    // any other type).
    for script in ["shoal_worker.js", "shoal_client.js"] {
        let (status, content_type, body, _) = served.get(&format!("/apps/pkg/{script}")).await;
        assert_eq!(status, 200, "{script}");
        assert!(
            content_type.starts_with("text/javascript"),
            "{content_type}"
        );
        assert_eq!(body, format!("// {script}").into_bytes());
    }
    // Only the package's own files: not the directory's other files, not
    // anything outside it.
    for path in [
        "/apps/pkg/secret.txt",
        "/apps/pkg/..%2Fsecret.txt",
        "/apps/pkg/",
    ] {
        let (status, _, body, _) = served.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("not for the web"));
    }

    let (status, _, body, _) = served.get("/apps/daemon.json").await;
    assert_eq!(status, 200);
    let daemon = json(&body);
    assert_eq!(daemon["peer_id"], served.node.peer_id().to_string());
    assert_eq!(daemon["pkg"]["ready"], true, "{daemon}");
    assert!(daemon["websocket"].is_array(), "{daemon}");
    assert!(
        !daemon.to_string().contains("invite"),
        "no invite code (it carries the secret): {daemon}"
    );

    // The apps open no API route without the token.
    assert_eq!(served.get("/api/node").await.0, 401);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_browser_build_is_a_clear_503_and_daemon_json_says_why() {
    let served = serve(None).await;
    let (status, _, body, _) = served.get("/apps/pkg/shoal_web.js").await;
    assert_eq!(status, 503);
    let error = json(&body);
    assert_eq!(error["code"], "unavailable");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("--web-pkg") && message.contains("scripts/wasm-build.sh"),
        "{message}"
    );
    let daemon = json(&served.get("/apps/daemon.json").await.2);
    assert_eq!(daemon["pkg"]["ready"], false);
    assert!(
        daemon["pkg"]["problem"]
            .as_str()
            .unwrap()
            .contains("--web-pkg")
    );
    // The page itself is served, and says so when it runs.
    assert_eq!(served.get("/apps/notes/").await.0, 200);
    served.stop().await;

    // Configured, but the directory lacks the .wasm: named in the answer.
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("shoal_web.js"), "x").unwrap();
    std::fs::write(pkg.path().join("shoal_web.d.ts"), "x").unwrap();
    let served = serve(Some(pkg.path().to_path_buf())).await;
    let daemon = json(&served.get("/apps/daemon.json").await.2);
    let problem = daemon["pkg"]["problem"].as_str().unwrap();
    assert!(problem.contains("shoal_web_bg.wasm"), "{problem}");
    let (status, _, body, _) = served.get("/apps/pkg/shoal_web_bg.wasm").await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("shoal_web_bg.wasm"));
    assert_eq!(served.get("/apps/pkg/shoal_web.js").await.0, 200);
    served.stop().await;
}

/// A package directory with every file, the `.wasm` holding `wasm`.
fn package(wasm: &[u8]) -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    for name in [
        "shoal_web.js",
        "shoal_web.d.ts",
        "shoal_worker.js",
        "shoal_client.js",
        "shoal_client.d.ts",
    ] {
        std::fs::write(pkg.path().join(name), format!("// {name}")).unwrap();
    }
    std::fs::write(pkg.path().join("shoal_web_bg.wasm"), wasm).unwrap();
    pkg
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_holding_the_same_build_is_answered_not_modified_and_a_rebuild_changes_the_tag() {
    let first = b"\0asm\x01\0\0\0 first build";
    let pkg = package(first);
    let served = serve(Some(pkg.path().to_path_buf())).await;
    let path = "/apps/pkg/shoal_web_bg.wasm";

    let fetched = served.get_with(path, &[]).await;
    assert_eq!((fetched.status, fetched.body.as_slice()), (200, &first[..]));
    assert_eq!(
        fetched.header("content-encoding"),
        None,
        "not asked for gzip"
    );
    let tag = fetched.header("etag").expect("an ETag").to_string();
    assert!(
        tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"'),
        "{tag}"
    );
    let other_file = served.get_with("/apps/pkg/shoal_web.js", &[]).await;
    let other_tag = other_file.header("etag").expect("an ETag on every file");
    assert_ne!(other_tag, tag, "another file, another tag");
    // The browser's copy is current: no body, the same tag. Also when it
    // sends the tag among others, or as a weak one.
    for given in [
        tag.clone(),
        format!("\"other\", {tag}"),
        format!("W/{tag}"),
        "*".to_string(),
    ] {
        let again = served.get_with(path, &[("if-none-match", &given)]).await;
        assert_eq!(again.status, 304, "If-None-Match: {given}");
        assert_eq!(again.header("etag"), Some(tag.as_str()));
        assert_eq!(again.header("vary"), Some("accept-encoding"));
        assert_eq!(again.header("cache-control"), Some("no-cache"));
        assert!(again.body.is_empty());
    }
    let stale = served
        .get_with(path, &[("if-none-match", "\"stale\"")])
        .await;
    assert_eq!(
        (stale.status, stale.body.as_slice()),
        (200, &first[..]),
        "another tag gets the file"
    );

    // Rebuilt in place: the old tag no longer matches, the new bytes come.
    let second = b"\0asm\x01\0\0\0 second build";
    std::fs::write(pkg.path().join("shoal_web_bg.wasm"), second).unwrap();
    let rebuilt = served.get_with(path, &[("if-none-match", &tag)]).await;
    assert_eq!(
        (rebuilt.status, rebuilt.body.as_slice()),
        (200, &second[..])
    );
    let new_tag = rebuilt.header("etag").expect("an ETag after the rebuild");
    assert_ne!(new_tag, tag, "the rebuild changed the tag");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_accepts_gzip_gets_the_build_gzipped_under_a_tag_of_its_own() {
    use std::io::Read;
    // Compressible, as a real build is.
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .chain((0..200_000u32).map(|i| (i % 7) as u8))
        .collect();
    let pkg = package(&wasm);
    let served = serve(Some(pkg.path().to_path_buf())).await;
    let path = "/apps/pkg/shoal_web_bg.wasm";
    let plain = served.get_with(path, &[]).await;
    let plain_tag = plain.header("etag").unwrap().to_string();
    assert_eq!(plain.header("vary"), Some("accept-encoding"));

    let gzipped = served
        .get_with(path, &[("accept-encoding", "gzip, deflate, br")])
        .await;
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("content-type"), Some("application/wasm"));
    assert_eq!(gzipped.header("vary"), Some("accept-encoding"));
    assert!(
        gzipped.body.len() < wasm.len() / 10,
        "{} bytes",
        gzipped.body.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, wasm, "the gzipped bytes are the file's");
    let gzip_tag = gzipped.header("etag").unwrap().to_string();
    assert_ne!(gzip_tag, plain_tag, "each representation has its own tag");

    // Revalidation matches the representation asked for.
    let current = served
        .get_with(
            path,
            &[("accept-encoding", "gzip"), ("if-none-match", &gzip_tag)],
        )
        .await;
    assert_eq!((current.status, current.body.len()), (304, 0));
    assert_eq!(current.header("etag"), Some(gzip_tag.as_str()));
    assert_eq!(current.header("vary"), Some("accept-encoding"));
    let other = served
        .get_with(
            path,
            &[("accept-encoding", "gzip"), ("if-none-match", &plain_tag)],
        )
        .await;
    assert_eq!(
        other.status, 200,
        "the identity tag does not validate the gzipped copy"
    );
    assert_eq!(other.header("content-encoding"), Some("gzip"));
    assert_eq!(other.header("etag"), Some(gzip_tag.as_str()));
    // Gzip refused by weight: the bytes as they are.
    let refused = served
        .get_with(path, &[("accept-encoding", "gzip;q=0")])
        .await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.header("content-encoding"), None);
    assert_eq!(refused.header("etag"), Some(plain_tag.as_str()));
    assert_eq!(refused.body, wasm);

    // A rebuild is gzipped afresh, not answered from the kept copy.
    let rebuilt: Vec<u8> = wasm.iter().rev().copied().collect();
    std::fs::write(pkg.path().join("shoal_web_bg.wasm"), &rebuilt).unwrap();
    let fresh = served.get_with(path, &[("accept-encoding", "gzip")]).await;
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(fresh.body.as_slice())
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, rebuilt);
    served.stop().await;
}
