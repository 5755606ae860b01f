//! End-to-end tests of the HTTP API's frame, against a real `shoal serve`
//! over real HTTP: the token check on every kind of route, the JSON error
//! shape of every failure (unknown routes, wrong methods, framework
//! rejections), `GET /api/node`, what `shoal serve` prints, and the OpenAPI
//! document listing every route.
#![cfg(unix)]

use crate::common;

use common::Node;
use common::http::Api;
use serde_json::{Value, json};

const SECRET: &str = "a11ce5a11ce5a11ce5a11ce5a11ce5a11ce5a11ce5a11ce5a11ce5a11ce5a11c";

/// Every route of docs/http-api.md, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/openapi.json"),
    ("get", "/api/node"),
    ("post", "/api/sync"),
    ("get", "/api/peers"),
    ("post", "/api/peers"),
    ("delete", "/api/peers/{peer}"),
    ("get", "/api/peers/{peer}/diff"),
    ("post", "/api/peers/{peer}/pull"),
    ("post", "/api/peers/{peer}/push"),
    ("get", "/api/collections"),
    ("get", "/api/collections/{collection}/records"),
    ("post", "/api/collections/{collection}/records"),
    ("get", "/api/collections/{collection}/records/{id}"),
    ("put", "/api/collections/{collection}/records/{id}"),
    ("patch", "/api/collections/{collection}/records/{id}"),
    ("delete", "/api/collections/{collection}/records/{id}"),
    ("get", "/api/collections/{collection}/records/{id}/sync"),
    (
        "put",
        "/api/collections/{collection}/records/{id}/maps/{field}/{key}",
    ),
    (
        "delete",
        "/api/collections/{collection}/records/{id}/maps/{field}/{key}",
    ),
    ("get", "/api/changes"),
    ("get", "/api/sharing"),
    ("put", "/api/sharing"),
    ("put", "/api/sharing/local-only"),
    ("get", "/api/devices"),
    ("post", "/api/devices/{peer}/approve"),
    ("post", "/api/devices/{peer}/revoke"),
    ("get", "/api/conflicts"),
    ("get", "/api/collections/{collection}/schema"),
    ("put", "/api/collections/{collection}/schema"),
    ("delete", "/api/collections/{collection}/schema"),
    ("get", "/api/blobs"),
    ("post", "/api/blobs"),
    ("get", "/api/blobs/{hash}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[test]
fn every_route_wants_the_token() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let peer = d.peer_id().to_string();
    let calls: Vec<(&str, String)> = vec![
        ("GET", "/api/openapi.json".into()),
        ("GET", "/api/node".into()),
        ("GET", "/api/collections".into()),
        ("GET", "/api/collections/notes/records".into()),
        ("POST", "/api/collections/notes/records".into()),
        ("GET", "/api/collections/notes/records/n1".into()),
        ("PUT", "/api/collections/notes/records/n1".into()),
        ("DELETE", "/api/collections/notes/records/n1".into()),
        (
            "PUT",
            "/api/collections/notes/records/n1/maps/tags/k".into(),
        ),
        (
            "DELETE",
            "/api/collections/notes/records/n1/maps/tags/k".into(),
        ),
        (
            "GET",
            format!("/api/collections/notes/records/n1/sync?peer={peer}"),
        ),
        ("GET", "/api/changes?since=0".into()),
        ("GET", "/api/peers".into()),
        ("POST", "/api/peers".into()),
        ("DELETE", format!("/api/peers/{peer}")),
        ("GET", format!("/api/peers/{peer}/diff")),
        ("POST", format!("/api/peers/{peer}/pull")),
        ("PUT", "/api/sharing".into()),
        ("GET", "/api/conflicts".into()),
        ("GET", "/api/collections/notes/schema".into()),
        ("PUT", "/api/collections/notes/schema".into()),
        ("DELETE", "/api/collections/notes/schema".into()),
        ("GET", "/api/blobs".into()),
        ("POST", "/api/blobs".into()),
        ("GET", format!("/api/blobs/{}", "0".repeat(64))),
        ("POST", "/api/sync".into()),
        // Unknown /api routes too: nothing under /api answers without it.
        ("GET", "/api/no-such-route".into()),
        // The metrics too (without --metrics-public).
        ("GET", "/metrics".into()),
    ];
    let wrong = "f".repeat(64);
    for (method, path) in &calls {
        let body = br#"{"value": {"a": 1}}"#.to_vec();
        for token in [None, Some(wrong.as_str()), Some("")] {
            let reply = api.raw(method, path, token, Some("application/json"), body.clone());
            reply.error(401, "unauthorized");
        }
    }
    // Nothing was written by the refused calls.
    let listed = api.get("/api/collections").expect(200);
    assert_eq!(listed, json!({"collections": []}));
    // The dashboard's page needs no token (it holds no data).
    let page = api.raw("GET", "/", None, None, Vec::new());
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{page:?}");
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let token = n.token();
    let status = |authorization: &str| {
        common::http::raw_status(
            d.http(),
            &format!(
                "GET /api/node HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}",
                d.http()
            ),
            b"",
        )
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(status(&format!("{scheme} {token}")), 200, "{scheme}");
    }
    // The token stays exact, and the scheme must be Bearer.
    assert_eq!(status(&format!("Bearer {}", token.to_uppercase())), 401);
    assert_eq!(status(&format!("Basic {token}")), 401);
    assert_eq!(status(&format!("Bearer{token}")), 401);
}

