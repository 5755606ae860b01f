//! End-to-end tests of what the `shoal` binary reports: each runs the built
//! executable against a fresh temporary data directory and checks stdout,
//! stderr and the exit code of `log`, `status`, every `--json` output and
//! every command's `--help`.

use serde_json::{Value, json};

use crate::cli_support;
use cli_support::Shoal;

#[test]
fn log_since_a_version() {
    let s = Shoal::init();
    let v1 = s
        .run(&["--json", "put", "tasks", "a", r#"{"x": 1}"#])
        .ok()
        .json()["db_version"]
        .as_u64()
        .unwrap();
    s.run(&["put", "tasks", "b", r#"{"y": "two"}"#]).ok();
    s.run(&["del", "tasks", "a"]).ok();

    let all = s.run(&["--json", "log"]).ok().json();
    let changes = all["changes"].as_array().unwrap();
    assert!(changes.len() >= 3, "{all}");
    assert_eq!(all["next"], Value::Null);

    let since = v1.to_string();
    let later = s.run(&["--json", "log", "--since", &since]).ok().json();
    let later = later["changes"].as_array().unwrap();
    assert!(!later.is_empty());
    assert!(later.iter().all(|c| c["version"].as_u64().unwrap() > v1));
    // b's field, b's life, and a's delete (as a life change to an even life).
    assert!(later.iter().any(|c| c["id"] == "b"
        && c["slot"] == "field"
        && c["field"] == "y"
        && c["value"] == "two"));
    assert!(
        later.iter().any(|c| c["id"] == "a"
            && c["slot"] == "life"
            && c["alive"] == false
            && c["life"] == 2)
    );
    // A clock as everywhere: `WALL_MS.COUNTER@SITE`, wall time and site beside.
    let change = &later[0];
    let wall_ms = change["wall_ms"].as_u64().unwrap();
    let site = change["site"].as_str().unwrap();
    assert!(wall_ms > 0);
    assert_eq!(site.len(), 16);
    let clock = change["clock"].as_str().unwrap();
    assert!(
        clock.starts_with(&format!("{wall_ms}.")) && clock.ends_with(&format!("@{site}")),
        "{change}"
    );

    // Text: one line per change, after the version given.
    let text = s.run(&["log", "--since", &since]).ok();
    assert_eq!(text.lines().len(), later.len());
    assert!(
        text.stdout.contains("tasks/b  .y  \"two\""),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("tasks/a  life  deleted"),
        "{}",
        text.stdout
    );

    // --limit stops early (at a record boundary: b's two slots stay together)
    // and says where to resume; resuming continues exactly.
    let first = s.run(&["--json", "log", "--limit", "1"]).ok();
    let shown = first.json()["changes"].as_array().unwrap().len();
    assert_eq!(shown, 2, "{}", first.stdout);
    let next = first.json()["next"].as_str().unwrap().to_string();
    assert!(
        first.stderr.contains(&format!("--since {next}")),
        "{}",
        first.stderr
    );
    let rest = s.run(&["--json", "log", "--since", &next]).ok().json();
    assert_eq!(
        rest["changes"].as_array().unwrap().len(),
        changes.len() - shown
    );
    assert_eq!(rest["changes"][0], changes[shown]);

    s.run(&["log", "--since", "abc"]).code(2);
}

#[test]
fn log_limit_counts_changes_and_never_splits_a_record() {
    let s = Shoal::init();
    // Four records of two changes each (the life and one field).
    for id in ["r1", "r2", "r3", "r4"] {
        s.run(&["put", "tasks", id, r#"{"a": 1}"#]).ok();
    }
    let all = s.run(&["--json", "log"]).ok().json()["changes"].clone();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 8, "{all:?}");
    for limit in 1..=9usize {
        let mut since = "0".to_string();
        let mut seen = Vec::new();
        loop {
            let run = s
                .run(&[
                    "--json",
                    "log",
                    "--since",
                    &since,
                    "--limit",
                    &limit.to_string(),
                ])
                .ok();
            let page = run.json();
            let changes = page["changes"].as_array().unwrap().clone();
            // At most --limit changes, whole records only; a first record
            // bigger than the limit is listed whole.
            assert!(
                changes.len() <= limit.max(2),
                "--limit {limit} listed {}: {}",
                changes.len(),
                run.stdout
            );
            assert_eq!(changes.len() % 2, 0, "a record was split: {}", run.stdout);
            // A cut page is as full as whole records allow.
            if limit >= 2 && !page["next"].is_null() {
                assert!(changes.len() + 2 > limit, "{}", run.stdout);
            }
            // Text lists the same number of lines.
            let text = s
                .run(&["log", "--since", &since, "--limit", &limit.to_string()])
                .ok();
            assert_eq!(text.lines().len(), changes.len(), "{}", text.stdout);
            seen.extend(changes);
            match page["next"].as_str() {
                Some(next) => since = next.to_string(),
                None => break,
            }
        }
        assert_eq!(
            &seen, all,
            "--limit {limit}: paging lost or repeated changes"
        );
    }
}

#[test]
fn status_counts_records_per_collection() {
    let s = Shoal::init();
    let site = s.run(&["--json", "init"]).ok().json()["site_id"].clone();
    s.run(&["put", "tasks", "t1", r#"{"a": 1}"#]).ok();
    s.run(&["put", "tasks", "t2", r#"{"a": 2}"#]).ok();
    s.run(&["put", "tasks", "t3", r#"{"a": 3}"#]).ok();
    let last = s.run(&["--json", "del", "tasks", "t3"]).ok().json()["db_version"].clone();
    s.run(&["put", "notes", "n1", "{}"]).ok();

    let status = s.run(&["--json", "status"]).ok().json();
    assert_eq!(status["site_id"], site);
    assert!(status["peer_id"].as_str().unwrap().starts_with("12D3"));
    assert_eq!(status["db_version"], last.as_u64().unwrap() + 1);
    assert_eq!(
        status["collections"],
        json!([
            {"name": "notes", "live": 1, "deleted": 0},
            {"name": "tasks", "live": 2, "deleted": 1},
        ])
    );

    let text = s.run(&["status"]).ok().stdout;
    assert!(text.contains(site.as_str().unwrap()), "{text}");
    assert!(text.contains("tasks  2 live  1 deleted"), "{text}");
}

#[test]
fn every_json_output_is_one_json_document() {
    let s = Shoal::new();
    let commands: &[&[&str]] = &[
        &["init"],
        &["put", "tasks", "t1", r#"{"due": 2, "done": false}"#],
        &["patch", "tasks", "t1", r#"{"done": true}"#],
        &["get", "tasks", "t1"],
        &["ls", "tasks"],
        &["ls"],
        &["query", "tasks", "--eq", "done=true"],
        &["log"],
        &["log", "--limit", "1"],
        &["status"],
        &["del", "tasks", "t1"],
        &["log", "--since", "1000"],
    ];
    for args in commands {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let run = s.run(&full).ok();
        let _: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{}", run.stdout));
    }
}

#[test]
fn every_command_has_help_with_examples() {
    let s = Shoal::new();
    for cmd in [
        "init", "put", "patch", "get", "del", "ls", "query", "log", "status", "serve", "invite",
        "join", "peers", "sync", "demo", "diff", "pull", "push", "share", "map", "backup",
        "restore", "service",
    ] {
        let help = s.run(&[cmd, "--help"]).ok();
        assert!(help.stdout.contains("Examples:"), "{cmd}: {}", help.stdout);
    }
    for sub in [
        ["map", "set"],
        ["map", "rm"],
        ["service", "install"],
        ["service", "uninstall"],
    ] {
        let help = s.run(&[sub[0], sub[1], "--help"]).ok();
        assert!(
            help.stdout.contains("Examples:"),
            "{sub:?}: {}",
            help.stdout
        );
    }
    let top = s.run(&["--help"]).ok();
    assert!(top.stdout.contains("Exit codes"));
}
