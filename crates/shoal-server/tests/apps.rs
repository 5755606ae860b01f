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
    async fn get(&self, path: &str) -> (u16, String, Vec<u8>, Option<String>) {
        let url = format!("{}{path}", self.base);
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(None)
                .build()
                .into();
            let mut response = agent.get(&url).call().unwrap();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            let content_type = header("content-type").unwrap_or_default();
            let csp = header("content-security-policy");
            let body = response.body_mut().read_to_vec().unwrap();
            (response.status().as_u16(), content_type, body, csp)
        })
        .await
        .unwrap()
    }

    /// `GET path` with `If-None-Match: tags` if given: the status, the
    /// `ETag` and the body.
    async fn get_if_none_match(
        &self,
        path: &str,
        tags: Option<&str>,
    ) -> (u16, Option<String>, Vec<u8>) {
        let url = format!("{}{path}", self.base);
        let tags = tags.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .build()
                .into();
            let mut request = agent.get(&url);
            if let Some(tags) = tags {
                request = request.header("if-none-match", tags);
            }
            let mut response = request.call().unwrap();
            let tag = response
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_string());
            let body = response.body_mut().read_to_vec().unwrap();
            (response.status().as_u16(), tag, body)
        })
        .await
        .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.node.shutdown().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_holding_the_same_build_is_answered_not_modified_and_a_rebuild_changes_the_tag() {
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
    let wasm = pkg.path().join("shoal_web_bg.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0 first build").unwrap();
    let served = serve(Some(pkg.path().to_path_buf())).await;
    let path = "/apps/pkg/shoal_web_bg.wasm";

    let (status, tag, body) = served.get_if_none_match(path, None).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"\0asm\x01\0\0\0 first build"[..])
    );
    let tag = tag.expect("an ETag");
    assert!(
        tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"'),
        "{tag}"
    );
    assert_ne!(
        served
            .get_if_none_match("/apps/pkg/shoal_web.js", None)
            .await
            .1,
        Some(tag.clone()),
        "another file, another tag"
    );
    // The browser's copy is current: no body, the same tag. Also when it
    // sends the tag among others, or as a weak one.
    for given in [
        tag.clone(),
        format!("\"other\", {tag}"),
        format!("W/{tag}"),
        "*".to_string(),
    ] {
        let (status, again, body) = served.get_if_none_match(path, Some(&given)).await;
        assert_eq!(status, 304, "If-None-Match: {given}");
        assert_eq!(again.as_deref(), Some(tag.as_str()));
        assert!(body.is_empty());
    }
    let (status, _, body) = served.get_if_none_match(path, Some("\"stale\"")).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"\0asm\x01\0\0\0 first build"[..]),
        "another tag gets the file"
    );

    // Rebuilt in place: the old tag no longer matches, the new bytes come.
    std::fs::write(&wasm, b"\0asm\x01\0\0\0 second build").unwrap();
    let (status, new_tag, body) = served.get_if_none_match(path, Some(&tag)).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"\0asm\x01\0\0\0 second build"[..])
    );
    assert_ne!(new_tag, Some(tag), "the rebuild changed the tag");
    served.stop().await;
}
