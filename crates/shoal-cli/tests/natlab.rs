//! WAN scenarios in the NAT lab (`scripts/natlab.sh`): real `shoal relay`
//! and `shoal serve` daemons in network namespaces behind nftables NAT.
//! Needs root; where the lab cannot be built the tests print why and pass
//! without running (the script's exit 77).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "abababababababababababababababababababababababababababababababab";
const STRANGER_KEY: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

fn natlab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/natlab.sh")
}

fn shoal() -> &'static str {
    env!("CARGO_BIN_EXE_shoal")
}

/// A lab for one test: its namespaces go with it, and the daemons in them.
struct Lab {
    prefix: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Lab {
    /// Builds a lab of `kind` NAT, or `None` (reason printed) where it cannot.
    fn up(kind: &str) -> Option<Lab> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("sl{}-{n}", std::process::id() % 100_000);
        let out = Command::new(natlab())
            .args(["up", &prefix, kind])
            .output()
            .unwrap();
        if out.status.code() == Some(77) {
            eprintln!("skipping: {}", String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
        assert!(
            out.status.success(),
            "natlab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Lab {
            prefix,
            dir: tempfile::tempdir().unwrap(),
            children: Vec::new(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `shoal ARGS` in NODE's namespace, with the group secret `key`.
    fn command(&self, node: &str, key: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(natlab());
        cmd.args(["exec", &self.prefix, node, shoal()])
            .args(args)
            .env("SHOAL_SECRET", key)
            .env("RUST_LOG", "info");
        cmd
    }

    /// Runs `shoal ARGS` to the end; its stdout.
    fn run(&self, node: &str, key: &str, args: &[&str]) -> (bool, String) {
        let out = self.command(node, key, args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Starts a daemon, its logs in DIR/NAME.log.
    fn spawn(&mut self, name: &str, node: &str, key: &str, args: &[&str]) -> Child {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let mut cmd = self.command(node, key, args);
        cmd.stdout(Stdio::piped()).stderr(log);
        cmd.spawn().unwrap()
    }

    /// Starts the relay in the internet namespace; its dialable address.
    fn relay(&mut self) -> String {
        self.init("tok");
        let token = self.run(
            "inet",
            KEY,
            &["--data", self.path("tok").to_str().unwrap(), "relay-token"],
        );
        assert!(token.0, "relay-token failed");
        let dir = self.path("relay");
        let mut child = self.spawn(
            "relay",
            "inet",
            KEY,
            &[
                "relay",
                "--dir",
                dir.to_str().unwrap(),
                "--token",
                token.1.trim(),
                "--listen",
                "/ip4/198.18.0.1/tcp/4001",
                "--listen",
                "/ip4/198.18.0.1/udp/4001/quic-v1",
                "--external-address",
                "/ip4/198.18.0.1/tcp/4001",
            ],
        );
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        let info: Value = serde_json::from_str(&line).expect("relay prints one JSON line");
        format!(
            "/ip4/198.18.0.1/tcp/4001/p2p/{}",
            info["peer_id"].as_str().unwrap()
        )
    }

    /// Inits a node's directory; its peer id.
    fn init(&self, name: &str) -> String {
        let dir = self.path(name);
        let out = Command::new(shoal())
            .args(["--json", "--data", dir.to_str().unwrap(), "init"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["peer_id"].as_str().unwrap().to_string()
    }

    /// Starts `shoal serve` for NAME in NODE with the given extra arguments.
    fn serve(&mut self, name: &str, node: &str, key: &str, extra: &[&str]) {
        let dir = self.path(name);
        let mut args = vec![
            "--data",
            dir.to_str().unwrap(),
            "serve",
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "/ip4/0.0.0.0/tcp/4040",
            "--listen",
            "/ip4/0.0.0.0/udp/4040/quic-v1",
        ];
        args.extend_from_slice(extra);
        let child = self.spawn(name, node, key, &args);
        self.children.push(child);
    }

    /// The relay's counters.
    fn relay_stats(&self) -> Value {
        let text = std::fs::read_to_string(self.path("relay/stats.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// NAME's view of `peer` (from `shoal peers --json` in NODE).
    fn peer(&self, name: &str, node: &str, peer: &str) -> Option<Value> {
        let dir = self.path(name);
        let (ok, out) = self.run(
            node,
            KEY,
            &["--json", "--data", dir.to_str().unwrap(), "peers"],
        );
        if !ok {
            return None;
        }
        let v: Value = serde_json::from_str(&out).ok()?;
        v["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer"] == peer)
            .cloned()
    }

    fn get(&self, name: &str, node: &str, key: &str, id: &str) -> Option<String> {
        let dir = self.path(name);
        let (ok, out) = self.run(
            node,
            key,
            &["--data", dir.to_str().unwrap(), "get", "notes", id],
        );
        ok.then_some(out)
    }

    fn put(&self, name: &str, node: &str, id: &str, body: &str) {
        let dir = self.path(name);
        let (ok, _) = self.run(
            node,
            KEY,
            &["--data", dir.to_str().unwrap(), "put", "notes", id, body],
        );
        assert!(ok, "put {id} failed");
    }
}

impl Lab {
    /// `shoal put notes ID` with the body on stdin (past the kernel's
    /// 128 KiB bound on one argument), outside the namespaces: it only
    /// writes the node's database.
    fn put_stdin(&self, name: &str, id: &str, body: &str) {
        use std::io::Write;
        let dir = self.path(name);
        let mut child = Command::new(shoal())
            .args(["--data", dir.to_str().unwrap(), "put", "notes", id])
            .env("SHOAL_SECRET", KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "put {id} failed");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(natlab()).args(["down", &self.prefix]).status();
    }
}

/// Polls `check` until it yields, for up to `limit`.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn two_peers_behind_cone_nats_meet_through_the_relay_then_go_direct() {
    let Some(mut lab) = Lab::up("cone") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    lab.init("b");
    lab.put("a", "a", "n1", r#"{"t":"first"}"#);
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    // B knows A only by its relayed address: a first connection can only
    // go through the relay.
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    lab.serve("b", "b", KEY, &["--relay", &relay, "--peer", &via_relay]);
    let first = wait_for(Duration::from_secs(30), || lab.get("b", "b", KEY, "n1"));
    assert!(
        first.is_some_and(|r| r.contains("first")),
        "the first record never arrived"
    );
    // The relay writes its counters every 2 s.
    let stats = wait_for(Duration::from_secs(6), || {
        let s = lab.relay_stats();
        (s["circuits_accepted"].as_u64() >= Some(1)).then_some(s)
    })
    .unwrap_or_else(|| lab.relay_stats());
    assert!(
        stats["admitted"].as_u64() >= Some(2),
        "both members admitted: {stats}"
    );
    assert!(
        stats["reservations_accepted"].as_u64() >= Some(2),
        "{stats}"
    );
    assert!(
        stats["circuits_accepted"].as_u64() >= Some(1),
        "the peers met through the relay: {stats}"
    );
    // Hole punched: B reaches A directly, at A's router's public address.
    let direct = wait_for(Duration::from_secs(20), || {
        lab.peer("b", "b", &a)
            .filter(|p| p["path"] == "direct" && p["state"] == "connected")
    });
    let direct = direct.expect("the connection never became direct");
    assert!(
        direct["addresses"].to_string().contains("/ip4/198.18.0.2/"),
        "A reached at its NAT's address: {direct}"
    );
    // Later data flows over the direct connection: no circuit stays open.
    lab.put("a", "a", "n2", r#"{"t":"later"}"#);
    let later = wait_for(Duration::from_secs(20), || lab.get("b", "b", KEY, "n2"));
    assert!(
        later.is_some_and(|r| r.contains("later")),
        "the later record never arrived"
    );
    let stats = wait_for(Duration::from_secs(6), || {
        let s = lab.relay_stats();
        (s["circuits_closed"] == s["circuits_accepted"]).then_some(s)
    });
    assert!(
        stats.is_some(),
        "a circuit stayed open: {}",
        lab.relay_stats()
    );
    let still = lab.peer("b", "b", &a).unwrap();
    assert_eq!(still["path"], "direct", "{still}");
}

#[test]
fn a_non_member_gets_no_reservation_and_no_circuit() {
    let Some(mut lab) = Lab::up("cone") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    lab.init("s");
    lab.put("a", "a", "n1", r#"{"t":"secret"}"#);
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    wait_for(Duration::from_secs(20), || {
        (lab.relay_stats()["reservations_accepted"].as_u64() >= Some(1)).then_some(())
    })
    .expect("the member never reserved");
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    lab.serve(
        "s",
        "b",
        STRANGER_KEY,
        &["--relay", &relay, "--peer", &via_relay],
    );
    let refused = wait_for(Duration::from_secs(20), || {
        let s = lab.relay_stats();
        (s["refused"].as_u64() >= Some(1) && s["circuits_denied"].as_u64() >= Some(1)).then_some(s)
    });
    let stats =
        refused.unwrap_or_else(|| panic!("the stranger was not refused: {}", lab.relay_stats()));
    assert_eq!(stats["admitted"], 1, "only the member admitted: {stats}");
    assert_eq!(
        stats["circuits_accepted"], 0,
        "no circuit for the stranger: {stats}"
    );
    assert_eq!(
        stats["reservations_accepted"], 1,
        "no reservation for the stranger: {stats}"
    );
    assert!(
        lab.get("s", "b", STRANGER_KEY, "n1").is_none(),
        "the stranger got the record"
    );
}

#[test]
fn a_bad_relay_token_is_a_usage_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let out = Command::new(shoal())
        .args([
            "relay",
            "--dir",
            relay_dir.to_str().unwrap(),
            "--token",
            "not-hex",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("relay token must be 64 hex digits"), "{err}");
    assert!(
        !relay_dir.exists(),
        "a refused start created the relay's directory"
    );
}

#[test]
fn two_peers_behind_symmetric_nats_sync_through_the_relay() {
    let Some(mut lab) = Lab::up("symmetric") else {
        return;
    };
    let relay = lab.relay();
    let relay_id = relay.rsplit('/').next().unwrap().to_string();
    let a = lab.init("a");
    lab.init("b");
    // One record larger than libp2p's default circuit cap (128 KiB).
    let big = format!(r#"{{"t":"{}"}}"#, "x".repeat(300 * 1024));
    lab.put_stdin("a", "big", &big);
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    lab.serve("b", "b", KEY, &["--relay", &relay, "--peer", &via_relay]);
    let got = wait_for(Duration::from_secs(60), || lab.get("b", "b", KEY, "big"));
    assert!(
        got.is_some_and(|r| r.len() > 300 * 1024),
        "the large record never arrived through the relay"
    );
    // Punching cannot work through random ports: still relayed a while later.
    std::thread::sleep(Duration::from_secs(8));
    let peer = lab.peer("b", "b", &a).expect("B knows A");
    assert_eq!(peer["state"], "connected", "{peer}");
    assert_eq!(peer["path"], "relayed", "{peer}");
    assert_eq!(peer["relay"], relay_id.as_str(), "{peer}");
    lab.put("a", "a", "n2", r#"{"t":"later"}"#);
    let later = wait_for(Duration::from_secs(20), || lab.get("b", "b", KEY, "n2"));
    assert!(
        later.is_some(),
        "a later record never arrived through the relay"
    );
}
