//! Helpers shared by the end-to-end tests that run the real `shoal` binary:
//! initialized data directories, `shoal serve` daemons on loopback (random
//! ports, mDNS off) killed on drop, and polls with deadlines.
#![allow(dead_code)] // each test file uses its own subset

pub mod http;
pub mod natlab;
pub mod pypi;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished run of the binary produced; a panic in it fails the test.
    pub fn from_output(out: std::process::Output) -> Self {
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

    pub fn ok(self) -> Self {
        self.code(0)
    }

    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// `len` bytes that do not repeat in any short period (xorshift).
pub fn content(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An initialized data directory and the binary pointed at it.
pub struct Node {
    _tmp: tempfile::TempDir,
    pub data: PathBuf,
}

impl Node {
    pub fn init() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let node = Self { _tmp: tmp, data };
        node.run(&["init"]).ok();
        node
    }

    /// A data directory that does not exist yet (for `restore`).
    pub fn empty() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        Self { _tmp: tmp, data }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
        cmd.env_remove("SHOAL_DATA")
            .env_remove("SHOAL_SECRET")
            .env_remove("SHOAL_CONFIG")
            .env_remove("XDG_DATA_HOME")
            .env("HOME", self.data.parent().unwrap())
            .env("RUST_LOG", "info")
            .arg("--data")
            .arg(&self.data);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, self.command())
    }

    pub fn run_with_secret(&self, args: &[&str], secret: &str) -> Run {
        let mut cmd = self.command();
        cmd.env("SHOAL_SECRET", secret);
        self.run_with(args, cmd)
    }

    pub fn run_with(&self, args: &[&str], mut cmd: Command) -> Run {
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run shoal");
        Run::from_output(out)
    }

    /// Starts `shoal serve` on loopback and waits until it has written daemon.json.
    pub fn serve(&self, extra: &[&str], secret: Option<&str>) -> Daemon {
        self.serve_with(extra, secret, self.command())
    }

    /// [`Node::serve`] from `cmd` (this node's [`Node::command`], with
    /// more environment).
    pub fn serve_with(&self, extra: &[&str], secret: Option<&str>, mut cmd: Command) -> Daemon {
        let log = self.data.parent().unwrap().join("serve.log");
        cmd.args([
            "serve",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
            // The default re-sync is 60 s, longer than any wait here: a write
            // by `shoal put` must reach the peer by live push.
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(self.data.parent().unwrap().join("serve.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
        if let Some(secret) = secret {
            cmd.env("SHOAL_SECRET", secret);
        }
        let mut daemon = Daemon {
            child: cmd.spawn().expect("spawn shoal serve"),
            log,
            info: Value::Null,
        };
        let file = self.data.join("daemon.json");
        let info = wait_for(&format!("{} to appear", file.display()), || {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("shoal serve exited with {status}: {}", daemon.log());
            }
            std::fs::read(&file)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        });
        daemon.info = info;
        daemon
    }

    pub fn peers(&self) -> Vec<Value> {
        let table = self.run(&["--json", "peers"]).ok().json();
        table["peers"].as_array().expect("a peers array").clone()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("token"))
            .unwrap()
            .trim()
            .to_string()
    }
}

/// A running `shoal serve`, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub info: Value,
}

impl Daemon {
    pub fn peer_id(&self) -> &str {
        self.info["peer_id"].as_str().unwrap()
    }

    pub fn http(&self) -> &str {
        self.info["http"].as_str().unwrap()
    }

    pub fn address(&self) -> &str {
        self.info["listen"][0].as_str().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited by signal, not cleanly");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "shoal serve did not stop on SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns something, panicking after [`DEADLINE`].
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_or_explain(what, f, String::new)
}

/// [`wait_for`], adding `explain()` (logs, tables) to the panic message.
pub fn wait_or_explain<T>(
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    explain: impl Fn() -> String,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        if started.elapsed() >= DEADLINE {
            panic!("timed out waiting for {what}\n{}", explain());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn state_of(peers: &[Value], peer: &str) -> Option<String> {
    peers
        .iter()
        .find(|p| p["peer"] == peer)
        .map(|p| p["state"].as_str().unwrap().to_string())
}
