//! End-to-end tests of the daemon commands — `serve`, `invite`, `join`,
//! `peers`, `sync` — with real `shoal serve` processes on loopback (random
//! ports, mDNS off) in temporary data directories.
//!
//! Every daemon is a child process behind a guard that kills it on drop, so
//! a failing test leaves nothing running. Waits are polls with deadlines.
#![cfg(unix)]

use crate::common;

use common::{Node, state_of, wait_for, wait_or_explain};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn http_get(address: &str, token: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut request = agent.get(&format!("http://{address}/api/peers"));
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_json::<Value>().unwrap();
    (status, body)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn two_daemons_replicate_and_a_stranger_is_rejected() {
    // The first node creates the group; without a daemon there is no address yet.
    let a = Node::init();
    let first = a.run(&["invite"]).code(2);
    assert!(first.stderr.contains("shoal serve"), "{}", first.stderr);
    let key = std::fs::read_to_string(a.data.join("group.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert_eq!(mode(&a.data.join("group.key")), 0o600);
    assert_eq!(mode(&a.data.join("token")), 0o600);

    let da = a.serve(&[], None);
    assert_eq!(mode(&a.data.join("daemon.json")), 0o600);
    let invite = a.run(&["invite"]).ok();
    let code = invite.stdout.trim().to_string();
    assert!(code.starts_with("shoal2:"), "{code}");
    assert!(code.ends_with(&format!("/p2p/{}", da.peer_id())), "{code}");
    assert!(invite.stderr.contains("group secret"), "{}", invite.stderr);

    // The second joins with the code, then serves.
    let b = Node::init();
    b.run(&["join", &code]).ok();
    b.run(&["join", &code]).ok();
    let peers_txt = std::fs::read_to_string(b.data.join("peers.txt")).unwrap();
    assert_eq!(peers_txt.lines().count(), 1, "{peers_txt}");
    assert_eq!(
        std::fs::read_to_string(b.data.join("group.key")).unwrap(),
        key
    );
    let db = b.serve(&[], None);

    wait_for("both daemons to show each other connected", || {
        let on_a = state_of(&a.peers(), db.peer_id());
        let on_b = state_of(&b.peers(), da.peer_id());
        (on_a.as_deref() == Some("connected") && on_b.as_deref() == Some("connected")).then_some(())
    });

    // A write by the CLI on one machine reaches the other.
    let record = json!({"title": "buy milk", "done": false});
    a.run(&["put", "tasks", "t1", &record.to_string()]).ok();
    let got = wait_for("the record to reach the second node", || {
        let run = b.run(&["get", "tasks", "t1"]);
        (run.code == 0).then(|| run.json())
    });
    assert_eq!(got, record);

    let synced = b.run(&["sync", "--timeout", "15"]).ok();
    assert!(
        synced.stdout.contains("in sync with 1 peer"),
        "{}",
        synced.stdout
    );
    let on_b = b.peers();
    let a_row = on_b.iter().find(|p| p["peer"] == da.peer_id()).unwrap();
    assert_eq!(a_row["lag"], 0);
    assert!(a_row["last_sync_ms"].is_u64());
    // The cursor is numbers, in one shape for `sync --json`, `peers
    // --json` and the API.
    let synced = b.run(&["--json", "sync", "--timeout", "15"]).ok().json();
    let row = &synced["peers"][0];
    assert_eq!(row["peer"], da.peer_id(), "{synced}");
    let cursor = &row["cursor"];
    assert!(cursor["base"].as_u64().is_some_and(|v| v > 0), "{synced}");
    assert!(cursor["position"].is_null(), "{synced}");
    assert!(cursor["partial"].is_null(), "{synced}");
    assert_eq!(&a_row["cursor"], cursor, "peers --json: {a_row}");
    let (status, api) = http_get(db.http(), Some(&b.token()));
    assert_eq!(status, 200);
    let api_rows = api["peers"].as_array().expect("peers");
    assert_eq!(
        api["punch"]["attempts"], 0,
        "no hole punched on loopback: {api}"
    );
    let api_row = api_rows.iter().find(|p| p["peer"] == da.peer_id());
    assert_eq!(&api_row.expect("A in the API's table")["cursor"], cursor);
    let table = b.run(&["peers"]).ok().stdout;
    assert!(table.starts_with("PEER"), "{table}");
    let base = cursor["base"].as_u64().expect("base");
    assert!(table.contains(&format!("  {base}  ")), "{table}");
    assert!(table.contains("connected"), "{table}");
    // On loopback the path is direct and no hole was punched.
    assert!(table.contains("  direct  0/0  "), "{table}");
    assert_eq!(a_row["path"], "direct", "{a_row}");
    assert_eq!(a_row["punch"]["attempts"], 0, "{a_row}");
    assert!(a_row["path_since_ms"].as_u64().is_some(), "{a_row}");

    // A node with another secret is refused, and the table says why.
    let c = Node::init();
    let dc = c.serve(
        &["--peer", da.address()],
        Some("a different group passphrase"),
    );
    let rejected = wait_or_explain(
        "the stranger to be rejected",
        || {
            // Whichever side checked the proof first refuses the other;
            // the refused side may only see the connection close.
            let on_a = a.peers();
            let on_c = c.peers();
            let c_on_a = on_a.iter().find(|p| p["peer"] == dc.peer_id());
            let a_on_c = on_c.iter().find(|p| p["peer"] == da.peer_id());
            [c_on_a, a_on_c]
                .into_iter()
                .flatten()
                .find(|row| row["state"] == "rejected")
                .cloned()
        },
        || {
            format!(
                "first node: {:?}\n{}\nstranger: {:?}\n{}",
                a.peers(),
                da.log(),
                c.peers(),
                dc.log()
            )
        },
    );
    assert_eq!(rejected["reason"], "wrong group secret");
    let text = format!("{}{}", a.run(&["peers"]).stdout, c.run(&["peers"]).stdout);
    assert!(text.contains("rejected: wrong group secret"), "{text}");
    // Nothing of the group's data reached the stranger.
    c.run(&["get", "tasks", "t1"]).code(1);

    // The control API wants the token.
    let (status, body) = http_get(da.http(), None);
    assert_eq!(status, 401);
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(http_get(da.http(), Some(&"0".repeat(64))).0, 401);
    let (status, body) = http_get(da.http(), Some(&a.token()));
    assert_eq!(status, 200);
    assert!(body["peers"].is_array());

    // SIGTERM stops cleanly and removes daemon.json; then there is no daemon.
    assert_eq!(da.terminate(), 0);
    assert!(!a.data.join("daemon.json").exists());
    let none = a.run(&["peers"]).code(4);
    assert!(
        none.stderr.contains("no daemon is running"),
        "{}",
        none.stderr
    );
    drop((db, dc));
}

#[test]
fn peers_and_sync_need_a_daemon() {
    let n = Node::init();
    let peers = n.run(&["peers"]).code(4);
    assert!(
        peers.stderr.contains("no daemon is running") && peers.stderr.contains("shoal serve"),
        "{}",
        peers.stderr
    );
    n.run(&["sync"]).code(4);
}

#[test]
fn serve_needs_a_group_secret_and_a_private_http_address() {
    let n = Node::init();
    let run = n.run(&["serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    let run = run.code(2);
    assert!(
        run.stderr.contains("shoal invite") && run.stderr.contains("shoal join"),
        "{}",
        run.stderr
    );
    let public = n.run(&["serve", "--http", "0.0.0.0:0"]).code(2);
    assert!(public.stderr.contains("--http-public"), "{}", public.stderr);
    assert!(!n.data.join("daemon.json").exists());
}

#[test]
fn a_lone_daemon_syncs_with_nobody_and_stops_on_sigterm() {
    let n = Node::init();
    let d = n.serve(&[], Some(&"ab".repeat(32)));
    // Nothing synced is a failure (exit 4), not "in sync": a script going
    // on after `shoal sync` would read stale data.
    let synced = n.run(&["sync"]).code(4);
    assert!(
        synced
            .stderr
            .contains("no peer is connected, nothing was synced"),
        "{}",
        synced.stderr
    );
    assert!(synced.stdout.is_empty(), "{}", synced.stdout);
    // With --json the error is JSON on stderr too.
    let synced = n.run(&["--json", "sync"]).code(4);
    let error: serde_json::Value = serde_json::from_str(synced.stderr.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", synced.stderr));
    assert_eq!(error["code"], "peer-unreachable", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no peer is connected"),
        "{error}"
    );
    // A second daemon on the same directory is refused.
    let twice = n.run(&["serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    assert!(twice.stderr.contains("already running"), "{}", twice.stderr);
    assert_eq!(twice.code, 4);
    // The key from the environment is the one invites carry.
    let code = n.run_with_secret(&["invite"], &"ab".repeat(32)).ok().stdout;
    assert!(
        code.starts_with(&format!("shoal2:{}.", "ab".repeat(32))),
        "{code}"
    );
    assert_eq!(d.terminate(), 0);
    assert!(!n.data.join("daemon.json").exists());
}

#[test]
fn join_checks_the_code_and_never_silently_replaces_a_key() {
    let other = Node::init();
    let peer = other.run(&["--json", "status"]).ok().json()["peer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let code_for = |key: &str| {
        shoal::Invite {
            key: shoal::GroupKey::from_hex(&key.repeat(32)).unwrap(),
            salt: shoal::GroupSalt::from_random([7; 16]),
            address: format!("/ip4/127.0.0.1/tcp/4040/p2p/{peer}")
                .parse()
                .unwrap(),
            relays: Vec::new(),
        }
        .to_string()
    };
    let n = Node::init();
    let bad = n.run(&["join", "shoal2:nope"]).code(2);
    assert!(bad.stderr.contains("invalid invite code"), "{}", bad.stderr);
    // A typo anywhere is caught by the checksum; an old code is named.
    let typo = code_for("ab").replacen("4040", "4041", 1);
    let refused = n.run(&["join", &typo]).code(2);
    assert!(refused.stderr.contains("mistyped"), "{}", refused.stderr);
    let old = format!(
        "shoal1:{}@/ip4/127.0.0.1/tcp/4040/p2p/{peer}",
        "ab".repeat(32)
    );
    let refused = n.run(&["join", &old]).code(2);
    assert!(refused.stderr.contains("older Shoal"), "{}", refused.stderr);
    assert!(!n.data.join("group.key").exists(), "nothing written");
    n.run(&["join", &code_for("ab")]).ok();
    let salt = std::fs::read_to_string(n.data.join("group.salt")).unwrap();
    assert_eq!(
        salt.trim(),
        "07".repeat(16),
        "the group's salt comes with the code"
    );
    let refused = n.run(&["join", &code_for("cd")]).code(2);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    let key = std::fs::read_to_string(n.data.join("group.key")).unwrap();
    assert_eq!(key.trim(), "ab".repeat(32));
    n.run(&["join", "--force", &code_for("cd")]).ok();
    let key = std::fs::read_to_string(n.data.join("group.key")).unwrap();
    assert_eq!(key.trim(), "cd".repeat(32));
    let peers_txt = std::fs::read_to_string(n.data.join("peers.txt")).unwrap();
    assert_eq!(peers_txt.lines().count(), 1, "{peers_txt}");
    assert_eq!(mode(&n.data.join("peers.txt")), 0o600);
    // A node's own code is refused.
    let own = other.run(&["join", &code_for("ab")]).code(2);
    assert!(own.stderr.contains("own"), "{}", own.stderr);
}

#[test]
fn invite_with_an_address_gets_this_nodes_peer_id() {
    let n = Node::init();
    let peer = n.run(&["--json", "status"]).ok().json()["peer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let invite = n
        .run(&["--json", "invite", "--address", "/ip4/10.0.0.1/tcp/4040"])
        .ok()
        .json();
    assert_eq!(
        invite["address"],
        format!("/ip4/10.0.0.1/tcp/4040/p2p/{peer}")
    );
    let key = std::fs::read_to_string(n.data.join("group.key")).unwrap();
    assert!(invite["invite"].as_str().unwrap().contains(key.trim()));
}

#[test]
fn an_invite_with_relays_gives_the_joiner_the_way_in() {
    let inviter = Node::init();
    let peer = inviter.run(&["--json", "status"]).ok().json()["peer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let relay_id = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let relay = format!("/ip4/198.18.0.1/tcp/4001/p2p/{relay_id}");
    // A relay that names no relay is refused before any code is printed.
    let bad = inviter
        .run(&[
            "invite",
            "--address",
            "/ip4/10.0.0.1/tcp/4040",
            "--relay",
            "/ip4/198.18.0.1/tcp/4001",
        ])
        .code(2);
    assert!(bad.stderr.contains("/p2p/<relay id>"), "{}", bad.stderr);
    let invite = inviter
        .run(&[
            "--json",
            "invite",
            "--address",
            "/ip4/10.0.0.1/tcp/4040",
            "--relay",
            &relay,
        ])
        .ok()
        .json();
    let code = invite["invite"].as_str().unwrap();
    assert!(code.starts_with("shoal3:"), "{code}");
    assert_eq!(invite["relays"], serde_json::json!([relay]));
    let joiner = Node::init();
    let joined = joiner.run(&["--json", "join", code]).ok().json();
    let via = format!("{relay}/p2p-circuit/p2p/{peer}");
    assert_eq!(joined["relayed"], serde_json::json!([via]), "{joined}");
    let peers_txt = std::fs::read_to_string(joiner.data.join("peers.txt")).unwrap();
    assert_eq!(
        peers_txt.lines().collect::<Vec<_>>(),
        vec![format!("/ip4/10.0.0.1/tcp/4040/p2p/{peer}"), via],
    );
    let relays_txt = std::fs::read_to_string(joiner.data.join("relays.txt")).unwrap();
    assert_eq!(relays_txt.trim(), relay);
    // The joiner's own invites pass the relay on.
    let passed = joiner
        .run(&["--json", "invite", "--address", "/ip4/10.0.0.2/tcp/4040"])
        .ok()
        .json();
    assert_eq!(passed["relays"], serde_json::json!([relay]), "{passed}");
}

/// Starts `shoal serve` without `--http` and waits for daemon.json; returns
/// the daemon and its HTTP address.
fn serve_default_http(n: &Node, log: &str) -> (common::Daemon, String) {
    let log = n.data.parent().unwrap().join(log);
    let child = n
        .command()
        .args(["serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
        .env("SHOAL_SECRET", "cd".repeat(32))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = common::Daemon {
        child,
        log,
        info: Value::Null,
    };
    let file = n.data.join("daemon.json");
    daemon.info = wait_for("daemon.json", || {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("shoal serve exited with {status}: {}", daemon.log());
        }
        std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    });
    let http = daemon.http().to_string();
    (daemon, http)
}

#[test]
fn the_dashboard_keeps_its_port_across_restarts() {
    let n = Node::init();
    let (first, http) = serve_default_http(&n, "first.log");
    let port = http.rsplit_once(':').unwrap().1.to_string();
    assert!(http.starts_with("127.0.0.1:"), "{http}");
    let kept = std::fs::read_to_string(n.data.join("http-port")).unwrap();
    assert_eq!(kept.trim(), port);
    assert_eq!(first.terminate(), 0);

    // Restarted: the same address, so the dashboard's URL still works.
    let (second, again) = serve_default_http(&n, "second.log");
    assert_eq!(again, http);
    assert_eq!(http_get(&again, Some(&n.token())).0, 200);

    assert_eq!(second.terminate(), 0);

    // While something else holds it, a free port serves and a warning says
    // why; the kept port stays for the next start.
    let holder = std::net::TcpListener::bind(&http).unwrap();
    let (third, other) = serve_default_http(&n, "third.log");
    assert_ne!(other, http);
    assert!(third.log().contains("is not free"), "{}", third.log());
    let kept = std::fs::read_to_string(n.data.join("http-port")).unwrap();
    assert_eq!(kept.trim(), port);
    drop(holder);
    assert_eq!(third.terminate(), 0);
}

/// Runs `shoal serve` expecting it to refuse to start: its result, or a
/// failure naming what it printed if it was still running after a while.
fn serve_refused(node: &Node, listen: &str) -> common::Run {
    let mut cmd = node.command();
    cmd.env("SHOAL_SECRET", "cd".repeat(32))
        .args([
            "serve",
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
            "--listen",
            listen,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn shoal serve");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "a second daemon started on {listen}, a port another node holds:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    common::Run::from_output(child.wait_with_output().unwrap())
}

#[test]
fn a_second_daemon_on_a_busy_port_exits_4_cannot_listen() {
    let a = Node::init();
    let da = a.serve(
        &["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"],
        Some(&"cd".repeat(32)),
    );
    let held: Vec<String> = da.info["listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            a[..a.find("/p2p/").unwrap()].to_string()
        })
        .collect();
    let tcp = held
        .iter()
        .find(|a| a.contains("/tcp/"))
        .expect("a TCP address");
    let quic = held
        .iter()
        .find(|a| a.contains("/quic-v1"))
        .expect("a QUIC address");
    let b = Node::init();
    for address in [tcp, quic] {
        let run = serve_refused(&b, address).code(4);
        assert!(
            run.stderr.contains("cannot listen") && run.stderr.contains(address.as_str()),
            "{address}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains("listening"), "{}", run.stdout);
        assert!(!b.data.join("daemon.json").exists());
    }
    // The first node still has its ports, and answers.
    a.run(&["peers"]).ok();
    drop(da);
}
