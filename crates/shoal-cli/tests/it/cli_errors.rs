//! End-to-end tests of how the `shoal` binary finds its data directory and
//! fails: each runs the built executable against a fresh temporary data
//! directory and checks stdout, stderr and the exit code for invalid input
//! (as text, and as JSON with `--json`), a missing or garbage database, and a
//! data directory from the environment or `$HOME`.

use std::path::Path;
use std::process::Command;

use crate::cli_support;
use cli_support::Shoal;

#[test]
fn invalid_input_exits_2_with_a_message() {
    let s = Shoal::init();
    let bad_id = s.run(&["put", "tasks", "bad id", "{}"]).code(2);
    assert!(bad_id.stdout.is_empty());
    assert!(
        bad_id.stderr.starts_with("error: ") && bad_id.stderr.contains("invalid record id"),
        "{}",
        bad_id.stderr
    );
    let long_id = "x".repeat(129);
    s.run(&["get", "tasks", &long_id]).code(2);
    let bad_collection = s.run(&["get", "no such", "t1"]).code(2);
    assert!(
        bad_collection.stderr.contains("invalid collection name"),
        "{}",
        bad_collection.stderr
    );
    let bad_json = s.run(&["put", "tasks", "t1", "{nope"]).code(2);
    assert!(
        bad_json.stderr.contains("invalid JSON"),
        "{}",
        bad_json.stderr
    );
    let not_object = s.run(&["put", "tasks", "t1", "[1, 2]"]).code(2);
    assert!(
        not_object.stderr.contains("must be a JSON object"),
        "{}",
        not_object.stderr
    );
    // Nothing was written by any of them.
    assert_eq!(s.run(&["--json", "status"]).ok().json()["db_version"], 0);
    // Unknown commands and flags are usage errors too.
    s.run(&["frobnicate"]).code(2);
    s.run(&["ls", "--bogus"]).code(2);
}

