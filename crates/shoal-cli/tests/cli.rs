//! End-to-end tests of the `shoal` binary: each runs the built executable
//! against a fresh temporary data directory and checks stdout, stderr and the
//! exit code.

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A temporary data directory and the binary pointed at it.
struct Shoal {
    _tmp: tempfile::TempDir,
    data: PathBuf,
}

impl Shoal {
    /// A data directory that does not exist yet.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        Self { _tmp: tmp, data }
    }

    /// A data directory with an initialized database.
    fn init() -> Self {
        let s = Self::new();
        s.run(&["init"]).ok();
        s
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
        cmd.env_remove("SHOAL_DATA")
            .env("HOME", self.data.parent().unwrap())
            .env_remove("XDG_DATA_HOME")
            .arg("--data")
            .arg(&self.data);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn shoal");
        {
            let mut pipe = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code().expect("exited by signal"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        assert!(
            !run.stderr.contains("panicked"),
            "the binary panicked: {}",
            run.stderr
        );
        run
    }

    fn db(&self) -> PathBuf {
        self.data.join("shoal.db")
    }
}

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
    assert_eq!(same["changed"], false);
    assert_eq!(same["version"], Value::Null);
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
fn del_then_get_is_not_found() {
    let s = Shoal::init();
    s.run(&["put", "tasks", "t1", r#"{"a": 1}"#]).ok();
    let del = s.run(&["--json", "del", "tasks", "t1"]).ok().json();
    assert_eq!(del["changed"], true);
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
fn log_since_a_version() {
    let s = Shoal::init();
    let v1 = s
        .run(&["--json", "put", "tasks", "a", r#"{"x": 1}"#])
        .ok()
        .json()["version"]
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
    let clock = &later[0]["clock"];
    assert!(clock["wall_ms"].as_u64().unwrap() > 0);
    assert_eq!(clock["site"].as_str().unwrap().len(), 16);

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
fn status_counts_records_per_collection() {
    let s = Shoal::init();
    let site = s.run(&["--json", "init"]).ok().json()["site_id"].clone();
    s.run(&["put", "tasks", "t1", r#"{"a": 1}"#]).ok();
    s.run(&["put", "tasks", "t2", r#"{"a": 2}"#]).ok();
    s.run(&["put", "tasks", "t3", r#"{"a": 3}"#]).ok();
    let last = s.run(&["--json", "del", "tasks", "t3"]).ok().json()["version"].clone();
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

#[test]
fn every_command_has_help_with_examples() {
    let s = Shoal::new();
    for cmd in [
        "init", "put", "patch", "get", "del", "ls", "query", "log", "status", "serve", "invite",
        "join", "peers", "sync", "demo", "diff", "pull", "push", "share",
    ] {
        let help = s.run(&[cmd, "--help"]).ok();
        assert!(help.stdout.contains("Examples:"), "{cmd}: {}", help.stdout);
    }
    let top = s.run(&["--help"]).ok();
    assert!(top.stdout.contains("Exit codes"));
}
