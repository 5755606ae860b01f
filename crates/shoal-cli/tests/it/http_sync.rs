//! End-to-end tests of federation over HTTP between two real `shoal serve`
//! daemons sharing a group secret: Sync Details of one record on both sides
//! (in sync, diverged, local-only, peer-only, assets-missing), the
//! integrity report, pull and push turning a record in sync, and remote
//! changes on the feed.
//!
//! Differences are made with a sharing rule, as in `federation_cli.rs`: A
//! takes `tasks` from B but sends it nothing, so A's edits stay on A.
#![cfg(unix)]

use crate::common;

use common::http::Api;
use common::{Node, wait_or_explain};
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "0ddba110ddba110ddba110ddba110ddba110ddba110ddba110ddba110ddba110";

/// A well-formed peer id of no running node.
const STRANGER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

fn details(api: &Api, id: &str, peer: &str) -> Value {
    api.get(&format!(
        "/api/collections/tasks/records/{id}/sync?peer={peer}"
    ))
    .expect(200)
}

fn slot<'a>(side: &'a Value, name: &str) -> &'a Value {
    side["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap_or_else(|| panic!("no slot {name} in {side}"))
}

#[test]
fn sync_details_pull_and_push_between_two_daemons() {
    let a = Node::init();
    let b = Node::init();
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&["--peer", da.address()], Some(SECRET));
    let (api_a, api_b) = (Api::of(&a, &da), Api::of(&b, &db));
    let (pa, pb) = (da.peer_id().to_string(), db.peer_id().to_string());
    let explain = || format!("A:\n{}\nB:\n{}", da.log(), db.log());
    let connected = |api: &Api, peer: &str| {
        api.get("/api/peers").expect(200)["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer"] == peer && p["state"] == "connected")
    };
    wait_or_explain(
        "both daemons to show each other connected",
        || (connected(&api_a, &pb) && connected(&api_b, &pa)).then_some(()),
        explain,
    );
    let rule = json!({"peer": pb, "collection": "tasks", "mode": "receive"});
    api_a.put("/api/sharing", &rule).expect(200);

    // B's writes reach A, and A's feed says they came from a peer.
    let feed = api_a.feed("", None);
    for (id, title) in [("r1", "one"), ("r2", "two")] {
        api_b
            .put(
                &format!("/api/collections/tasks/records/{id}"),
                &json!({"title": title}),
            )
            .expect(200);
    }
    for id in ["r1", "r2"] {
        wait_or_explain(
            &format!("tasks/{id} to reach A"),
            || {
                (api_a
                    .get(&format!("/api/collections/tasks/records/{id}"))
                    .status
                    == 200)
                    .then_some(())
            },
            explain,
        );
    }
    let event = feed.next(Duration::from_secs(10)).expect("a remote change");
    assert_eq!(event.data["origin"], "remote", "{event:?}");
    assert_eq!(event.data["collection"], "tasks");

    // In sync: both sides hold the same slots, clocks and all.
    let same = details(&api_a, "r1", &pb);
    assert_eq!(same["status"], "in-sync", "{same}");
    assert_eq!(
        (same["collection"].as_str(), same["id"].as_str()),
        (Some("tasks"), Some("r1"))
    );
    assert_eq!(same["peer"], pb);
    assert_eq!(same["local"], same["remote"], "{same}");
    let local = &same["local"];
    assert_eq!(local["alive"], true);
    assert_eq!(local["life"], 1);
    assert_eq!(local["value"], json!({"title": "one"}));
    assert_eq!(local["missing_blobs"], json!([]));
    let title = slot(local, "title");
    assert_eq!(
        (
            title["kind"].as_str(),
            title["field"].as_str(),
            &title["value"]
        ),
        (Some("field"), Some("title"), &json!("one"))
    );
    assert_eq!(title["life"], 1);
    // The clock is WALL_MS.COUNTER@SITE, written by B.
    let clock = title["clock"].as_str().unwrap();
    let (hlc, site) = clock.split_once('@').expect("a clock with a site");
    assert_eq!(site, title["site"].as_str().unwrap());
    assert_eq!(site.len(), 16);
    assert!(hlc.starts_with(&title["wall_ms"].to_string()), "{clock}");
    assert_eq!(slot(local, "life")["kind"], "life");

    // A's edit of r1 stays on A: diverged, each side showing its own.
    api_a
        .patch("/api/collections/tasks/records/r1", &json!({"done": true}))
        .expect(200);
    let diverged = details(&api_a, "r1", &pb);
    assert_eq!(diverged["status"], "diverged", "{diverged}");
    assert_eq!(
        diverged["local"]["value"],
        json!({"title": "one", "done": true})
    );
    assert_eq!(diverged["remote"]["value"], json!({"title": "one"}));
    assert_eq!(slot(&diverged["local"], "done")["value"], true);
    assert_eq!(diverged["remote"]["missing_blobs"], json!([]));
    // B cannot see A's side: A does not send `tasks` to B.
    api_b
        .get(&format!("/api/collections/tasks/records/r1/sync?peer={pa}"))
        .error(403, "not-shared-with-you");
    // A record only A has; one A deleted and B still has.
    api_a
        .put(
            "/api/collections/tasks/records/a1",
            &json!({"title": "mine"}),
        )
        .expect(200);
    api_a
        .delete("/api/collections/tasks/records/r2")
        .expect(200);
    let only_here = details(&api_a, "a1", &pb);
    assert_eq!(only_here["status"], "local-only", "{only_here}");
    assert_eq!(only_here["remote"], Value::Null);
    let only_there = details(&api_a, "r2", &pb);
    assert_eq!(only_there["status"], "peer-only", "{only_there}");
    assert_eq!(only_there["local"]["alive"], false);
    assert_eq!(only_there["local"]["value"], Value::Null);
    assert_eq!(only_there["local"]["life"], 2);
    assert_eq!(only_there["remote"]["alive"], true);

    // The integrity report agrees.
    let report = api_a
        .get(&format!("/api/peers/{pb}/diff?collection=tasks"))
        .expect(200);
    assert_eq!(
        report["collections"][0]["counts"],
        json!({"local_only": 1, "peer_only": 1, "diverged": 1, "assets_missing": 0, "total": 3}),
        "{report}"
    );
    assert_eq!(
        report["collections"][0]["records"],
        json!([
            {"id": "a1", "status": "local-only"},
            {"id": "r1", "status": "diverged"},
            {"id": "r2", "status": "peer-only"}
        ])
    );

    // A's own rule stops a push; once A sends `tasks`, a push settles r1 —
    // unless B, asked by A to level `tasks` as the rule widened, already
    // pulled it.
    let refused = api_a
        .post(
            &format!("/api/peers/{pb}/push"),
            &json!({"collection": "tasks", "id": "r1"}),
        )
        .expect(200);
    assert_eq!(
        (refused["result"].as_str(), &refused["ok"]),
        (Some("not-shared"), &json!(false))
    );
    let both = json!({"peer": pb, "collection": "tasks", "mode": "both"});
    api_a.put("/api/sharing", &both).expect(200);
    let pushed = api_a
        .post(
            &format!("/api/peers/{pb}/push"),
            &json!({"collection": "tasks", "id": "r1"}),
        )
        .expect(200);
    assert_eq!(pushed["ok"], true, "{pushed}");
    assert!(
        ["merged", "already-in-sync"].contains(&pushed["result"].as_str().unwrap_or("")),
        "{pushed}"
    );
    let settled = details(&api_a, "r1", &pb);
    assert_eq!(settled["status"], "in-sync", "{settled}");
    assert_eq!(settled["local"], settled["remote"]);
    // Now B may read A's side too, and sees the same.
    assert_eq!(details(&api_b, "r1", &pa)["status"], "in-sync");
    assert_eq!(
        settled["remote"]["value"],
        json!({"title": "one", "done": true})
    );
    assert_eq!(
        api_b.get("/api/collections/tasks/records/r1").expect(200)["value"],
        json!({"title": "one", "done": true})
    );
    let again = api_a
        .post(
            &format!("/api/peers/{pb}/push"),
            &json!({"collection": "tasks", "id": "r1"}),
        )
        .expect(200);
    assert_eq!(again["result"], "already-in-sync");
    // B pulls A's delete of r2 (or levelling did): deleted on both sides
    // is in sync.
    let pulled = api_b
        .post(
            &format!("/api/peers/{pa}/pull"),
            &json!({"collection": "tasks", "id": "r2"}),
        )
        .expect(200);
    assert!(
        ["merged", "already-in-sync"].contains(&pulled["result"].as_str().unwrap_or("")),
        "{pulled}"
    );
    api_b
        .get("/api/collections/tasks/records/r2")
        .error(404, "not-found");
    assert_eq!(details(&api_a, "r2", &pb)["status"], "in-sync");
    let nobody = api_a
        .post(
            &format!("/api/peers/{pb}/pull"),
            &json!({"collection": "tasks", "id": "nope"}),
        )
        .expect(200);
    assert_eq!(nobody["result"], "peer-does-not-have-it");

    // The same state on both sides, but a blob it references is not here.
    let hash = "ab".repeat(32);
    api_a
        .put(
            "/api/collections/tasks/records/f1",
            &json!({"file": {"$blob": hash, "size": 3}}),
        )
        .expect(200);
    wait_or_explain(
        "tasks/f1 to reach B",
        || (api_b.get("/api/collections/tasks/records/f1").status == 200).then_some(()),
        explain,
    );
    let assets = details(&api_a, "f1", &pb);
    assert_eq!(assets["status"], "assets-missing", "{assets}");
    assert_eq!(assets["local"]["missing_blobs"], json!([hash]));
    assert_eq!(assets["remote"]["missing_blobs"], json!([]));

    // Refusals.
    let path =
        |id: &str, peer: &str| format!("/api/collections/tasks/records/{id}/sync?peer={peer}");
    api_a.get(&path("nope", &pb)).error(404, "not-found");
    // A local-only collection: A does not ask B at all, and says why.
    let local_only = json!({"collection": "scratch", "local_only": true});
    api_a
        .put("/api/sharing/local-only", &local_only)
        .expect(200);
    api_a
        .put("/api/collections/scratch/records/s1", &json!({"x": 1}))
        .expect(200);
    api_a
        .get(&format!(
            "/api/collections/scratch/records/s1/sync?peer={pb}"
        ))
        .error(403, "not-shared");
    api_a
        .get(&path("r1", "not-a-peer"))
        .error(400, "invalid-peer");
    api_a.get(&path("bad%20id", &pb)).error(400, "invalid-id");
    api_a
        .get("/api/collections/tasks/records/r1/sync")
        .error(400, "bad-request");
    api_a
        .get(&path("r1", STRANGER))
        .error(502, "peer-unreachable");
    let gone = api_a
        .post(
            &format!("/api/peers/{STRANGER}/pull"),
            &json!({"collection": "tasks", "id": "r1"}),
        )
        .expect(200);
    assert_eq!(
        (gone["result"].as_str(), &gone["ok"]),
        (Some("peer-unreachable"), &json!(false))
    );
    api_a
        .post(
            &format!("/api/peers/{pb}/push"),
            &json!({"collection": "tasks"}),
        )
        .error(400, "bad-request");
    api_a
        .post(
            &format!("/api/peers/{pb}/push"),
            &json!({"collection": "no spaces", "id": "r1"}),
        )
        .error(400, "invalid-collection");
    api_a
        .post(
            "/api/peers/not-a-peer/push",
            &json!({"collection": "tasks", "id": "r1"}),
        )
        .error(400, "invalid-peer");
    api_a
        .raw(
            "POST",
            &format!("/api/peers/{pb}/pull"),
            Some(&api_a.token),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .error(415, "unsupported-media-type");
    api_a
        .get(&format!("/api/peers/{STRANGER}/diff?collection=tasks"))
        .error(502, "peer-unreachable");
    drop((da, db));
}