#[test]
fn with_json_errors_are_json_on_stderr() {
    let s = Shoal::init();
    // (arguments, exit code, the HTTP API's code for the same failure)
    let cases: &[(&[&str], i32, &str)] = &[
        (&["put", "tasks", "bad id", "{}"], 2, "invalid-id"),
        (&["get", "no such", "t1"], 2, "invalid-collection"),
        (&["put", "tasks", "t1", "{nope"], 2, "bad-request"),
        (&["put", "tasks", "t1", "[1]"], 2, "bad-request"),
        (&["get", "tasks", "t1"], 1, "not-found"),
        (&["patch", "tasks", "t1", "{}"], 1, "not-found"),
        (&["map", "rm", "tasks", "t1", "tags", "x"], 1, "not-found"),
        (&["peers"], 4, "no-daemon"),
        (&["diff", "not-a-peer"], 2, "bad-request"),
        // Usage errors clap finds.
        (&["frobnicate"], 2, "bad-request"),
        (&["ls", "--bogus"], 2, "bad-request"),
    ];
    for (args, exit, code) in cases {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let run = s.run(&full).code(*exit);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        let error: serde_json::Value = serde_json::from_str(&run.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: stderr is not JSON ({e}): {}", run.stderr));
        assert_eq!(error["code"], *code, "{args:?}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && !message.starts_with("error:"),
            "{error}"
        );
    }
    // --json after the command works too; without it errors stay text.
    let late = s.run(&["get", "tasks", "t1", "--json"]).code(1);
    assert!(late.stderr.starts_with('{'), "{}", late.stderr);
    let text = s.run(&["get", "tasks", "t1"]).code(1);
    assert!(text.stderr.starts_with("error: "), "{}", text.stderr);
}

#[test]
fn missing_database_exits_2_and_creates_nothing() {
    let s = Shoal::new();
    for args in [
        &["get", "tasks", "t1"][..],
        &["put", "tasks", "t1", "{}"],
        &["status"],
        &["log"],
        &["ls"],
    ] {
        let run = s.run(args).code(2);
        assert!(
            run.stderr.contains("shoal init"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(
        !s.data.exists(),
        "a command other than init created the data dir"
    );

    // An existing directory without a database: same, and no file appears.
    std::fs::create_dir_all(&s.data).unwrap();
    s.run(&["status"]).code(2);
    assert!(!s.db().exists());
}

#[test]
fn garbage_database_exits_3() {
    let s = Shoal::new();
    std::fs::create_dir_all(&s.data).unwrap();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(s.db(), &garbage).unwrap();
    for args in [&["status"][..], &["get", "tasks", "t1"], &["init"]] {
        let run = s.run(args).code(3);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains("not a database"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // The file was left as it was.
    assert_eq!(std::fs::read(s.db()).unwrap(), garbage);
}

#[test]
fn an_empty_database_file_exits_3_corrupt_and_is_never_made_new() {
    let s = Shoal::init();
    std::fs::write(s.db(), b"").unwrap();
    let commands: [&[&str]; 5] = [
        &["status"],
        &["get", "tasks", "t1"],
        &["put", "tasks", "t1", "{}"],
        &["check"],
        &["init"],
    ];
    for args in commands {
        let run = s.run(args).code(3);
        assert!(
            run.stderr.starts_with("error: ")
                && run.stderr.contains("corrupt")
                && run.stderr.contains("empty (0 bytes)"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // No new identity was written over it.
    assert_eq!(std::fs::metadata(s.db()).unwrap().len(), 0);
}

#[test]
fn garbage_in_a_data_page_exits_3_at_open_and_in_check() {
    let s = Shoal::init();
    {
        let store = shoal::Store::open(s.db()).unwrap();
        let items = store.collection("items").unwrap();
        for batch in 0..10 {
            items
                .put_many((0..300).map(|i| {
                    let n = batch * 300 + i;
                    (
                        format!("item:{n:05}"),
                        serde_json::json!({"n": n, "text": format!("record number {n}")}),
                    )
                }))
                .unwrap();
        }
    } // Closed: the WAL is checkpointed into the file.
    let healthy = s.run(&["check"]).ok();
    assert!(healthy.stdout.starts_with("ok: "), "{}", healthy.stdout);
    assert!(
        healthy.stderr.contains("checking pages: 100%")
            && healthy
                .stderr
                .contains("checking records: 100% (3000 of 3000)"),
        "{}",
        healthy.stderr
    );
    // Garbage over the page that holds one record's data, in the middle of
    // the file; the commands below read other records.
    const PAGE: usize = 4096;
    let mut bytes = std::fs::read(s.db()).unwrap();
    let needle = b"record number 1500\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record's data in the file");
    let page = at / PAGE;
    assert!(page > 20 && page < bytes.len() / PAGE - 20, "page {page}");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut bytes[page * PAGE..(page + 1) * PAGE] {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = (seed >> 24) as u8;
    }
    std::fs::write(s.db(), &bytes).unwrap();
    let commands: [&[&str]; 4] = [
        &["get", "items", "item:00001"],
        &["put", "items", "new", "{}"],
        &["status"],
        &["check"],
    ];
    for args in commands {
        let run = s.run(args).code(3);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains("corrupt"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Nothing was changed.
    assert_eq!(std::fs::read(s.db()).unwrap(), bytes);
}

#[test]
fn data_dir_comes_from_env_or_home() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &Path)], args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
        cmd.env_remove("SHOAL_DATA").env_remove("XDG_DATA_HOME");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.args(args).output().unwrap()
    };
    let via_env = tmp.path().join("env");
    assert!(run(&[("SHOAL_DATA", &via_env)], &["init"]).status.success());
    assert!(via_env.join("shoal.db").is_file());

    let home = tmp.path().join("home");
    assert!(run(&[("HOME", &home)], &["init"]).status.success());
    assert!(home.join(".local/share/shoal/shoal.db").is_file());

    let xdg = tmp.path().join("xdg");
    assert!(
        run(&[("HOME", &home), ("XDG_DATA_HOME", &xdg)], &["init"])
            .status
            .success()
    );
    assert!(xdg.join("shoal/shoal.db").is_file());
}
