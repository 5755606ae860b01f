//! The NAT lab for end-to-end tests (`scripts/natlab.sh`): a [`Lab`] per
//! test — its namespaces, real `shoal relay` and `shoal serve` daemons in
//! them, and what the tests ask of those daemons (records, the peer table,
//! the relay's counters). Where the lab cannot be built, [`Lab::up`] says
//! why and yields `None`, and the test passes without running.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const KEY: &str = "abababababababababababababababababababababababababababababababab";
pub const STRANGER_KEY: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

pub fn natlab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/natlab.sh")
}

pub fn shoal() -> &'static str {
    env!("CARGO_BIN_EXE_shoal")
}

/// A lab for one test: its namespaces go with it, and the daemons in them.
pub struct Lab {
    prefix: String,
    dir: tempfile::TempDir,
    /// Each daemon by name, its logs in DIR/NAME.log.
    children: Vec<(String, Child)>,
    /// The relay's token, once started.
    token: Option<String>,
}

impl Lab {
    /// Builds a lab of `kind` NAT, or `None` (reason printed) where it cannot.
    pub fn up(kind: &str) -> Option<Lab> {
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
            token: None,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `shoal ARGS` in NODE's namespace, with the group secret `key`.
    pub fn command(&self, node: &str, key: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(natlab());
        cmd.args(["exec", &self.prefix, node, shoal()])
            .args(args)
            .env("SHOAL_SECRET", key)
            .env("RUST_LOG", "info");
        cmd
    }

    /// Runs `shoal ARGS` to the end; its stdout.
    pub fn run(&self, node: &str, key: &str, args: &[&str]) -> (bool, String) {
        let out = self.command(node, key, args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Starts a daemon, its logs in DIR/NAME.log (appended to on a restart).
    pub fn spawn(&mut self, name: &str, node: &str, key: &str, args: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("{name}.log")))
            .unwrap();
        let mut cmd = self.command(node, key, args);
        cmd.stdout(Stdio::piped()).stderr(log);
        cmd.spawn().unwrap()
    }

    /// Starts the relay in the internet namespace (again with the same
    /// directory and so the same identity, after [`Lab::stop`]); its
    /// dialable address.
    pub fn relay(&mut self) -> String {
        let token = match self.token.clone() {
            Some(token) => token,
            None => {
                self.init("tok");
                let token = self.run(
                    "inet",
                    KEY,
                    &["--data", self.path("tok").to_str().unwrap(), "relay-token"],
                );
                assert!(token.0, "relay-token failed");
                self.token = Some(token.1.trim().to_string());
                token.1.trim().to_string()
            }
        };
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
                &token,
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
        self.children.push(("relay".into(), child));
        let info: Value = serde_json::from_str(&line).expect("relay prints one JSON line");
        format!(
            "/ip4/198.18.0.1/tcp/4001/p2p/{}",
            info["peer_id"].as_str().unwrap()
        )
    }

    /// Stops the daemon NAME (the relay is `relay`) and waits for it.
    pub fn stop(&mut self, name: &str) {
        for (_, child) in self.children.iter_mut().filter(|(n, _)| n == name) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.retain(|(n, _)| n != name);
    }

    /// Moves machine `node` (a or b) behind the other router.
    pub fn move_node(&self, node: &str) {
        let out = Command::new(natlab())
            .args(["move", &self.prefix, node])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "natlab move: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// NAME's `shoal peers --json` (run in NODE): the peer table and this
    /// node's reachability.
    pub fn peers(&self, name: &str, node: &str) -> Option<Value> {
        let dir = self.path(name);
        let (ok, out) = self.run(
            node,
            KEY,
            &["--json", "--data", dir.to_str().unwrap(), "peers"],
        );
        if !ok {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    /// Inits a node's directory; its peer id.
    pub fn init(&self, name: &str) -> String {
        let dir = self.path(name);
        let out = Command::new(shoal())
            .args(["--json", "--data", dir.to_str().unwrap(), "init"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["peer_id"].as_str().unwrap().to_string()
    }

    /// Starts `shoal serve` for NAME in NODE with the given extra arguments.
    pub fn serve(&mut self, name: &str, node: &str, key: &str, extra: &[&str]) {
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
        self.children.push((name.to_string(), child));
    }

    /// The relay's counters.
    pub fn relay_stats(&self) -> Value {
        let text = std::fs::read_to_string(self.path("relay/stats.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// NAME's view of `peer` (from `shoal peers --json` in NODE).
    pub fn peer(&self, name: &str, node: &str, peer: &str) -> Option<Value> {
        let v = self.peers(name, node)?;
        v["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer"] == peer)
            .cloned()
    }

    pub fn get(&self, name: &str, node: &str, key: &str, id: &str) -> Option<String> {
        let dir = self.path(name);
        let (ok, out) = self.run(
            node,
            key,
            &["--data", dir.to_str().unwrap(), "get", "notes", id],
        );
        ok.then_some(out)
    }

    pub fn put(&self, name: &str, node: &str, id: &str, body: &str) {
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
    pub fn put_stdin(&self, name: &str, id: &str, body: &str) {
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

impl Lab {
    /// `shoal ARGS` on NAME's data directory, run in NODE (group key
    /// [`KEY`]); its stdout as JSON (`--json` is added), `None` on failure.
    pub fn json(&self, name: &str, node: &str, args: &[&str]) -> Option<Value> {
        let dir = self.path(name);
        let mut all = vec!["--json", "--data", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let (ok, out) = self.run(node, KEY, &all);
        ok.then(|| serde_json::from_str(&out).ok()).flatten()
    }

    /// `shoal peers` (the table) of NAME, run in NODE.
    pub fn peers_table(&self, name: &str, node: &str) -> String {
        let dir = self.path(name);
        self.run(node, KEY, &["--data", dir.to_str().unwrap(), "peers"])
            .1
    }

    /// Adds `bytes` as a blob to NAME's store (outside the namespaces: it
    /// only writes the node's files); its hash.
    pub fn blob_add(&self, name: &str, bytes: &[u8]) -> String {
        let file = self.path(&format!("{name}-blob-{}.bin", bytes.len()));
        std::fs::write(&file, bytes).unwrap();
        let dir = self.path(name);
        let out = Command::new(shoal())
            .args(["--json", "--data", dir.to_str().unwrap(), "blob", "add"])
            .arg(&file)
            .env("SHOAL_SECRET", KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "blob add: {out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["$blob"].as_str().expect("a blob reference").to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(natlab()).args(["down", &self.prefix]).status();
    }
}

/// Polls `check` until it yields, for up to `limit`.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
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
