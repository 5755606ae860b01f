//! `shoal serve`'s WebSocket listener (what browser tabs dial), end to end
//! with real daemons on loopback: it is on by default on loopback at a free
//! port, shown by `shoal status` and `GET /api/node` with the peer id; a
//! second daemon given that address syncs through it like any peer;
//! `--no-ws` turns it off and a `--ws-listen` that is not a `/tcp/N/ws`
//! address is a usage error.
#![cfg(unix)]

use crate::common;

use common::{Node, wait_for};
use serde_json::Value;
use std::time::Duration;

fn node_info(http: &str, token: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    agent
        .get(&format!("http://{http}/api/node"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json::<Value>()
        .unwrap()
}

#[test]
fn the_websocket_address_is_shown_and_members_sync_through_it() {
    let secret = "ab".repeat(32);
    let a = Node::init();
    let da = a.serve(&[], Some(&secret));
    // The WebSocket listener may come up a moment after the HTTP API.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = node_info(da.http(), &a.token());
        let listed = info["websocket"].as_array().is_some_and(|a| !a.is_empty());
        if listed || std::time::Instant::now() > deadline {
            break info;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ws: Vec<&str> = info["websocket"]
        .as_array()
        .expect("a websocket array")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ws.len(), 1, "{info}");
    let ws = ws[0].to_string();
    assert!(ws.starts_with("/ip4/127.0.0.1/tcp/"), "{ws}");
    assert!(ws.ends_with(&format!("/ws/p2p/{}", da.peer_id())), "{ws}");
    // The invite never carries the browser's address.
    let invite = info["invite"].as_str().unwrap_or_default();
    assert!(!invite.contains("/ws"), "{invite}");
    // `shoal status` shows it, as text and as JSON.
    let status = a.run(&["--json", "status"]).ok().json();
    assert_eq!(status["websocket"][0], ws.as_str(), "{status}");
    let text = a.run(&["status"]).ok().stdout;
    assert!(text.contains(&format!("websocket   {ws}")), "{text}");

    // A second daemon dials only the WebSocket address and syncs both ways.
    a.run(&["put", "notes", "from-a", r#"{"n":1}"#]).ok();
    let b = Node::init();
    let db = b.serve(&["--peer", &ws, "--no-ws"], Some(&secret));
    b.run(&["put", "notes", "from-b", r#"{"n":2}"#]).ok();
    wait_for("both records on both daemons", || {
        let has = |n: &Node, id: &str| n.run(&["get", "notes", id]).code == 0;
        (has(&a, "from-b") && has(&b, "from-a")).then_some(())
    });
    // --no-ws: no WebSocket address at all.
    let info = node_info(db.http(), &b.token());
    assert_eq!(info["websocket"], serde_json::json!([]), "{info}");
    drop(db);
    drop(da);
}

#[test]
fn a_ws_listen_that_is_not_a_websocket_address_is_a_usage_error() {
    let n = Node::init();
    for bad in [
        "/ip4/127.0.0.1/tcp/0",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "nonsense",
    ] {
        let run = n.run(&["serve", "--ws-listen", bad]).code(2);
        assert!(run.stderr.contains("--ws-listen"), "{bad}: {}", run.stderr);
    }
    let both = n
        .run(&["serve", "--no-ws", "--ws-listen", "/ip4/127.0.0.1/tcp/0/ws"])
        .code(2);
    assert!(both.stderr.contains("--no-ws"), "{}", both.stderr);
}
