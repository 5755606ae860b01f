//! End-to-end tests of devices and roles (issue 19 §1) with real `shoal
//! serve` processes on loopback: a group without an owner keeps working;
//! once it has one, a new device that joins with the invite code gets
//! nothing until the owner approves it; a read-only device's changes are
//! refused by members and its local writes fail by name; a revoked device
//! keeping the secret and its key gets nothing written after the
//! revocation, neither records nor blobs, and nothing it writes is taken.
#![cfg(unix)]

use crate::common;

use common::http::Api;
use common::{Node, state_of, wait_for, wait_or_explain};
use serde_json::{Value, json};
use std::time::Duration;

fn has(node: &Node, collection: &str, id: &str) -> bool {
    node.run(&["get", collection, id]).code == 0
}

fn devices(node: &Node) -> Value {
    node.run(&["--json", "devices"]).ok().json()
}

fn device<'a>(list: &'a Value, peer: &str) -> Option<&'a Value> {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["peer"] == peer)
}

fn rejected_reason(node: &Node, peer: &str) -> Option<String> {
    node.peers()
        .iter()
        .find(|p| p["peer"] == peer && p["state"] == "rejected")
        .and_then(|p| p["reason"].as_str().map(str::to_string))
}

#[test]
fn owner_approval_read_only_and_revocation_over_real_daemons() {
    // A group as before devices: A invites, B joins, records flow.
    let a = Node::init();
    a.run(&["invite"]).code(2); // makes the group key
    let da = a.serve(&[], None);
    let code = a.run(&["invite"]).ok().stdout.trim().to_string();
    let b = Node::init();
    b.run(&["join", &code]).ok();
    let db = b.serve(&[], None);
    a.run(&["put", "tasks", "t0", r#"{"n": 0}"#]).ok();
    wait_for(
        "t0 to reach B (no owner: every holder of the secret syncs)",
        || has(&b, "tasks", "t0").then_some(()),
    );
    assert_eq!(devices(&a)["owner"], Value::Null);

    // A makes the owner key: it admits itself and B, which it synced with.
    let made = a
        .run(&["--json", "devices", "owner-key", "create"])
        .ok()
        .json();
    let admitted: Vec<&str> = made["admitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(admitted.contains(&da.peer_id()) && admitted.contains(&db.peer_id()));
    let code_text = a.run(&["devices", "owner-key", "export"]).ok().stdout;
    assert!(code_text.trim().starts_with("shoal-owner:"));
    // B learns the owner and the admissions by sync, and still syncs.
    wait_for("B to learn the owner", || {
        devices(&b)["owner"].is_string().then_some(())
    });
    a.run(&["put", "tasks", "t1", r#"{"n": 1}"#]).ok();
    wait_for("t1 to reach admitted B", || {
        has(&b, "tasks", "t1").then_some(())
    });

    // A new device joins with the same invite code: refused until approved.
    let c = Node::init();
    c.run(&["join", &code]).ok();
    c.run(&["put", "notes", "from-c", r#"{"early": true}"#])
        .ok();
    let dc = c.serve(&[], None);
    let why = wait_or_explain(
        "C to be refused as not admitted",
        || rejected_reason(&c, da.peer_id()),
        || format!("{}\n{}", dc.log(), da.log()),
    );
    assert!(why.contains("not admitted"), "{why}");
    let pending = wait_for("A to list C's request", || {
        let list = devices(&a);
        device(&list, dc.peer_id()).cloned()
    });
    assert_eq!(pending["status"], "pending");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !has(&c, "tasks", "t0"),
        "a device not admitted received a record"
    );
    assert!(
        !has(&a, "notes", "from-c"),
        "a device not admitted sent a record"
    );

    // Approved read-only (over the HTTP API): C receives, A takes nothing from it.
    let api = Api::of(&a, &da);
    let reply = api
        .post(
            &format!("/api/devices/{}/approve", dc.peer_id()),
            &json!({"role": "read-only", "name": "kiosk"}),
        )
        .expect(200);
    assert_eq!(device(&reply, dc.peer_id()).unwrap()["role"], "read-only");
    wait_or_explain(
        "t0 and t1 to reach read-only C",
        || (has(&c, "tasks", "t0") && has(&c, "tasks", "t1")).then_some(()),
        || format!("{}\n{}", dc.log(), da.log()),
    );
    wait_for("C to learn its own role", || {
        let list = devices(&c);
        (device(&list, dc.peer_id())?["role"] == "read-only").then_some(())
    });
    let refused = c
        .run(&["--json", "put", "tasks", "t9", r#"{"n": 9}"#])
        .code(2);
    assert!(refused.stderr.contains("read-only"), "{}", refused.stderr);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !has(&a, "notes", "from-c"),
        "a member took a read-only device's change"
    );

    // A forged statement written by a member is refused at once.
    let forged = b.run(&[
        "put",
        "shoal_devices",
        &format!("adm.{}.1", dc.peer_id()),
        r#"{"statement": "shoal-device1:00"}"#,
    ]);
    assert_eq!(forged.code, 2, "{}", forged.stderr);

    // Revoke B: it keeps the secret and its key, and gets nothing new.
    a.run(&["devices", "revoke", db.peer_id()]).ok();
    let blob_file = a.data.parent().unwrap().join("after.bin");
    std::fs::write(&blob_file, common::content(300_000)).unwrap();
    let blob = a
        .run(&["--json", "blob", "add", blob_file.to_str().unwrap()])
        .ok()
        .json();
    let hash = blob["$blob"].as_str().unwrap().to_string();
    a.run(&["put", "tasks", "t2", &json!({"file": blob}).to_string()])
        .ok();
    wait_for("t2 to reach C", || has(&c, "tasks", "t2").then_some(()));
    let why = wait_or_explain(
        "B to be refused as revoked",
        || rejected_reason(&b, da.peer_id()),
        || format!("{}\n{}", db.log(), da.log()),
    );
    assert!(why.contains("revoked"), "{why}");
    // B asks for the blob by its hash (it references it itself).
    b.run(&["put", "mine", "m1", &json!({"file": blob}).to_string()])
        .ok();
    b.run(&["put", "tasks", "from-b", r#"{"late": true}"#]).ok();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !has(&b, "tasks", "t2"),
        "a revoked device received a record"
    );
    let got = b.run(&["blob", "get", &hash, "-"]);
    assert_ne!(got.code, 0, "a revoked device fetched a blob");
    assert!(
        !has(&a, "tasks", "from-b"),
        "a member took a revoked device's change"
    );
    assert!(
        !has(&c, "tasks", "from-b"),
        "a member took a revoked device's change"
    );
    let list = devices(&a);
    assert_eq!(device(&list, db.peer_id()).unwrap()["status"], "revoked");
    assert_eq!(
        state_of(&a.peers(), db.peer_id()).as_deref(),
        Some("rejected")
    );
    // A revoked device cannot be approved again.
    let again = a.run(&["devices", "approve", db.peer_id()]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    drop((da, db, dc));
}
