//! The NAT lab as the `wan` scenario drives it: `scripts/natlab.sh` builds
//! network namespaces behind nftables NAT, and real `shoal relay` / `shoal
//! serve` processes run in them. A [`Lab`] is one lab: its namespaces and
//! processes go when it is dropped.
//!
//! It owns starting and reading the processes (data directories, the relay,
//! the daemons, `shoal peers --json`); what is measured is `wan.rs`'s.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The group key every lab node runs with (a raw key, 64 hex digits).
const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// The relay's address in the lab's "internet".
const RELAY_AT: &str = "/ip4/198.18.0.1/tcp/4001";

/// `natlab.sh check`'s exit code when no lab can be built here.
pub const SKIP: i32 = 77;

/// Where the lab script and the `shoal` binary are.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `scripts/natlab.sh`.
    pub natlab: PathBuf,
    /// The `shoal` binary.
    pub shoal: PathBuf,
}

impl Tools {
    /// `Err(reason)` unless a lab can be built here (root, namespaces,
    /// nftables NAT).
    pub fn check(&self) -> Result<(), String> {
        let out = Command::new(&self.natlab)
            .arg("check")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.natlab.display()))?;
        match out.status.code() {
            Some(0) => Ok(()),
            _ => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        }
    }
}

/// One lab: its namespaces (PREFIX-*), data directories and processes.
pub struct Lab {
    tools: Tools,
    prefix: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
    /// The relay's dialable address, once started.
    relay: Option<String>,
}

impl Lab {
    /// Builds a lab of `kind` NAT (`cone` or `symmetric`), number `n`.
    pub fn up(tools: &Tools, kind: &str, n: u32) -> Result<Lab> {
        let prefix = format!("wb{}-{n}", std::process::id() % 10_000);
        let out = Command::new(&tools.natlab)
            .args(["up", &prefix, kind])
            .output()?;
        if !out.status.success() {
            bail!("natlab up: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Lab {
            tools: tools.clone(),
            prefix,
            dir: tempfile::tempdir()?,
            children: Vec::new(),
            relay: None,
        })
    }

    /// The relay's dialable address (empty before [`Lab::start_relay`]).
    pub fn relay_address(&self) -> String {
        self.relay.clone().unwrap_or_default()
    }

    /// NAME's data directory.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `shoal ARGS` in NODE's namespace.
    fn command(&self, node: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.tools.natlab);
        cmd.args(["exec", &self.prefix, node])
            .arg(&self.tools.shoal)
            .args(args)
            .env("SHOAL_SECRET", KEY);
        cmd
    }

    /// Starts the relay; its dialable address.
    pub fn start_relay(&mut self) -> Result<String> {
        self.init("tok")?;
        let token = self.shoal_json("inet", &["relay-token"], &self.data("tok"))?;
        let token = token["relay_token"]
            .as_str()
            .context("relay-token printed no token")?
            .to_string();
        let dir = self.data("relay");
        let log = std::fs::File::create(self.dir.path().join("relay.log"))?;
        let mut child = self
            .command("inet", &["relay", "--dir", path(&dir), "--token", &token])
            .args(["--listen", RELAY_AT, "--external-address", RELAY_AT])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        self.children.push(child);
        let info: Value = serde_json::from_str(&line).context("the relay printed no JSON line")?;
        let id = info["peer_id"].as_str().context("no relay peer id")?;
        let address = format!("{RELAY_AT}/p2p/{id}");
        self.relay = Some(address.clone());
        Ok(address)
    }

    /// `shoal --json --data DIR ARGS` in NODE, parsed.
    fn shoal_json(&self, node: &str, args: &[&str], data: &Path) -> Result<Value> {
        let mut all = vec!["--json", "--data", path(data)];
        all.extend_from_slice(args);
        let out = self.command(node, &all).output()?;
        if !out.status.success() {
            bail!("shoal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("shoal {args:?} printed no JSON"))
    }

    /// Initializes NAME's data directory; its peer id.
    pub fn init(&self, name: &str) -> Result<String> {
        let v = self.shoal_json("inet", &["init"], &self.data(name))?;
        Ok(v["peer_id"]
            .as_str()
            .context("init printed no peer id")?
            .to_string())
    }

    /// Starts `shoal serve` for NAME in NODE, holding a reservation on the
    /// relay, with `extra` arguments.
    pub fn serve(&mut self, name: &str, node: &str, extra: &[&str]) -> Result<()> {
        let relay = self.relay.clone().context("start the relay first")?;
        let data = self.data(name);
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log")))?;
        let child = self
            .command(node, &["--data", path(&data), "serve", "--no-mdns"])
            .args(["--http", "127.0.0.1:0", "--listen", "/ip4/0.0.0.0/tcp/4040"])
            .args(["--relay", &relay])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.children.push(child);
        Ok(())
    }

    /// The relay's counters (`DIR/stats.json`, rewritten every 2 s).
    pub fn relay_stats(&self) -> Value {
        let text = std::fs::read_to_string(self.data("relay").join("stats.json"));
        text.ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    /// NAME's entry for `peer` in its running daemon's peer table.
    pub fn peer(&self, name: &str, node: &str, peer: &str) -> Option<Value> {
        let v = self.shoal_json(node, &["peers"], &self.data(name)).ok()?;
        v["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer"] == peer)
            .cloned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.tools.natlab)
            .args(["down", &self.prefix])
            .status();
    }
}

/// A path as an argument (the lab's paths are UTF-8 temporary directories).
fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Polls `check` every 100 ms until it yields, for up to `limit`.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
