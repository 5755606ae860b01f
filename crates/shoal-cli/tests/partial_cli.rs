//! `shoal partial` end to end on a real data directory: a bad filter exits
//! 2 naming the byte and sets nothing; a good one is listed (text and JSON)
//! and drops the records held here that it does not admit, which are gone
//! locally and were never deleted (no tombstone in the log); `rm` takes
//! the collection whole again.
#![cfg(unix)]

mod common;

use common::Node;
use serde_json::json;

#[test]
fn partial_filters_over_the_cli() {
    let n = Node::init();
    n.run(&["put", "notes", "a", r#"{"owner": "bo"}"#]).ok();
    n.run(&["put", "notes", "b", r#"{"owner": "al"}"#]).ok();
    let bad = n.run(&["partial", "set", "notes", "owner = bo"]).code(2);
    assert!(bad.stderr.contains("byte 8"), "{}", bad.stderr);
    let listed = n.run(&["--json", "partial", "ls"]).ok().json();
    assert_eq!(listed, json!({"filters": []}));

    let set = n
        .run(&["--json", "partial", "set", "notes", r#"owner = "bo""#])
        .ok()
        .json();
    assert_eq!(set["dropped"], 1);
    let listed = n.run(&["--json", "partial", "ls"]).ok().json();
    assert_eq!(
        listed,
        json!({"filters": [{"collection": "notes", "filter": "owner = \"bo\""}]})
    );
    n.run(&["get", "notes", "a"]).ok();
    n.run(&["get", "notes", "b"]).code(1);
    // Dropped, not deleted: the log holds no change of `b` at all.
    let log = n.run(&["log"]).ok();
    assert!(!log.stdout.contains("notes/b"), "{}", log.stdout);

    n.run(&["partial", "rm", "notes"]).ok();
    let listed = n.run(&["--json", "partial", "ls"]).ok().json();
    assert_eq!(listed, json!({"filters": []}));
}
