//! Monitoring a real `shoal serve`: `/metrics` parsed by a real parser
//! (the Python `prometheus_client` package's Prometheus and OpenMetrics
//! parsers, run as a subprocess) with values that reflect a sync between
//! two daemons; the token guarding it unless `--metrics-public` on
//! loopback; `/healthz` and `/readyz` without the token; and logs, at trace
//! level and as JSON lines, that never carry the passphrase, the group key
//! or the API token.
//!
//! The parser's Python is `$SHOAL_PROMETHEUS_PYTHON` (scripts/test.sh makes a
//! virtualenv with prometheus-client and sets it), else a `python3` that
//! imports it, else one this test installs with pip into a virtualenv under
//! the target directory. Only when none can be had is the parse skipped,
//! saying so (the values are still checked from the text).
#![cfg(unix)]

use crate::common;

use common::http::Api;
use common::pypi::{PypiTool, succeeds};
use common::{Node, wait_or_explain};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SECRET: &str = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";
const OTHER_SECRET: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Parses the text with both parsers; prints every sample as a JSON line
/// `{"name", "labels", "value"}` (from the OpenMetrics parse).
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as prometheus
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
text = sys.stdin.read()
list(prometheus(text))
for family in openmetrics(text):
    for s in family.samples:
        print(json.dumps({"name": s.name, "labels": s.labels, "value": s.value}))
"#;

/// A Python that imports prometheus_client, or why there is none.
fn python() -> Result<PathBuf, String> {
    PypiTool {
        env: "SHOAL_PROMETHEUS_PYTHON",
        on_path: "python3",
        package: "prometheus-client",
        venv: "prometheus-venv",
        program: "python",
        works: |python| succeeds(python, &["-c", "import prometheus_client"]),
    }
    .find()
}

/// One sample.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
}

/// The samples of `text` as the real parser reads them; the test fails if
/// either parser refuses the text. Without a parser: read by hand (only
/// the values are checked then), saying so.
fn parse(text: &str) -> Vec<Sample> {
    let python = match python() {
        Ok(python) => python,
        Err(why) => {
            eprintln!("SKIPPED the prometheus_client parse ({why}); scripts/test.sh installs it");
            return parse_by_hand(text);
        }
    };
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused /metrics:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_string(),
                labels: v["labels"].as_object().unwrap().clone(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// `name{k="v",...} value` lines, for when no parser can be had.
fn parse_by_hand(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_string(), json!(v.trim_matches('"')))
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels[*k] == *v))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {name} {labels:?}, found {found:?}"
    );
    found[0].value
}

fn scrape(api: &Api) -> (String, Vec<Sample>) {
    let reply = api.get("/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        reply.content_type
    );
    let text = String::from_utf8(reply.bytes).unwrap();
    let samples = parse(&text);
    (text, samples)
}