#[test]
fn every_failure_is_our_json_shape() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let token = Some(api.token.as_str());
    api.get("/api/nope").error(404, "not-found");
    api.get("/api/collections/notes/records/n1/nope")
        .error(404, "not-found");
    api.raw("PUT", "/api/node", token, None, Vec::new())
        .error(405, "method-not-allowed");
    api.raw("DELETE", "/api/collections", token, None, Vec::new())
        .error(405, "method-not-allowed");
    api.raw("POST", "/", None, None, Vec::new())
        .error(405, "method-not-allowed");
    // Bodies: not JSON, the wrong type, no content type, too big.
    let path = "/api/collections/notes/records";
    for body in [
        &b"{\"id\":"[..],
        b"[1, 2]",
        b"{\"value\": {}, \"colour\": 1}",
    ] {
        api.raw("POST", path, token, Some("application/json"), body.to_vec())
            .error(400, "bad-request");
    }
    api.raw(
        "POST",
        path,
        token,
        Some("text/plain"),
        b"{\"value\": {}}".to_vec(),
    )
    .error(415, "unsupported-media-type");
    api.raw("POST", path, token, None, b"{\"value\": {}}".to_vec())
        .error(415, "unsupported-media-type");
    let mut big = br#"{"value": {"text": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', (1 << 20) + 512));
    big.extend(br#""}}"#);
    let message = api
        .raw("POST", path, token, Some("application/json"), big.clone())
        .error(413, "payload-too-large");
    assert!(message.contains("1048576"), "{message}");
    api.raw(
        "PUT",
        "/api/collections/notes/records/n1",
        token,
        Some("application/json"),
        big,
    )
    .error(413, "payload-too-large");
    // Queries and parameters.
    api.get("/api/collections/notes/records?limit=abc")
        .error(400, "bad-request");
    api.get("/api/collections/notes/records?colour=red")
        .error(400, "bad-request");
    api.get("/api/changes?since=-1").error(400, "bad-request");
    api.get("/api/peers/not-a-peer/diff")
        .error(400, "invalid-peer");
    api.get("/api/blobs/xyz").error(400, "invalid-hash");
    // Nothing was stored by any of them.
    assert_eq!(
        api.get("/api/collections").expect(200),
        json!({"collections": []})
    );
}

#[test]
fn node_info_serve_output_and_the_openapi_document() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let node = api.get("/api/node").expect(200);
    let peer = d.peer_id();
    assert_eq!(node["peer_id"], peer);
    assert_eq!(node["name"], format!("node-{}", &peer[peer.len() - 6..]));
    assert_eq!(node["listen"][0], d.address());
    assert!(node["db_version"].is_u64(), "{node}");
    assert_eq!(node["group"].as_str().unwrap().len(), 16, "{node}");
    let invite = node["invite"].as_str().expect("an invite code");
    let parsed: shoal::Invite = invite.parse().expect("a valid invite code");
    assert_eq!(parsed.key.to_hex(), SECRET);
    assert_eq!(parsed.address.to_string(), d.address());
    // The same code `shoal invite` prints.
    let cli = n.run_with_secret(&["invite"], SECRET).ok();
    assert_eq!(cli.stdout.trim(), invite);

    // `shoal serve` prints the dashboard's address, token in the fragment.
    let printed = std::fs::read_to_string(n.data.parent().unwrap().join("serve.out")).unwrap();
    let expected = format!("dashboard  http://{}/#token={}", d.http(), api.token);
    assert!(
        printed.lines().any(|l| l == expected),
        "no `{expected}` in:\n{printed}"
    );

    // Every route is in the document, with its method.
    let doc = api.get("/api/openapi.json").expect(200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not in openapi.json: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(documented, ROUTES.len(), "{:?}", paths.keys());
    // The shapes are there, and the bearer token is declared.
    let schemas = &doc["components"]["schemas"];
    for shape in [
        "NodeInfo",
        "RecordBody",
        "SyncDetails",
        "ApiError",
        "ChangeData",
    ] {
        assert!(schemas.get(shape).is_some(), "no schema {shape}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], json!([{"token": []}]));
}

#[test]
fn serve_json_output_names_the_dashboard_and_name_names_the_node() {
    let n = Node::init();
    let d = n.serve(&["--json", "--name", "home server"], Some(SECRET));
    let out = n.data.parent().unwrap().join("serve.out");
    let printed = common::wait_for("serve --json to print", || {
        let text = std::fs::read_to_string(&out).ok()?;
        serde_json::from_str::<Value>(&text).ok()
    });
    assert_eq!(
        printed["dashboard"],
        format!("http://{}/#token={}", d.http(), n.token())
    );
    assert_eq!(printed["peer_id"], d.peer_id());
    // --name is what the dashboard calls the node.
    let node = Api::of(&n, &d).get("/api/node").expect(200);
    assert_eq!(node["name"], "home server");
}
