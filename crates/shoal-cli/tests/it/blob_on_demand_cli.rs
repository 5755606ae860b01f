//! Blobs on demand end to end: `shoal blob on-demand` shows and sets the
//! setting (kept in the data directory; a bad budget exits 2), and between
//! two real daemons the lazy one takes a record but not its blob, serves
//! the blob over `GET /api/blobs/HASH` by fetching it from the writer
//! (identical bytes), `shoal blob get` has the daemon fetch one, and both
//! answer `blob-unavailable` for one no connected peer holds.
#![cfg(unix)]

use crate::common;

use common::http::Api;
use common::{Node, content, state_of, wait_or_explain};
use serde_json::json;

/// The group key both daemons run with (64 hex digits: no Argon2 to wait for).
const SECRET: &str = "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b";

/// Adds `bytes` as a blob on `n` and a record `id` referencing it; the hash.
fn add_with_record(n: &Node, id: &str, bytes: &[u8]) -> String {
    let file = n.data.parent().unwrap().join(format!("{id}.bin"));
    std::fs::write(&file, bytes).unwrap();
    let blob = n
        .run(&["--json", "blob", "add", file.to_str().unwrap()])
        .ok()
        .json();
    let record = json!({"title": id, "file": blob});
    n.run(&["put", "photos", id, &record.to_string()]).ok();
    blob["$blob"].as_str().unwrap().to_string()
}

#[test]
fn the_setting_over_the_cli() {
    let n = Node::init();
    let shown = n.run(&["--json", "blob", "on-demand"]).ok().json();
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["budget_bytes"], serde_json::Value::Null);
    let set = n
        .run(&["--json", "blob", "on-demand", "on", "--budget-mib", "3"])
        .ok()
        .json();
    assert_eq!(set["enabled"], true);
    assert_eq!(set["budget_bytes"], 3 << 20);
    // Kept: a later run reads it back; text says what it means.
    let text = n.run(&["blob", "on-demand"]).ok();
    assert!(
        text.stdout.contains("on: blobs are fetched when opened")
            && text.stdout.contains("budget: 3 MiB"),
        "{}",
        text.stdout
    );
    n.run(&["blob", "on-demand", "--budget-mib", "lots"])
        .code(2);
    n.run(&["blob", "on-demand", "--budget-mib", "1", "--no-budget"])
        .code(2);
    let off = n
        .run(&["--json", "blob", "on-demand", "off", "--no-budget"])
        .ok()
        .json();
    assert_eq!(off["enabled"], false);
    assert_eq!(off["budget_bytes"], serde_json::Value::Null);
}

#[test]
fn a_lazy_daemon_fetches_a_blob_when_it_is_got_over_http() {
    let a = Node::init();
    let b = Node::init();
    b.run(&["blob", "on-demand", "on"]).ok();
    let first = content(1_500_000);
    let second = content(70_000);
    let hash1 = add_with_record(&a, "p1", &first);
    let hash2 = add_with_record(&a, "p2", &second);
    let third = content(90_000);
    let hash3 = add_with_record(&a, "p3", &third);
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&["--peer", da.address()], Some(SECRET));
    let pa = da.peer_id().to_string();
    wait_or_explain(
        "B to hold A's records",
        || {
            let connected = state_of(&b.peers(), &pa).as_deref() == Some("connected");
            (connected
                && b.run(&["get", "photos", "p1"]).code == 0
                && b.run(&["get", "photos", "p2"]).code == 0
                && b.run(&["get", "photos", "p3"]).code == 0)
                .then_some(())
        },
        || format!("A:\n{}\nB:\n{}", da.log(), db.log()),
    );
    // The records came, the blobs did not (they are listed as missing).
    std::thread::sleep(std::time::Duration::from_secs(3));
    let missing = b.run(&["--json", "blob", "ls", "--missing"]).ok().json();
    assert_eq!(missing["blobs"].as_array().unwrap().len(), 3, "{missing}");
    assert!(
        missing["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["on_demand"] == true),
        "{missing}"
    );
    let listed = Api::of(&b, &db).get("/api/blobs?missing=true").expect(200);
    assert_eq!(listed["blobs"], missing["blobs"]);
    let text = b.run(&["blob", "ls", "--missing"]).ok();
    assert_eq!(
        text.stdout.matches("remote: fetched when opened").count(),
        3,
        "{}",
        text.stdout
    );

    let api = Api::of(&b, &db);
    let got = api.get(&format!("/api/blobs/{hash1}"));
    assert_eq!(got.status, 200);
    assert!(got.bytes == first, "the bytes came back changed");
    let held = b.run(&["--json", "blob", "on-demand"]).ok().json();
    assert_eq!(held["fetched_on_demand"], 1);
    assert_eq!(held["fetched_on_demand_bytes"], first.len());

    // `shoal blob get` has the daemon fetch it.
    let out = b.data.parent().unwrap().join("third.out");
    b.run(&["blob", "get", &hash3, out.to_str().unwrap()]).ok();
    assert!(std::fs::read(&out).unwrap() == third);

    // With A gone, nobody can send the second one: a clear 502, at once.
    drop(da);
    wait_or_explain(
        "B to see A gone",
        || (state_of(&b.peers(), &pa).as_deref() != Some("connected")).then_some(()),
        || db.log(),
    );
    let message = api
        .get(&format!("/api/blobs/{hash2}"))
        .error(502, "blob-unavailable");
    assert!(
        message.contains("not available from any connected peer"),
        "{message}"
    );
    let failed = b.run(&["--json", "blob", "get", &hash2, "-"]).code(4);
    assert!(
        failed.stderr.contains("blob-unavailable"),
        "{}",
        failed.stderr
    );
    // The one fetched stays readable here.
    let again = api.get(&format!("/api/blobs/{hash1}"));
    assert!(again.status == 200 && again.bytes == first);
}