#[test]
fn metrics_parse_and_show_a_sync_between_two_daemons() {
    let a = Node::init();
    let b = Node::init();
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&["--peer", da.address()], Some(SECRET));
    let (api_a, api_b) = (Api::of(&a, &da), Api::of(&b, &db));
    let (pa, pb) = (da.peer_id().to_string(), db.peer_id().to_string());
    let explain = || format!("A:\n{}\nB:\n{}", da.log(), db.log());

    for i in 0..5 {
        api_a
            .post(
                "/api/collections/tasks/records",
                &json!({"id": format!("t{i}"), "value": {"n": i}}),
            )
            .expect(201);
    }
    api_a
        .delete("/api/collections/tasks/records/t4")
        .expect(200);
    wait_or_explain(
        "B to hold A's records",
        || {
            let rows = api_b.get("/api/collections/tasks/records").expect(200);
            (rows["records"].as_array().unwrap().len() == 4).then_some(())
        },
        explain,
    );

    let (text, on_b) = scrape(&api_b);
    let peer_a = [("peer", pa.as_str())];
    assert_eq!(
        value(
            &on_b,
            "shoal_peer_state",
            &[("peer", &pa), ("state", "connected")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &on_b,
            "shoal_peer_state",
            &[("peer", &pa), ("state", "rejected")]
        ),
        0.0
    );
    // On loopback the peers are direct; no hole was punched.
    assert_eq!(
        value(
            &on_b,
            "shoal_peer_path",
            &[("peer", &pa), ("path", "direct")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &on_b,
            "shoal_peer_path",
            &[("peer", &pa), ("path", "relayed")]
        ),
        0.0
    );
    assert_eq!(value(&on_b, "shoal_hole_punch_attempts_total", &[]), 0.0);
    assert_eq!(
        value(&on_b, "shoal_peer_hole_punch_attempts_total", &peer_a),
        0.0
    );
    let changes_in = value(
        &on_b,
        "shoal_sync_changes_total",
        &[("peer", &pa), ("direction", "in")],
    );
    assert!(changes_in >= 5.0, "B received {changes_in} changes: {text}");
    assert!(
        value(
            &on_b,
            "shoal_sync_bytes_total",
            &[("peer", &pa), ("direction", "in")]
        ) > 0.0
    );
    assert_eq!(value(&on_b, "shoal_peer_lag_versions", &peer_a), 0.0);
    assert!(value(&on_b, "shoal_peer_last_sync_age_seconds", &peer_a) >= 0.0);
    assert_eq!(
        value(&on_b, "shoal_records", &[("collection", "tasks")]),
        4.0
    );
    assert_eq!(
        value(&on_b, "shoal_tombstones", &[("collection", "tasks")]),
        1.0
    );
    assert!(value(&on_b, "shoal_catchup_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(
        value(
            &on_b,
            "shoal_catchup_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        value(&on_b, "shoal_catchup_duration_seconds_count", &[])
    );
    assert!(value(&on_b, "shoal_store_size_bytes", &[]) > 0.0);
    // B wrote nothing itself.
    assert_eq!(value(&on_b, "shoal_write_duration_seconds_count", &[]), 0.0);

    let (text, on_a) = scrape(&api_a);
    assert_eq!(
        value(&on_a, "shoal_write_duration_seconds_count", &[]),
        6.0,
        "five creates and a delete: {text}"
    );
    assert!(
        value(
            &on_a,
            "shoal_sync_changes_total",
            &[("peer", &pb), ("direction", "out")]
        ) >= 5.0
    );
    assert_eq!(value(&on_a, "shoal_store_db_version", &[]), 6.0);

    // A blob referenced by a record of A's travels to B, counted on both
    // sides; an integrity report is a reconciliation, timed on A.
    let bytes = common::content(2 * 1024 * 1024 + 7);
    let size = bytes.len() as f64;
    let blob = api_a
        .raw("POST", "/api/blobs", Some(&api_a.token), None, bytes)
        .expect(201);
    api_a
        .post(
            "/api/collections/photos/records",
            &json!({"id": "p1", "value": {"file": blob}}),
        )
        .expect(201);
    let on_b = wait_or_explain(
        "B to count the blob it fetched",
        || {
            let (_, on_b) = scrape(&api_b);
            (value(&on_b, "shoal_blob_fetches_total", &[]) >= 1.0).then_some(on_b)
        },
        explain,
    );
    assert!(value(&on_b, "shoal_blob_received_bytes_total", &[]) >= size);
    api_a
        .get(&format!("/api/peers/{pb}/diff?collection=tasks"))
        .expect(200);
    let (text, on_a) = scrape(&api_a);
    assert!(
        value(&on_a, "shoal_blob_serves_total", &[]) >= 1.0,
        "{text}"
    );
    assert!(value(&on_a, "shoal_blob_sent_bytes_total", &[]) >= size);
    assert!(value(&on_a, "shoal_reconciliation_duration_seconds_count", &[]) >= 1.0);

    // A stranger with another secret is rejected, and counted by reason.
    let c = Node::init();
    let dc = c.serve(&["--peer", da.address()], Some(OTHER_SECRET));
    let pc = dc.peer_id().to_string();
    wait_or_explain(
        "A to show the stranger rejected and count why",
        || {
            let (_, on_a) = scrape(&api_a);
            let wrong_secret: f64 = on_a
                .iter()
                .filter(|s| {
                    s.name == "shoal_rejections_total" && s.labels["reason"] == "wrong_secret"
                })
                .map(|s| s.value)
                .sum();
            let rejected = value(
                &on_a,
                "shoal_peer_state",
                &[("peer", &pc), ("state", "rejected")],
            );
            (wrong_secret >= 1.0 && rejected == 1.0).then_some(())
        },
        || format!("A:\n{}\nC:\n{}", da.log(), dc.log()),
    );

    // The token guards /metrics; health and readiness need none.
    let bare = |api: &Api, path: &str| api.raw("GET", path, None, None, Vec::new());
    bare(&api_a, "/metrics").error(401, "unauthorized");
    assert_eq!(bare(&api_a, "/healthz").expect(200)["status"], "ok");
    let ready = bare(&api_a, "/readyz").expect(200);
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(ready["listening"].as_u64().unwrap() >= 1);
}

#[test]
fn public_metrics_need_no_token_and_only_on_loopback() {
    let n = Node::init();
    let d = n.serve(&["--metrics-public"], Some(SECRET));
    let api = Api::of(&n, &d);
    let reply = api.raw("GET", "/metrics", None, None, Vec::new());
    assert_eq!(reply.status, 200);
    let samples = parse(&String::from_utf8(reply.bytes).unwrap());
    assert!(samples.iter().any(|s| s.name == "shoal_store_size_bytes"));
    // Only /metrics opened.
    api.raw("GET", "/api/node", None, None, Vec::new())
        .error(401, "unauthorized");
    drop(d);

    let other = Node::init();
    let refused = other
        .run_with_secret(
            &[
                "serve",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--http",
                "0.0.0.0:0",
                "--http-public",
                "--metrics-public",
            ],
            SECRET,
        )
        .code(2);
    assert!(
        refused
            .stderr
            .contains("--metrics-public needs a loopback --http"),
        "{}",
        refused.stderr
    );
    assert!(!other.data.join("daemon.json").exists());
}

#[test]
fn secrets_never_reach_the_logs_even_at_trace_level() {
    let passphrase = "correct horse battery staple for the logs test";
    let a = Node::init();
    let b = Node::init();
    let mut env_a = a.command();
    env_a.env("RUST_LOG", "trace");
    let da = a.serve_with(&["--log-format", "json"], Some(passphrase), env_a);
    // Same passphrase, same salt: the same group.
    std::fs::copy(a.data.join("group.salt"), b.data.join("group.salt")).unwrap();
    let mut env_b = b.command();
    env_b.env("RUST_LOG", "trace");
    let db = b.serve_with(&["--peer", da.address()], Some(passphrase), env_b);
    let (api_a, api_b) = (Api::of(&a, &da), Api::of(&b, &db));
    let explain = || format!("A:\n{}\nB:\n{}", da.log(), db.log());

    api_a
        .post(
            "/api/collections/notes/records",
            &json!({"id": "n1", "value": {"text": "hello"}}),
        )
        .expect(201);
    wait_or_explain(
        "B to hold n1",
        || (api_b.get("/api/collections/notes/records/n1").status == 200).then_some(()),
        explain,
    );
    // The invite code carries the key: its hex is what must not be logged.
    let invite = api_a.get("/api/node").expect(200)["invite"]
        .as_str()
        .expect("an invite code")
        .to_string();
    let key = invite
        .trim_start_matches("shoal2:")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 64, "{invite}");
    for api in [&api_a, &api_b] {
        api.get("/api/peers").expect(200);
        api.get("/metrics");
        api.get("/api/openapi.json").expect(200);
    }
    let (path_a, path_b) = (da.log.clone(), db.log.clone());
    assert_eq!(da.terminate(), 0);
    assert_eq!(db.terminate(), 0);
    let log_a = std::fs::read_to_string(path_a).unwrap();
    let log_b = std::fs::read_to_string(path_b).unwrap();

    for (name, log) in [("A", &log_a), ("B", &log_b)] {
        assert!(
            log.lines().count() > 50 && log.contains("TRACE"),
            "{name} did not log at trace level: {log}"
        );
        for (what, secret) in [
            ("the passphrase", passphrase),
            ("the group key", key.as_str()),
            ("A's API token", api_a.token.as_str()),
            ("B's API token", api_b.token.as_str()),
        ] {
            assert!(!log.contains(secret), "{name}'s log holds {what}");
        }
    }
    // --log-format json: one JSON object per line, the note that a new
    // passphrase group's salt was made included.
    assert!(log_a.contains("a new passphrase group"), "{log_a}");
    for line in log_a.lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["fields"].is_object(),
            "{line}"
        );
    }
    assert!(serde_json::from_str::<Value>(log_b.lines().next().unwrap()).is_err());
}
