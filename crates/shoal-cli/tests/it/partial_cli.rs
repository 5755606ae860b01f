//! `shoal partial` end to end on a real data directory: a bad filter exits
//! 2 naming the byte and sets nothing; a good one is listed (text and JSON)
//! and keeps the records held here that it does not admit when they were
//! written here and no peer acknowledged them (they may exist nowhere
//! else; records from peers are dropped, tested in shoal-store and over
//! the network in shoal's partial tests); `rm` takes
//! the collection whole again. Between two daemons, `shoal diff` of a
//! filtered collection compares only what the filter covers, both ways.
#![cfg(unix)]

use crate::common;

use common::{Node, state_of, wait_or_explain};
use serde_json::json;

/// The group key both daemons run with (64 hex digits: no Argon2 to wait for).
const SECRET: &str = "5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de";

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
    // `b` was written here and no peer ever acknowledged it: dropping it
    // would lose it, so it stays.
    assert_eq!(set["dropped"], 0);
    let listed = n.run(&["--json", "partial", "ls"]).ok().json();
    assert_eq!(
        listed,
        json!({"filters": [{"collection": "notes", "filter": "owner = \"bo\""}]})
    );
    n.run(&["get", "notes", "a"]).ok();
    n.run(&["get", "notes", "b"]).ok();

    n.run(&["partial", "rm", "notes"]).ok();
    let listed = n.run(&["--json", "partial", "ls"]).ok().json();
    assert_eq!(listed, json!({"filters": []}));
}

#[test]
fn diff_of_a_filtered_collection_covers_what_the_filter_admits() {
    let a = Node::init();
    let b = Node::init();
    b.run(&["partial", "set", "notes", r#"owner = "bo""#]).ok();
    for (id, who) in [("a1", "al"), ("a2", "al"), ("b1", "bo"), ("b2", "bo")] {
        a.run(&["put", "notes", id, &format!(r#"{{"owner": "{who}"}}"#)])
            .ok();
    }
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&["--peer", da.address()], Some(SECRET));
    let (pa, pb) = (da.peer_id().to_string(), db.peer_id().to_string());
    wait_or_explain(
        "B to hold the matching notes",
        || {
            let connected = state_of(&b.peers(), &pa).as_deref() == Some("connected");
            (connected && b.run(&["get", "notes", "b2"]).code == 0).then_some(())
        },
        || format!("A:\n{}\nB:\n{}", da.log(), db.log()),
    );
    b.run(&["get", "notes", "a1"]).code(1);
    // From the partial device and from the full peer alike: in sync over
    // the two records the filter covers.
    let text = b.run(&["diff", &pa, "notes"]).ok();
    assert!(
        text.stdout.contains("notes is in sync with")
            && text
                .stdout
                .contains("over the 2 records its partial filter covers"),
        "{}",
        text.stdout
    );
    let report = b.run(&["--json", "diff", &pa, "notes"]).ok().json();
    assert_eq!(report["collections"][0]["counts"]["total"], 0, "{report}");
    assert_eq!(
        report["collections"][0]["filtered"],
        json!({"peer": 2, "local": 2}),
        "{report}"
    );
    let back = a.run(&["--json", "diff", &pb, "notes"]).ok().json();
    assert_eq!(back["collections"][0]["counts"]["total"], 0, "{back}");
    assert_eq!(
        back["collections"][0]["filtered"],
        json!({"peer": 2, "local": 2})
    );
}
