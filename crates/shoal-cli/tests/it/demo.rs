//! `shoal demo` as a newcomer runs it: three real nodes on loopback converge,
//! every replica prints the same state digest, the laptop's dashboard and
//! HTTP API are served at the printed URL (token required on the API), and
//! Ctrl-C (SIGINT) stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo process, killed on drop if a check failed first.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_converges_three_nodes_serves_the_dashboard_and_stops_on_ctrl_c() {
    let child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shoal demo");
    let mut demo = Demo(child);
    let stdout = demo.0.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no dashboard line; output so far:\n{}", seen.join("\n")));
        if let Some(url) = line.trim().strip_prefix("dashboard ") {
            break url.to_string();
        }
        seen.push(line);
    };
    let stdout = seen.join("\n");

    let digests: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split("state digest ").nth(1))
        .collect();
    assert_eq!(digests.len(), 3, "{stdout}");
    assert!(digests.iter().all(|d| *d == digests[0]), "{stdout}");
    let shared: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("shared = {"))
        .collect();
    assert_eq!(shared.len(), 3);
    for line in shared {
        for field in [
            "\"title\":\"plan trip to Lisbon\"",
            "\"done\":true",
            "\"owner\":\"bo\"",
            "\"note\":\"book flights\"",
        ] {
            assert!(
                line.contains(field),
                "every concurrent edit survives: {line}"
            );
        }
    }
    assert_eq!(
        stdout.matches("old = deleted").count(),
        3,
        "the delete wins over the concurrent edit"
    );

    // The printed URL: http://IP:PORT/#token=TOKEN.
    let (base, token) = url.split_once("/#token=").expect("a token in the URL");
    assert_eq!(token.len(), 64, "{url}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let get = |path: &str, token: Option<&str>| {
        let mut request = agent.get(&format!("{base}{path}"));
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response = request.call().expect("an answer");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("a body");
        (status, body)
    };
    let (status, page) = get("/", None);
    assert_eq!(status, 200, "the dashboard page needs no token");
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "{page}"
    );
    assert_eq!(get("/api/node", None).0, 401, "the API needs the token");
    let (status, node) = get("/api/node", Some(token));
    assert_eq!(status, 200, "{node}");
    let node: serde_json::Value = serde_json::from_str(&node).expect("json");
    assert!(node["peer_id"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(node["name"], "laptop");
    assert!(
        node["invite"]
            .as_str()
            .is_some_and(|i| i.starts_with("shoal2:")),
        "the laptop offers an invite code: {node}"
    );
    let (status, peers) = get("/api/peers", Some(token));
    assert_eq!(status, 200, "{peers}");
    let peers: serde_json::Value = serde_json::from_str(&peers).expect("json");
    let connected = peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .filter(|p| p["state"] == "connected")
        .count();
    assert_eq!(
        connected, 1,
        "the laptop talks to the desktop only: {peers}"
    );

    // Ctrl-C stops the demo cleanly.
    let pid = demo.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "Ctrl-C is a clean stop: {status:?}");
    let rest: Vec<String> = lines.iter().collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
}
