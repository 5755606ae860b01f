//! mDNS discovery on a real (virtual) LAN: two network namespaces joined by a
//! veth pair (10.213.0.1/24 and 10.213.0.2/24), one node in each — this test
//! binary re-executed into the ignored `mdns_child` test through
//! `ip netns exec` — listening on `/ip4/0.0.0.0/tcp/0` with mDNS on and no
//! configured peers. Each writes a record; each must find the other by mDNS
//! alone and receive the other's record.
//!
//! Needs root and iproute2 (`ip`); without them the test prints that it is
//! skipped and passes. The namespaces (and with them the veth pair) are
//! removed at the end, also on failure.

use serde_json::json;
use shoal::{GroupKey, NodeConfig, Store};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the children only: their role, `a` or `b`.
const ROLE_ENV: &str = "SHOAL_MDNS_ROLE";
/// The directory shared with the parent: databases and result files.
const DIR_ENV: &str = "SHOAL_MDNS_DIR";
/// The group key, as hex.
const KEY_ENV: &str = "SHOAL_MDNS_KEY";
/// How long a child waits for the other's record.
const CHILD_LIMIT: Duration = Duration::from_secs(30);
/// How long the parent waits for both children.
const PARENT_LIMIT: Duration = Duration::from_secs(45);

/// Runs `ip` with `args`; the error says what failed.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The namespaces and children of one run; removes and kills them on drop.
#[derive(Default)]
struct Lab {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace destroys the veth end inside it, and so the pair.
        for ns in &self.namespaces {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

impl Lab {
    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        // A leftover of a killed run that had the same process id.
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_string());
        Ok(())
    }
}

/// Two namespaces joined by a veth pair, each end addressed and up.
fn build_lan(lab: &mut Lab, tag: &str) -> Result<[String; 2], String> {
    let ns = [format!("shoal-mdns-{tag}-a"), format!("shoal-mdns-{tag}-b")];
    // Interface names are at most 15 bytes.
    let veth = [format!("shm{tag}a"), format!("shm{tag}b")];
    lab.add_namespace(&ns[0])?;
    lab.add_namespace(&ns[1])?;
    ip(&[
        "link", "add", &veth[0], "netns", &ns[0], "type", "veth", "peer", "name", &veth[1],
        "netns", &ns[1],
    ])?;
    for (i, address) in ["10.213.0.1/24", "10.213.0.2/24"].into_iter().enumerate() {
        ip(&["-n", &ns[i], "addr", "add", address, "dev", &veth[i]])?;
        ip(&["-n", &ns[i], "link", "set", &veth[i], "up"])?;
        ip(&["-n", &ns[i], "link", "set", "lo", "up"])?;
    }
    Ok(ns)
}

fn result_file(dir: &Path, role: &str, outcome: &str) -> PathBuf {
    dir.join(format!("{role}.{outcome}"))
}

#[test]
fn mdns_finds_a_peer_across_a_veth_pair() {
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED mdns_finds_a_peer_across_a_veth_pair: `ip` (iproute2) is not installed");
        return;
    }
    // Declared before the lab, so it outlives the children the lab kills.
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::default();
    let tag = (std::process::id() % 10_000_000).to_string();
    let ns = match build_lan(&mut lab, &tag) {
        Ok(ns) => ns,
        Err(e) if lab.namespaces.is_empty() => {
            eprintln!(
                "SKIPPED mdns_finds_a_peer_across_a_veth_pair: cannot create network \
                 namespaces (needs root): {e}"
            );
            return;
        }
        Err(e) => panic!("cannot build the veth LAN: {e}"),
    };
    let key = GroupKey::from_random([21; 32]).to_hex();
    // This test binary again, running only the child test (by its path in
    // the binary: tests/it/main.rs holds every file as a module).
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    for (role, ns) in ["a", "b"].into_iter().zip(&ns) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args([
                "sync_mdns::mdns_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(ROLE_ENV, role)
            .env(DIR_ENV, dir.path())
            .env(KEY_ENV, &key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a child node in its namespace");
        lab.children.push(child);
    }
    let mut statuses = [None, None];
    while statuses.iter().any(Option::is_none) {
        assert!(
            started.elapsed() < PARENT_LIMIT,
            "children still running after {PARENT_LIMIT:?}"
        );
        for (child, status) in lab.children.iter_mut().zip(&mut statuses) {
            if status.is_none() {
                *status = child.try_wait().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (role, status) in ["a", "b"].into_iter().zip(statuses) {
        let failure = std::fs::read_to_string(result_file(dir.path(), role, "fail"));
        assert!(
            status.unwrap().success(),
            "child {role} failed: {}",
            failure.unwrap_or_default()
        );
        let seen = std::fs::read_to_string(result_file(dir.path(), role, "ok"))
            .unwrap_or_else(|_| panic!("child {role} left no result"));
        let other = if role == "a" { "b" } else { "a" };
        assert_eq!(seen.trim(), format!("from-{other}"));
    }
    eprintln!(
        "both nodes found each other by mDNS in {:?}",
        started.elapsed()
    );
}

/// One node of `mdns_finds_a_peer_across_a_veth_pair`, run inside its network
/// namespace (the parent sets `SHOAL_MDNS_ROLE`); a no-op when run any other way.
#[test]
#[ignore = "child process of mdns_finds_a_peer_across_a_veth_pair"]
fn mdns_child() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("the shared directory"));
    let key = GroupKey::from_hex(&std::env::var(KEY_ENV).expect("the key")).expect("a key");
    let other = if role == "a" { "b" } else { "a" };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let store = Store::open(dir.join(format!("{role}.db"))).map_err(|e| e.to_string())?;
        let notes = store.collection("notes").map_err(|e| e.to_string())?;
        notes
            .put(&format!("from-{role}"), json!({"role": role}))
            .map_err(|e| e.to_string())?;
        let mut config = NodeConfig::loopback(key);
        config.listen = vec!["/ip4/0.0.0.0/tcp/0".parse().unwrap()];
        config.mdns = true;
        config.peers.clear();
        let node = store.start_node(config).await.map_err(|e| e.to_string())?;
        let wanted = format!("from-{other}");
        let deadline = Instant::now() + CHILD_LIMIT;
        while notes.get(&wanted).map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{role} did not receive {wanted} within {CHILD_LIMIT:?}; peers: {:?}",
                    node.peers()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::write(result_file(&dir, &role, "ok"), &wanted).map_err(|e| e.to_string())?;
        // Stay up until the other has our record too (or the deadline).
        while !result_file(&dir, other, "ok").exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node.shutdown().await;
        Ok::<(), String>(())
    });
    if let Err(e) = outcome {
        let _ = std::fs::write(result_file(&dir, &role, "fail"), &e);
        eprintln!("mdns child {role}: {e}");
        std::process::exit(1);
    }
}
