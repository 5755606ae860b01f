//! End-to-end tests of the peer and sharing routes against real `shoal
//! serve` daemons over real HTTP: adding a peer by address or by invite
//! code (another group's refused), forgetting one (`peers.txt` and the
//! connection), and the sharing rules' round trip — a `*` rule included,
//! which takes effect on what flows.
#![cfg(unix)]

use crate::common;

use common::http::Api;
use common::{Node, wait_or_explain};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "beefcafebeefcafebeefcafebeefcafebeefcafebeefcafebeefcafebeefcafe";

/// A well-formed peer id of no running node.
const STRANGER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

fn state(api: &Api, peer: &str) -> Option<String> {
    api.get("/api/peers").expect(200)["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer"] == peer)
        .map(|p| p["state"].as_str().unwrap().to_string())
}

#[test]
fn join_by_invite_then_forget_the_peer() {
    let a = Node::init();
    let b = Node::init();
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&[], Some(SECRET));
    let (api_a, api_b) = (Api::of(&a, &da), Api::of(&b, &db));
    let (pa, pb) = (da.peer_id().to_string(), db.peer_id().to_string());
    let explain = || format!("A:\n{}\nB:\n{}", da.log(), db.log());
    let invite = api_a.get("/api/node").expect(200)["invite"]
        .as_str()
        .unwrap()
        .to_string();

    // Invites B must refuse: another group's, its own, garbage.
    let address = da.address();
    let foreign = shoal::Invite {
        key: shoal::GroupKey::from_hex(&"cd".repeat(32)).unwrap(),
        salt: shoal::GroupSalt::from_random([7; 16]),
        address: address.parse().unwrap(),
        relays: Vec::new(),
    }
    .to_string();
    let message = api_b
        .post("/api/peers", &json!({"invite": foreign}))
        .error(400, "bad-request");
    assert!(message.contains("another group"), "{message}");
    let own = api_b.get("/api/node").expect(200)["invite"].clone();
    api_b
        .post("/api/peers", &json!({"invite": own}))
        .error(400, "bad-request");
    api_b
        .post("/api/peers", &json!({"invite": "shoal1:nope"}))
        .error(400, "bad-request");
    api_b
        .post("/api/peers", &json!({"invite": invite, "address": address}))
        .error(400, "bad-request");
    api_b
        .post("/api/peers", &json!({}))
        .error(400, "bad-request");
    api_b
        .post("/api/peers", &json!({"address": "not a multiaddr"}))
        .error(400, "invalid-address");
    assert!(!b.data.join("peers.txt").exists(), "nothing was remembered");

    // A's invite: dialed and remembered once.
    let added = api_b
        .post("/api/peers", &json!({"invite": invite}))
        .expect(200);
    assert_eq!(added, json!({"address": address, "remembered": true}));
    let again = api_b
        .post("/api/peers", &json!({"address": address}))
        .expect(200);
    assert_eq!(again["remembered"], false);
    let peers_txt = std::fs::read_to_string(b.data.join("peers.txt")).unwrap();
    assert_eq!(peers_txt.lines().collect::<Vec<_>>(), [address]);
    wait_or_explain(
        "B and A to connect",
        || {
            (state(&api_b, &pa).as_deref() == Some("connected")
                && state(&api_a, &pb).as_deref() == Some("connected"))
            .then_some(())
        },
        explain,
    );

    // A `*` rule on A: `secret` flows to no peer, other collections do.
    let star = json!({"peer": "*", "collection": "secret", "mode": "none"});
    api_a.put("/api/sharing", &star).expect(200);
    for collection in ["secret", "open"] {
        api_b
            .put(
                &format!("/api/collections/{collection}/records/x1"),
                &json!({"v": 1}),
            )
            .expect(200);
    }
    wait_or_explain(
        "open/x1 to reach A",
        || (api_a.get("/api/collections/open/records/x1").status == 200).then_some(()),
        explain,
    );
    api_a
        .get("/api/collections/secret/records/x1")
        .error(404, "not-found");

    // Forget A on B: its line leaves peers.txt and the connection closes.
    api_b
        .delete("/api/peers/not-a-peer")
        .error(400, "invalid-peer");
    api_b
        .delete(&format!("/api/peers/{STRANGER}"))
        .error(404, "not-found");
    let forgotten = api_b.delete(&format!("/api/peers/{pa}")).expect(200);
    assert_eq!(forgotten, json!({"peer": pa, "removed": 1}));
    let peers_txt = std::fs::read_to_string(b.data.join("peers.txt")).unwrap();
    assert_eq!(peers_txt.trim(), "", "{peers_txt}");
    wait_or_explain(
        "B to show A disconnected",
        || (state(&api_b, &pa).as_deref() != Some("connected")).then_some(()),
        explain,
    );
    // And B does not dial it again (the redial interval is 5 s).
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(7) {
        assert_ne!(
            state(&api_b, &pa).as_deref(),
            Some("connected"),
            "{}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Forgetting again removes nothing (the node still knows of it).
    let twice = api_b.delete(&format!("/api/peers/{pa}")).expect(200);
    assert_eq!(twice["removed"], 0);
    // A restarted B does not dial it either: it is gone from peers.txt.
    assert_eq!(db.terminate(), 0);
    let db = b.serve(&[], Some(SECRET));
    let api_b = Api::of(&b, &db);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(api_b.get("/api/peers").expect(200)["peers"], json!([]));
}

#[test]
fn sharing_rules_round_trip() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let empty = api.get("/api/sharing").expect(200);
    assert_eq!(
        empty,
        json!({"default": "both", "local_only": [], "rules": []})
    );

    let after = api
        .put(
            "/api/sharing",
            &json!({"peer": STRANGER, "collection": "inbox", "mode": "send"}),
        )
        .expect(200);
    assert_eq!(
        after["rules"],
        json!([{"peer": STRANGER, "collection": "inbox", "mode": "send"}])
    );
    // Setting it again replaces it; a `*` rule sits beside it.
    api.put(
        "/api/sharing",
        &json!({"peer": STRANGER, "collection": "inbox", "mode": "none"}),
    )
    .expect(200);
    api.put(
        "/api/sharing",
        &json!({"peer": "*", "collection": "diary", "mode": "receive"}),
    )
    .expect(200);
    let local = api
        .put(
            "/api/sharing/local-only",
            &json!({"collection": "keys", "local_only": true}),
        )
        .expect(200);
    let want = json!({
        "default": "both",
        "local_only": ["keys"],
        "rules": [
            {"peer": "*", "collection": "diary", "mode": "receive"},
            {"peer": STRANGER, "collection": "inbox", "mode": "none"},
        ],
    });
    assert_eq!(local, want);
    assert_eq!(api.get("/api/sharing").expect(200), want);
    // The CLI reads the same rules.
    let cli = n.run(&["--json", "share", "--list"]).ok().json();
    assert_eq!(cli["local_only"], json!(["keys"]));
    assert_eq!(cli["rules"], want["rules"]);
    // Lifting local-only.
    let lifted = api
        .put(
            "/api/sharing/local-only",
            &json!({"collection": "keys", "local_only": false}),
        )
        .expect(200);
    assert_eq!(lifted["local_only"], json!([]));

    // Refusals change nothing.
    let bad: [(Value, u16, &str); 6] = [
        (
            json!({"peer": "nobody", "collection": "c", "mode": "both"}),
            400,
            "invalid-peer",
        ),
        (
            json!({"peer": "*", "collection": "no spaces", "mode": "both"}),
            400,
            "invalid-collection",
        ),
        (
            json!({"peer": "*", "collection": "c", "mode": "sometimes"}),
            400,
            "bad-request",
        ),
        (json!({"peer": "*", "collection": "c"}), 400, "bad-request"),
        (
            json!({"peer": "*", "collection": "c", "mode": "both", "x": 1}),
            400,
            "bad-request",
        ),
        (json!("both"), 400, "bad-request"),
    ];
    for (body, status, code) in bad {
        api.put("/api/sharing", &body).error(status, code);
    }
    api.put(
        "/api/sharing/local-only",
        &json!({"collection": "c", "local_only": "yes"}),
    )
    .error(400, "bad-request");
    api.raw(
        "PUT",
        "/api/sharing",
        Some(&api.token),
        Some("text/plain"),
        br#"{"peer": "*", "collection": "c", "mode": "both"}"#.to_vec(),
    )
    .error(415, "unsupported-media-type");
    let unchanged = api.get("/api/sharing").expect(200);
    assert_eq!(unchanged["rules"], want["rules"]);
}
