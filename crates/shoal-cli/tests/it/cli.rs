//! End-to-end tests of the `shoal` binary's record commands: each runs the
//! built executable against a fresh temporary data directory and checks
//! stdout, stderr and the exit code of `init`, `put` (argument or stdin),
//! `get`, `patch`, `del`, `ls` and `query`.

use serde_json::{Value, json};

use crate::cli_support;
use cli_support::{Run, Shoal};

#[test]
fn init_creates_a_private_directory_and_is_idempotent() {
    let s = Shoal::new();
    let first = s.run(&["--json", "init"]).ok().json();
    assert_eq!(first["created"], true);
    assert!(first["peer_id"].as_str().unwrap().starts_with("12D3"));
    assert_eq!(first["site_id"].as_str().unwrap().len(), 16);
    assert!(s.db().is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let again = s.run(&["--json", "init"]).ok().json();
    assert_eq!(again["created"], false);
    assert_eq!(again["site_id"], first["site_id"]);
    assert_eq!(again["peer_id"], first["peer_id"]);

    let text = s.run(&["init"]).ok();
    assert!(text.stdout.contains("peer id"), "{}", text.stdout);
    assert!(text.stdout.contains(first["site_id"].as_str().unwrap()));
}

#[test]
fn put_get_roundtrip() {
    let s = Shoal::init();
    let put = s
        .run(&[
            "put",
            "tasks",
            "t1",
            r#"{"title": "buy milk", "done": false}"#,
        ])
        .ok();
    assert!(put.stdout.contains("tasks/t1"), "{}", put.stdout);
    let got = s.run(&["get", "tasks", "t1"]).ok().json();
    assert_eq!(got, json!({"title": "buy milk", "done": false}));

    // Put replaces: fields not given are removed.
    s.run(&["put", "tasks", "t1", r#"{"title": "buy oat milk"}"#])
        .ok();
    assert_eq!(
        s.run(&["get", "tasks", "t1"]).ok().json(),
        json!({"title": "buy oat milk"})
    );

    // An unchanged put writes nothing.
    let same = s
        .run(&[
            "--json",
            "put",
            "tasks",
            "t1",
            r#"{"title": "buy oat milk"}"#,
        ])
        .ok()
        .json();
    // The HTTP API's write reply: nothing changed, no version, no clock.
    assert_eq!(
        same,
        json!({"collection": "tasks", "id": "t1", "db_version": null, "clock": null})
    );
}

#[test]
fn put_reads_stdin_when_json_is_omitted_or_dash() {
    let s = Shoal::init();
    s.run_stdin(&["put", "notes", "n1"], Some(r#"{"text": "from stdin"}"#))
        .ok();
    s.run_stdin(
        &["put", "notes", "n2", "-"],
        Some("{\n  \"text\": \"dash\"\n}\n"),
    )
    .ok();
    assert_eq!(
        s.run(&["get", "notes", "n1"]).ok().json(),
        json!({"text": "from stdin"})
    );
    assert_eq!(
        s.run(&["get", "notes", "n2"]).ok().json(),
        json!({"text": "dash"})
    );
    // Empty stdin is invalid JSON.
    let empty = s.run_stdin(&["put", "notes", "n3"], Some("")).code(2);
    assert!(empty.stderr.contains("invalid JSON"), "{}", empty.stderr);
}

#[test]
fn patch_merges_fields_and_null_removes() {
    let s = Shoal::init();
    s.run(&[
        "put",
        "tasks",
        "t1",
        r#"{"title": "a", "done": false, "note": "x"}"#,
    ])
    .ok();
    s.run(&["patch", "tasks", "t1", r#"{"done": true, "note": null}"#])
        .ok();
    assert_eq!(
        s.run(&["get", "tasks", "t1"]).ok().json(),
        json!({"title": "a", "done": true})
    );
    s.run_stdin(&["patch", "tasks", "t1"], Some(r#"{"prio": 2}"#))
        .ok();
    assert_eq!(s.run(&["get", "tasks", "t1"]).ok().json()["prio"], 2);

    // Patching a record that does not exist is "not found".
    let missing = s.run(&["patch", "tasks", "nope", r#"{"a": 1}"#]).code(1);
    assert!(missing.stderr.starts_with("error: "), "{}", missing.stderr);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
}

#[test]
fn map_entries_are_set_and_removed_with_their_clock() {
    let s = Shoal::init();
    // Setting creates the record; the reply carries the write's clock.
    let set = s
        .run(&[
            "--json", "map", "set", "notes", "n1", "tags", "work", "true",
        ])
        .ok()
        .json();
    let version = set["db_version"].as_u64().expect("a db_version");
    let clock = set["clock"].as_str().expect("a clock").to_string();
    assert_eq!(set["collection"], "notes");
    assert_eq!(set["id"], "n1");
    let status = s.run(&["--json", "status"]).ok().json();
    assert_eq!(status["db_version"], version, "{status}");
    assert!(
        clock.ends_with(&format!("@{}", status["site_id"].as_str().unwrap())),
        "{clock}"
    );
    // The clock is the one the log holds for the entry.
    let log = s.run(&["--json", "log"]).ok().json();
    let entry = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slot"] == "entry" && c["key"] == "work")
        .expect("the entry in the log")
        .clone();
    assert_eq!(entry["clock"], clock.as_str(), "{entry}");

    // VALUE from stdin; text output names the entry.
    let text = s
        .run_stdin(
            &["map", "set", "notes", "n1", "tags", "idea", "-"],
            Some("{\"n\": 2}"),
        )
        .ok();
    assert!(
        text.stdout.contains(".tags[idea]") && text.stdout.contains("notes/n1"),
        "{}",
        text.stdout
    );
    assert_eq!(
        s.run(&["get", "notes", "n1"]).ok().json(),
        json!({"tags": {"work": true, "idea": {"n": 2}}})
    );

    // Removing: the entry goes; removing it again changes nothing.
    let removed = s
        .run(&["--json", "map", "rm", "notes", "n1", "tags", "work"])
        .ok()
        .json();
    assert!(removed["db_version"].as_u64().unwrap() > version);
    assert_ne!(removed["clock"], set["clock"]);
    assert_eq!(
        s.run(&["get", "notes", "n1"]).ok().json(),
        json!({"tags": {"idea": {"n": 2}}})
    );
    let again = s
        .run(&["--json", "map", "rm", "notes", "n1", "tags", "work"])
        .ok()
        .json();
    assert_eq!(again["db_version"], Value::Null);
    assert_eq!(again["clock"], Value::Null);

    // Refusals: no live record to remove from (1), bad names and JSON (2).
    s.run(&["map", "rm", "notes", "absent", "tags", "x"])
        .code(1);
    s.run(&["map", "set", "notes", "n1", "tags", "k", "{not json"])
        .code(2);
    s.run(&["map", "set", "notes", "bad/id", "tags", "k", "1"])
        .code(2);
    s.run(&["map", "set", "bad name", "n1", "tags", "k", "1"])
        .code(2);
    s.run(&["map", "set", "notes", "n1", "", "k", "1"]).code(2);
}

#[test]
fn del_then_get_is_not_found() {
    let s = Shoal::init();
    s.run(&["put", "tasks", "t1", r#"{"a": 1}"#]).ok();
    let del = s.run(&["--json", "del", "tasks", "t1"]).ok().json();
    assert!(del["db_version"].as_u64().is_some(), "{del}");
    assert!(del["clock"].as_str().is_some(), "{del}");
    let get = s.run(&["get", "tasks", "t1"]).code(1);
    assert!(get.stdout.is_empty());
    assert!(
        get.stderr.contains("error: record tasks/t1 not found"),
        "{}",
        get.stderr
    );
    // Deleting again, or a record that never existed: not found.
    s.run(&["del", "tasks", "t1"]).code(1);
    s.run(&["rm", "tasks", "never"]).code(1);
    // A put after the delete starts a new life.
    s.run(&["put", "tasks", "t1", r#"{"a": 2}"#]).ok();
    assert_eq!(s.run(&["get", "tasks", "t1"]).ok().json(), json!({"a": 2}));
}

#[test]
fn ls_paginates_with_after() {
    let s = Shoal::init();
    for i in 1..=5 {
        s.run(&[
            "put",
            "tasks",
            &format!("t{i}"),
            &format!(r#"{{"n": {i}}}"#),
        ])
        .ok();
    }
    s.run(&["put", "tasks", "x1", r#"{"n": 9}"#]).ok();

    let first = s
        .run(&["ls", "tasks", "--prefix", "t", "--limit", "2"])
        .ok();
    assert_eq!(first.lines(), [r#"t1  {"n":1}"#, r#"t2  {"n":2}"#]);
    assert!(
        first.stderr.contains("--after t2"),
        "hint missing: {}",
        first.stderr
    );
    assert!(first.stderr.contains("--prefix t"), "{}", first.stderr);

    let second = s
        .run(&[
            "ls", "tasks", "--prefix", "t", "--limit", "2", "--after", "t2",
        ])
        .ok();
    assert_eq!(second.lines(), [r#"t3  {"n":3}"#, r#"t4  {"n":4}"#]);
    assert!(second.stderr.contains("--after t4"));

    let last = s
        .run(&[
            "ls", "tasks", "--prefix", "t", "--limit", "2", "--after", "t4",
        ])
        .ok();
    assert_eq!(last.lines(), [r#"t5  {"n":5}"#]);
    assert!(
        last.stderr.is_empty(),
        "no hint on the last page: {}",
        last.stderr
    );

    let json = s
        .run(&["--json", "ls", "tasks", "--limit", "4"])
        .ok()
        .json();
    assert_eq!(json["records"].as_array().unwrap().len(), 4);
    assert_eq!(json["records"][0], json!({"id": "t1", "value": {"n": 1}}));
    assert_eq!(json["next"], "t4");
    let rest = s
        .run(&["--json", "ls", "tasks", "--limit", "4", "--after", "t4"])
        .ok()
        .json();
    assert_eq!(rest["records"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next"], Value::Null);

    // Default limit is 50, bounds are checked.
    s.run(&["ls", "tasks", "--limit", "0"]).code(2);
    s.run(&["ls", "tasks", "--limit", "10001"]).code(2);
    s.run(&["ls", "tasks", "--after", "not valid"]).code(2);
}

#[test]
fn ls_without_collection_lists_collections_with_counts() {
    let s = Shoal::init();
    s.run(&["put", "tasks", "t1", "{}"]).ok();
    s.run(&["put", "tasks", "t2", "{}"]).ok();
    s.run(&["put", "notes", "n1", "{}"]).ok();
    s.run(&["del", "tasks", "t2"]).ok();
    let text = s.run(&["ls"]).ok();
    assert_eq!(
        text.lines(),
        ["notes  1 live  0 deleted", "tasks  1 live  1 deleted"]
    );
    let json = s.run(&["--json", "ls"]).ok().json();
    assert_eq!(
        json["collections"],
        json!([
            {"name": "notes", "live": 1, "deleted": 0},
            {"name": "tasks", "live": 1, "deleted": 1},
        ])
    );
}

#[test]
fn query_filters_orders_and_limits() {
    let s = Shoal::init();
    for (id, due, done) in [
        ("a", 3, false),
        ("b", 1, true),
        ("c", 2, false),
        ("d", 5, false),
    ] {
        s.run(&[
            "put",
            "tasks",
            id,
            &json!({"due": due, "done": done}).to_string(),
        ])
        .ok();
    }
    let ids = |run: Run| -> Vec<String> {
        run.json()["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let open = s
        .run(&[
            "--json",
            "query",
            "tasks",
            "--eq",
            "done=false",
            "--order",
            "due",
        ])
        .ok();
    assert_eq!(ids(open), ["c", "a", "d"]);
    let range = s
        .run(&[
            "--json", "query", "tasks", "--range", "due=2..5", "--order", "due:desc",
        ])
        .ok();
    assert_eq!(ids(range), ["a", "c"]);
    let limited = s
        .run(&["--json", "query", "tasks", "--order", "due", "--limit", "1"])
        .ok();
    assert_eq!(ids(limited), ["b"]);
    let text = s.run(&["query", "tasks", "--range", "due=..2"]).ok();
    assert_eq!(text.lines(), [r#"b  {"done":true,"due":1}"#]);

    let bad = s.run(&["query", "tasks", "--eq", "title=milk"]).code(2);
    assert!(bad.stderr.contains("not JSON"), "{}", bad.stderr);
}
