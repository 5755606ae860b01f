//! `shoal demo --wan`: the demo's convergence story across NAT. A relay on a
//! stand-in "internet" and two machines (laptop, desktop), each behind its
//! own home router doing NAT, built from network namespaces by the NAT lab
//! script (`scripts/natlab.sh`, embedded in the binary). Both write while
//! apart — conflicting edits to one record included —, then run real `shoal
//! relay` and `shoal serve` processes: the desktop knows the laptop only by
//! its relayed address, so they meet through the relay, punch a hole through
//! both NATs, converge, and carry a live edit over the direct connection.
//!
//! Needs root (namespaces); says so and stops otherwise. This module owns
//! the WAN demo's script and output; the lab is the script's, everything
//! else the real binary's. Everything it builds is removed when it ends.

use crate::datadir::DataDir;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use shoal::{GroupKey, RelayToken};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The NAT lab script, as in the source tree.
const NATLAB: &str = include_str!("../../../scripts/natlab.sh");
/// The relay's address in the lab's "internet".
const RELAY_AT: &str = "/ip4/198.18.0.1/tcp/4001";
/// How long any step may take.
const LIMIT: Duration = Duration::from_secs(60);
/// The two machines: name and the lab node it sits in.
const MACHINES: [(&str, &str); 2] = [("laptop", "a"), ("desktop", "b")];

/// The lab for the demo: its namespaces and processes go when it is dropped.
struct Lab {
    script: PathBuf,
    prefix: String,
    secret: String,
    children: Vec<Child>,
}

impl Lab {
    /// This binary with `args`, in NODE's namespace.
    fn command(&self, node: &str, args: &[&str]) -> Result<Command> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let mut cmd = Command::new(&self.script);
        cmd.args(["exec", &self.prefix, node])
            .arg(exe)
            .args(args)
            .env("SHOAL_SECRET", &self.secret);
        Ok(cmd)
    }

    fn spawn(&mut self, node: &str, args: &[&str], log: &Path) -> Result<&mut Child> {
        let log = std::fs::File::create(log)?;
        let child = self
            .command(node, args)?
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("cannot start a process in the lab")?;
        self.children.push(child);
        Ok(self.children.last_mut().expect("just pushed"))
    }

    /// `shoal --json ARGS` in NODE, parsed.
    fn json(&self, node: &str, args: &[&str]) -> Option<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.command(node, &all).ok()?.output().ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.script)
            .args(["down", &self.prefix])
            .status();
    }
}

/// Runs the WAN demo in `dir` (a fresh temporary directory when `None`).
pub fn run(dir: Option<&Path>) -> Result<()> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = dir.unwrap_or(temp.path());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let script = dir.join("natlab.sh");
    std::fs::write(&script, NATLAB).context("cannot write the lab script")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let check = Command::new(&script).arg("check").output()?;
    if !check.status.success() {
        let reason = String::from_utf8_lossy(&check.stderr);
        return Err(crate::exit::usage(format!(
            "`shoal demo --wan` builds network namespaces and needs root and nftables NAT ({}); \
             run it as root, or run `shoal demo` for the loopback demo",
            reason.trim().trim_start_matches("natlab: skipped: ")
        )));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = GroupKey::from_random(secret);
    let prefix = format!("sd{}", std::process::id() % 100_000);
    let up = Command::new(&script)
        .args(["up", &prefix, "cone"])
        .output()?;
    if !up.status.success() {
        bail!(
            "cannot build the lab: {}",
            String::from_utf8_lossy(&up.stderr)
        );
    }
    let mut lab = Lab {
        script,
        prefix,
        secret: key.to_hex(),
        children: Vec::new(),
    };
    story(&mut lab, dir, &key)
}

