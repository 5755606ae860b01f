//! End-to-end tests of the conflict journal's surfaces: `shoal conflicts`
//! (text, `--json`, by collection, `--since`, bad arguments refused by name)
//! and `GET /api/conflicts` on a running daemon (the same shape, its
//! filters, a bad parameter a 400). The conflict itself is made through the
//! library: a second store edits the same field concurrently and the two
//! exchange their logs, as two nodes do when they meet.
#![cfg(unix)]

use crate::common;

use common::Node;
use common::http::Api;
use serde_json::{Value, json};
use shoal::{DbVersion, Store};

const SECRET: &str = "0ddba110ddba110ddba110ddba110ddba110ddba110ddba110ddba110ddba110";

/// Makes one conflict on `notes/n1.title` in `node`'s store (its value
/// "here" against a concurrent "there"), and an edit of `tasks/t1` without one.
fn make_conflict(node: &Node, dir: &std::path::Path) {
    let here = Store::open(node.data.join("shoal.db")).expect("open");
    let there = Store::open(dir.join("there.db")).expect("open other");
    here.collection("notes")
        .unwrap()
        .put("n1", json!({"title": "base"}))
        .unwrap();
    here.collection("tasks")
        .unwrap()
        .put("t1", json!({"done": false}))
        .unwrap();
    let all = |s: &Store| -> Vec<_> { s.changes_since(DbVersion(0)).map(|c| c.unwrap()).collect() };
    there.apply(&all(&here)).unwrap();
    here.collection("notes")
        .unwrap()
        .patch("n1", json!({"title": "here"}))
        .unwrap();
    there
        .collection("notes")
        .unwrap()
        .patch("n1", json!({"title": "there"}))
        .unwrap();
    let (mine, theirs) = (all(&here), all(&there));
    there.apply(&mine).unwrap();
    here.apply(&theirs).unwrap();
}

#[test]
fn shoal_conflicts_lists_the_journal() {
    let node = Node::init();
    let dir = tempfile::tempdir().unwrap();
    assert!(node.run(&["conflicts"]).ok().stdout.is_empty());
    make_conflict(&node, dir.path());

    let text = node.run(&["conflicts"]).ok();
    let lines = text.lines();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    assert!(lines[0].contains("notes/n1 .title"), "{}", lines[0]);
    let kept_lost: Vec<&str> = lines[1..].iter().map(|l| l.trim()).collect();
    assert!(kept_lost[0].starts_with("kept  \""));
    assert!(kept_lost[1].starts_with("lost  \""));
    let both = format!("{} {}", kept_lost[0], kept_lost[1]);
    assert!(
        both.contains("\"here\"") && both.contains("\"there\""),
        "{both}"
    );

    let listed = node
        .run(&["--json", "conflicts", "notes", "--since", "1h"])
        .ok()
        .json();
    let entries = listed["conflicts"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e["collection"].as_str(), e["id"].as_str()),
        (Some("notes"), Some("n1"))
    );
    assert_eq!(e["field"], "title");
    assert_eq!(e["key"], Value::Null);
    let values = [e["kept"]["value"].clone(), e["lost"]["value"].clone()];
    assert!(values.contains(&json!("here")) && values.contains(&json!("there")));
    assert_ne!(e["kept"]["site"], e["lost"]["site"]);
    assert_eq!(e["lost"]["removed"], false);

    let other = node.run(&["--json", "conflicts", "tasks"]).ok().json();
    assert_eq!(other["conflicts"], json!([]));

    let bad = node.run(&["conflicts", "bad name!"]).code(2);
    assert!(
        bad.stderr.contains("invalid collection name"),
        "{}",
        bad.stderr
    );
    let bad = node.run(&["conflicts", "--since", "soon"]).code(2);
    assert!(bad.stderr.contains("soon"), "{}", bad.stderr);
}

#[test]
fn get_api_conflicts_serves_the_journal() {
    let node = Node::init();
    let dir = tempfile::tempdir().unwrap();
    make_conflict(&node, dir.path());
    let daemon = node.serve(&[], Some(SECRET));
    let api = Api::of(&node, &daemon);

    let all = api.get("/api/conflicts").expect(200);
    let entries = all["conflicts"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{all}");
    let cli = node.run(&["--json", "conflicts"]).ok().json();
    assert_eq!(all, cli, "the CLI and the API show the same shape");

    let future = api.get("/api/conflicts?since=99999999999999").expect(200);
    assert_eq!(future["conflicts"], json!([]));
    let tasks = api
        .get("/api/conflicts?collection=tasks&limit=5")
        .expect(200);
    assert_eq!(tasks["conflicts"], json!([]));
    api.get("/api/conflicts?collection=bad%20name")
        .error(400, "invalid-collection");
    api.get("/api/conflicts?limit=0").error(400, "bad-request");
}
