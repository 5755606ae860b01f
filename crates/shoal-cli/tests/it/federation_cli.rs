//! End-to-end tests of the federation commands — `diff`, `pull`, `push` and
//! `share` — with real `shoal serve` processes on loopback (random ports,
//! mDNS off) in temporary data directories.
//!
//! Daemons sync on their own, so differences are made with sharing rules: a
//! node that does not send a collection to a peer keeps its changes to it.
#![cfg(unix)]

use crate::common;

use common::{Node, Run, state_of, wait_or_explain};
use serde_json::{Value, json};

/// The group key both daemons run with (64 hex digits: no Argon2 to wait for).
const SECRET: &str = "5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de";

/// A well-formed peer id of no running node.
const STRANGER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

fn rows(report: &Value) -> Vec<(String, String)> {
    report["collections"][0]["records"]
        .as_array()
        .expect("a records array")
        .iter()
        .map(|row| {
            (
                row["id"].as_str().unwrap().to_string(),
                row["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(id: &str, status: &str) -> (String, String) {
    (id.to_string(), status.to_string())
}

fn assert_stderr(run: &Run, text: &str) {
    assert!(
        run.stderr.contains(text),
        "stderr lacks {text:?}\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

fn assert_stdout(run: &Run, text: &str) {
    assert!(
        run.stdout.contains(text),
        "stdout lacks {text:?}\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn diff_pull_push_and_share_between_two_daemons() {
    let a = Node::init();
    let b = Node::init();
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&["--peer", da.address()], Some(SECRET));
    let (pa, pb) = (da.peer_id().to_string(), db.peer_id().to_string());
    wait_or_explain(
        "both daemons to show each other connected",
        || {
            let on_a = state_of(&a.peers(), &pb);
            let on_b = state_of(&b.peers(), &pa);
            (on_a.as_deref() == Some("connected") && on_b.as_deref() == Some("connected"))
                .then_some(())
        },
        || format!("A:\n{}\nB:\n{}", da.log(), db.log()),
    );

    // A takes `tasks` from B but sends it nothing; `diary` flows neither way.
    let set = a.run(&["share", &pb, "tasks", "--receive"]).ok();
    assert_stdout(&set, "receive");
    // Any start of a peer id only one known peer's has names that peer.
    a.run(&["share", &pb[..14], "diary", "--none"]).ok();
    let list = a.run(&["share", "--list"]).ok();
    assert!(list.stdout.starts_with("PEER"), "{}", list.stdout);
    let line = |collection: &str| {
        list.stdout
            .lines()
            .find(|l| l.contains(collection))
            .unwrap_or_else(|| panic!("no rule for {collection}: {}", list.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("tasks"), format!("{pb} tasks receive"));
    assert_eq!(line("diary"), format!("{pb} diary none"));
    let rules = a.run(&["--json", "share", "--list"]).ok().json();
    assert_eq!(rules["rules"].as_array().unwrap().len(), 2, "{rules}");
    assert!(
        rules["rules"]
            .as_array()
            .unwrap()
            .contains(&json!({"peer": pb, "collection": "tasks", "mode": "receive"})),
        "{rules}"
    );

    // B's records reach A as usual...
    b.run(&["put", "tasks", "r1", r#"{"title": "one"}"#]).ok();
    b.run(&["put", "tasks", "r2", r#"{"title": "two"}"#]).ok();
    b.run(&["put", "notes", "n1", r#"{"text": "hi"}"#]).ok();
    for (collection, id) in [("tasks", "r1"), ("tasks", "r2"), ("notes", "n1")] {
        wait_or_explain(
            &format!("{collection}/{id} to reach A"),
            || (a.run(&["get", collection, id]).code == 0).then_some(()),
            || format!("A:\n{}\nB:\n{}", da.log(), db.log()),
        );
    }
    // ...but A's changes to `tasks` and `diary` stay on A.
    a.run(&["put", "tasks", "a1", r#"{"title": "mine"}"#]).ok();
    a.run(&["put", "tasks", "a2", r#"{"title": "also mine"}"#])
        .ok();
    a.run(&["patch", "tasks", "r1", r#"{"done": true}"#]).ok();
    a.run(&["del", "tasks", "r2"]).ok();
    // Deleted here and never seen there: deleted on both sides, not listed.
    a.run(&["put", "tasks", "a3", r#"{"title": "gone"}"#]).ok();
    a.run(&["del", "tasks", "a3"]).ok();
    a.run(&["put", "diary", "d1", r#"{"text": "dear diary"}"#])
        .ok();

    // The report for one collection: counts and every differing record.
    let report = a.run(&["--json", "diff", &pb, "tasks"]).ok().json();
    assert_eq!(report["peer"], pb.as_str());
    assert_eq!(report["collections"][0]["collection"], "tasks");
    assert_eq!(
        report["collections"][0]["counts"],
        json!({"local_only": 2, "peer_only": 1, "diverged": 1, "assets_missing": 0, "total": 4}),
        "{report}"
    );
    assert_eq!(
        rows(&report),
        vec![
            pair("a1", "local-only"),
            pair("a2", "local-only"),
            pair("r1", "diverged"),
            pair("r2", "peer-only"),
        ]
    );
    assert_eq!(report["collections"][0]["next"], Value::Null);
    // So does the short form `shoal peers` prints, or a prefix.
    let table = a.run(&["peers"]).ok().stdout;
    let short = table
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(short.contains('…'), "{table}");
    for given in [short, &pb[..12]] {
        let same = a.run(&["--json", "diff", given, "tasks"]).ok().json();
        assert_eq!(same["peer"], pb.as_str(), "{given}");
        assert_eq!(rows(&same), rows(&report), "{given}");
    }

    // As text, a page at a time.
    let first = a.run(&["diff", &pb, "tasks", "--limit", "3"]).ok();
    assert_stdout(&first, "tasks: 4 records differ");
    for (status, n) in [
        ("local-only", 2),
        ("peer-only", 1),
        ("diverged", 1),
        ("assets-missing", 0),
    ] {
        assert!(
            first
                .stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [status, &n.to_string()]),
            "no count line for {status}: {}",
            first.stdout
        );
    }
    let table: Vec<Vec<&str>> = first
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("ID"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table,
        vec![
            vec!["a1", "local-only"],
            vec!["a2", "local-only"],
            vec!["r1", "diverged"]
        ]
    );
    assert_stderr(&first, "--limit 3 --after r1");
    let second = a
        .run(&["diff", &pb, "tasks", "--limit", "3", "--after", "r1"])
        .ok();
    assert!(second.stdout.contains("r2  peer-only"), "{}", second.stdout);
    assert!(!second.stdout.contains("a1"), "{}", second.stdout);
    assert!(!second.stderr.contains("--after"), "{}", second.stderr);
    let page = a
        .run(&[
            "--json", "diff", &pb, "tasks", "--limit", "2", "--after", "a1",
        ])
        .ok()
        .json();
    assert_eq!(
        rows(&page),
        vec![pair("a2", "local-only"), pair("r1", "diverged")]
    );
    assert_eq!(page["collections"][0]["next"], "r1");

    // Every collection A has: one line each; `diary` cannot be compared.
    let all = a.run(&["diff", &pb]).ok();
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", all.stdout);
    assert!(
        lines[0].starts_with("diary")
            && lines[0].contains("not compared")
            && lines[0].contains("local rule"),
        "{}",
        all.stdout
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "notes",
            "0",
            "local-only",
            "0",
            "peer-only",
            "0",
            "diverged",
            "0",
            "assets-missing"
        ]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        [
            "tasks",
            "2",
            "local-only",
            "1",
            "peer-only",
            "1",
            "diverged",
            "0",
            "assets-missing"
        ]
    );
    let all = a.run(&["--json", "diff", &pb]).ok().json();
    assert_eq!(
        all["collections"][0]["error"]["code"], "not-shared",
        "{all}"
    );
    assert_eq!(all["collections"][1]["counts"]["total"], 0, "{all}");
    assert_eq!(all["collections"][2]["counts"]["total"], 4, "{all}");
    let in_sync = a.run(&["diff", &pb, "notes"]).ok();
    assert_stdout(&in_sync, "notes is in sync");

    // B cannot compare `tasks`: A does not send it to B.
    let refused = b.run(&["diff", &pa, "tasks"]).code(4);
    assert_stderr(&refused, "not shared with you");
    // Nor pull from A, and A's own rule stops A pushing.
    let refused = b.run(&["pull", &pa, "tasks", "a1"]).code(4);
    assert_stderr(&refused, "not shared with you");
    let refused = a.run(&["push", &pb, "tasks", "a1"]).code(4);
    assert_stderr(&refused, "local rule");

    // Once A sends `tasks`, records move one at a time, idempotently (or
    // already moved: A asks B to level `tasks` as the rule widens).
    a.run(&["share", &pb, "tasks", "--both"]).ok();
    let pushed = a.run(&["push", &pb, "tasks", "a1"]).ok();
    assert!(
        [": merged", ": already in sync"]
            .iter()
            .any(|end| pushed.stdout.trim() == format!("push tasks/a1 to {pb}{end}")),
        "{}",
        pushed.stdout
    );
    assert_eq!(
        b.run(&["get", "tasks", "a1"]).ok().json(),
        json!({"title": "mine"})
    );
    let again = a.run(&["push", &pb, "tasks", "a1"]).ok();
    assert_stdout(&again, "already in sync");
    let pulled = b.run(&["pull", &pa[..16], "tasks", "a2"]).ok();
    assert!(
        [": merged", ": already in sync"]
            .iter()
            .any(|end| pulled.stdout.trim() == format!("pull tasks/a2 from {pa}{end}")),
        "{}",
        pulled.stdout
    );
    assert_eq!(
        b.run(&["get", "tasks", "a2"]).ok().json(),
        json!({"title": "also mine"})
    );
    let again = b.run(&["--json", "pull", &pa, "tasks", "a2"]).ok().json();
    assert_eq!(
        again,
        json!({"result": "already-in-sync", "reason": "already in sync", "ok": true})
    );

    // Records nobody has.
    let missing = a.run(&["pull", &pb, "tasks", "nope"]).code(1);
    assert_stderr(&missing, "peer does not have it");
    let missing = a.run(&["--json", "pull", &pb, "tasks", "nope"]).code(1);
    assert_eq!(missing.json()["result"], "peer-does-not-have-it");
    assert_eq!(missing.json()["ok"], false);
    let missing = a.run(&["push", &pb, "tasks", "nope"]).code(1);
    assert_stderr(&missing, "not found on this node");

    // A peer that is not connected answers at once: unreachable.
    let gone = a.run(&["pull", STRANGER, "tasks", "a1"]).code(4);
    assert_stderr(&gone, "peer unreachable");
    let gone = a.run(&["diff", STRANGER, "tasks"]).code(4);
    assert_stderr(&gone, "peer unreachable");
    let gone = a.run(&["diff", STRANGER]).code(4);
    assert_stderr(&gone, "peer unreachable");

    // A prefix two known peers share is ambiguous, one none has unknown:
    // usage errors naming the candidates (a rule makes STRANGER known).
    a.run(&["share", STRANGER, "scratch", "--none"]).ok();
    let ambiguous = a.run(&["diff", "12D3KooW", "tasks"]).code(2);
    assert_stderr(&ambiguous, "ambiguous");
    assert_stderr(&ambiguous, &pb);
    assert_stderr(&ambiguous, STRANGER);
    let unknown = a.run(&["pull", "12D3KooWzzzzzzzz", "tasks", "a1"]).code(2);
    assert_stderr(&unknown, "nor the start of a known one");
    assert_stderr(&unknown, &pb);

    // Bad input is refused before the daemon is asked.
    let bad = a.run(&["pull", "not-a-peer", "tasks", "a1"]).code(2);
    assert_stderr(&bad, "not a peer id");
    a.run(&["push", &pb, "no spaces", "a1"]).code(2);
    a.run(&["pull", &pb, "tasks", "bad/id"]).code(2);
    a.run(&["diff", &pb, "tasks", "--limit", "0"]).code(2);
    a.run(&["diff", &pb, "tasks", "--after", "bad/id"]).code(2);

    // What was left — the edits A made to B's records — levels on its own:
    // A's rule now lets `tasks` flow both ways, so each side walks it.
    let started = std::time::Instant::now();
    loop {
        let report = a.run(&["--json", "diff", &pb, "tasks"]).ok().json();
        if rows(&report).is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never levelled: {report}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop((da, db));
}

#[test]
fn share_works_without_a_daemon_and_bad_input_is_a_usage_error() {
    let n = Node::init();
    let empty = n.run(&["share", "--list"]).ok();
    assert!(empty.stdout.is_empty(), "{}", empty.stdout);
    assert_stderr(&empty, "no sharing rules");

    let set = n.run(&["share", STRANGER, "inbox", "--send"]).ok();
    assert_stdout(&set, "inbox with");
    // The rule's peer is known now: a prefix of its id names it.
    n.run(&["share", &STRANGER[..14], "inbox", "--none"]).ok();
    let list = n.run(&["--json", "share", "--list"]).ok().json();
    assert_eq!(
        list,
        json!({
            "default": "both",
            "local_only": [],
            "rules": [{"peer": STRANGER, "collection": "inbox", "mode": "none"}],
        })
    );

    // `*`: the rule for every peer without one of its own, as the API's.
    let every = n.run(&["share", "*", "diary", "--none"]).ok();
    assert_stdout(&every, "every peer");
    let list = n.run(&["--json", "share", "--list"]).ok().json();
    assert!(
        list["rules"]
            .as_array()
            .unwrap()
            .contains(&json!({"peer": "*", "collection": "diary", "mode": "none"})),
        "{list}"
    );
    n.run(&["share", "*", "diary", "--both"]).ok();

    // Local-only marks show in the list and can be lifted.
    let marked = n.run(&["local-only", "scratch"]).ok();
    assert_stdout(&marked, "scratch: local-only");
    let list = n.run(&["--json", "share", "--list"]).ok().json();
    assert_eq!(list["local_only"], json!(["scratch"]));
    n.run(&["local-only", "scratch", "--off"]).ok();
    let list = n.run(&["--json", "share", "--list"]).ok().json();
    assert_eq!(list["local_only"], json!([]));
    n.run(&["local-only", "bad name"]).code(2);

    // Exactly one mode, PEER and COLLECTION valid; --list alone.
    let bad = n.run(&["share", "not-a-peer", "inbox", "--send"]).code(2);
    assert_stderr(&bad, "not a peer id");
    n.run(&["share", STRANGER, "no spaces", "--send"]).code(2);
    n.run(&["share", STRANGER, "inbox"]).code(2);
    n.run(&["share", STRANGER, "inbox", "--send", "--none"])
        .code(2);
    n.run(&["share", "--list", STRANGER]).code(2);
    n.run(&["share", STRANGER, "--send"]).code(2);

    // Federation needs a daemon; input is checked first.
    n.run(&["pull", "not-a-peer", "tasks", "t1"]).code(2);
    n.run(&["diff", STRANGER, "bad name"]).code(2);
    for args in [
        vec!["diff", STRANGER],
        vec!["diff", STRANGER, "tasks"],
        vec!["pull", STRANGER, "tasks", "t1"],
        vec!["push", STRANGER, "tasks", "t1"],
    ] {
        let none = n.run(&args).code(4);
        assert_stderr(&none, "no daemon is running");
    }
}