/// The demo's steps, in a built lab.
fn story(lab: &mut Lab, dir: &Path, key: &GroupKey) -> Result<()> {
    println!("A relay on a stand-in internet (198.18.0.1); the laptop behind one home");
    println!("router (NAT, 198.18.0.2), the desktop behind another (198.18.0.3).\n");
    println!("1. Each machine writes while apart:");
    let mut stores = Vec::new();
    let mut ids = Vec::new();
    for (name, _) in MACHINES {
        let data = DataDir::at(dir.join(name));
        let _ = std::fs::remove_dir_all(data.dir());
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let init = Command::new(exe)
            .args(["--json", "--data", path(data.dir()), "init"])
            .output()?;
        let id: Value = serde_json::from_slice(&init.stdout).context("init printed no JSON")?;
        ids.push(id["peer_id"].as_str().context("no peer id")?.to_string());
        let store = data.create()?;
        let tasks = store.collection("tasks")?;
        tasks.put(
            &format!("{name}-1"),
            json!({"title": format!("written on the {name}")}),
        )?;
        tasks.put("shared", json!({"title": "plan trip", "done": false}))?;
        stores.push(store);
    }
    std::thread::sleep(Duration::from_millis(5));
    stores[0]
        .collection("tasks")?
        .patch("shared", json!({"title": "plan trip to Lisbon"}))?;
    stores[1]
        .collection("tasks")?
        .patch("shared", json!({"done": true}))?;
    println!("   shared: the laptop edits the title, the desktop marks it done");

    println!("\n2. The relay starts; it admits only members (it holds a token, not the key):");
    let relay_dir = dir.join("relay");
    let token = RelayToken::for_group(key).to_hex();
    let relay_args = [
        "relay",
        "--dir",
        path(&relay_dir),
        "--token",
        &token,
        "--listen",
        RELAY_AT,
        "--external-address",
        RELAY_AT,
    ];
    let relay = lab.spawn("inet", &relay_args, &dir.join("relay.log"))?;
    let mut line = String::new();
    let stdout = relay.stdout.take().context("the relay has no stdout")?;
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let info: Value = serde_json::from_str(&line).context("the relay printed no JSON line")?;
    let relay_id = info["peer_id"]
        .as_str()
        .context("no relay peer id")?
        .to_string();
    let relay_address = format!("{RELAY_AT}/p2p/{relay_id}");
    println!("   relay {relay_address}");

    println!("\n3. Both machines serve; the desktop knows the laptop only through the relay:");
    let via_relay = format!("{relay_address}/p2p-circuit/p2p/{}", ids[0]);
    for (i, (name, node)) in MACHINES.into_iter().enumerate() {
        let data = dir.join(name);
        let mut args = vec![
            "--data",
            path(&data),
            "serve",
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "/ip4/0.0.0.0/tcp/4040",
            "--relay",
            &relay_address,
        ];
        if i == 1 {
            args.extend(["--peer", via_relay.as_str()]);
        }
        lab.spawn(node, &args, &dir.join(format!("{name}.log")))?;
        println!("   {name:>8}: {}", ids[i]);
        if i == 0 {
            wait_reserved(&relay_dir)?;
        }
    }
    let started = Instant::now();
    let desktop = dir.join("desktop");
    let view = |lab: &Lab| -> Option<Value> {
        let peers = lab.json("b", &["--data", path(&desktop), "peers"])?;
        peers["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer"] == ids[0].as_str())
            .cloned()
    };
    let mut said_relayed = false;
    let direct = loop {
        if let Some(peer) = view(lab) {
            if peer["path"] == "relayed" && !said_relayed {
                said_relayed = true;
                println!(
                    "   {:>5} ms: connected through the relay ({})",
                    started.elapsed().as_millis(),
                    crate::peers::short_peer(&relay_id)
                );
            }
            if peer["path"] == "direct" {
                break peer;
            }
        }
        if started.elapsed() > LIMIT {
            bail!(
                "the desktop never reached the laptop directly (logs in {})",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let at = direct["addresses"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    if !said_relayed {
        println!(
            "   {:>5} ms: met through the relay ({}), and punched a hole at once",
            started.elapsed().as_millis(),
            crate::peers::short_peer(&relay_id)
        );
    }
    println!(
        "   {:>5} ms: hole punched, direct to the laptop's router at {} ({} of {} punches succeeded)",
        started.elapsed().as_millis(),
        at.as_str().unwrap_or("?"),
        direct["punch"]["successes"],
        direct["punch"]["attempts"],
    );

    converge(&stores, "4. They converge")?;
    println!("\n5. A live edit on the laptop travels over the direct connection:");
    stores[0]
        .collection("tasks")?
        .patch("shared", json!({"note": "book flights"}))?;
    converge(&stores, "   arrived")?;
    println!("\n6. Both machines now hold:");
    for ((name, _), store) in MACHINES.iter().zip(&stores) {
        let shared = store
            .collection("tasks")?
            .get("shared")?
            .unwrap_or_default();
        println!(
            "   {name:>8}: shared = {}, state digest {}",
            Value::Object(shared),
            crate::demo::digest(store)?
        );
    }
    println!("\nThe namespaces and processes are removed now.");
    Ok(())
}

/// Waits until the relay counts a reservation (its `stats.json`, rewritten
/// every 2 s): the laptop can be reached through it.
fn wait_reserved(relay_dir: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        let stats = std::fs::read_to_string(relay_dir.join("stats.json")).unwrap_or_default();
        let stats: Value = serde_json::from_str(&stats).unwrap_or(Value::Null);
        if stats["reservations_accepted"].as_u64() >= Some(1) {
            return Ok(());
        }
        if start.elapsed() > LIMIT {
            bail!("the laptop never held a reservation on the relay");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until both stores hold the same slot versions and clocks, then says
/// how long it took after `label`.
fn converge(stores: &[shoal::Store], label: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let digests = stores
            .iter()
            .map(crate::demo::digest)
            .collect::<Result<Vec<_>>>()?;
        if digests.windows(2).all(|w| w[0] == w[1]) {
            println!("{label} in {} ms", start.elapsed().as_millis());
            return Ok(());
        }
        if start.elapsed() > LIMIT {
            bail!("the machines did not converge within {LIMIT:?}: {digests:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A path as an argument (the demo's paths are UTF-8).
fn path(p: &Path) -> &str {
    p.to_str().unwrap_or("")
}
