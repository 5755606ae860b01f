//! End-to-end tests of running a node from its config file: `shoal.toml`
//! read by `shoal serve` (flags override keys, bad keys refused), `shoal
//! service install/uninstall` (the unit checked by `systemd-analyze verify`
//! when the tool is there), and SIGHUP reloading sharing rules and peers in
//! a real daemon without a restart.
#![cfg(unix)]

use crate::common;

use common::{Node, state_of, wait_or_explain};
use std::process::Command;

fn write_config(node: &Node, text: &str) {
    std::fs::write(node.data.join("shoal.toml"), text).unwrap();
}

fn hup(daemon: &common::Daemon) {
    let pid = daemon.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits until the daemon's log has `text` `n` times.
fn wait_log(daemon: &common::Daemon, text: &str, n: usize) {
    wait_or_explain(
        &format!("{text:?} in the log ({n}x)"),
        || (daemon.log().matches(text).count() >= n).then_some(()),
        || daemon.log(),
    );
}

#[test]
fn the_config_file_sets_serve_flags_and_flags_override_it() {
    let a = Node::init();
    a.run(&["invite"]).code(2);
    // A key the file gets wrong is refused, naming the file.
    write_config(&a, "max-clock-drift = \"soon\"\n");
    let bad = a.run(&["serve", "--no-mdns"]).code(2);
    assert!(bad.stderr.contains("shoal.toml"), "{}", bad.stderr);
    assert!(bad.stderr.contains("max-clock-drift"), "{}", bad.stderr);
    write_config(&a, "no-mdns = true\nlisen = [\"/ip4/127.0.0.1/tcp/0\"]\n");
    let bad = a.run(&["serve"]).code(2);
    assert!(bad.stderr.contains("unknown key `lisen`"), "{}", bad.stderr);

    // The file's key is used: a public HTTP address without http-public is refused…
    write_config(&a, "http = \"0.0.0.0:0\"\nno-mdns = true\n");
    let refused = a
        .run(&["serve", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .code(2);
    assert!(
        refused.stderr.contains("--http-public"),
        "{}",
        refused.stderr
    );
    // …and the same key given as a flag replaces it.
    let daemon = a.serve(&[], None);
    assert!(daemon.http().starts_with("127.0.0.1:"), "{}", daemon.http());
    drop(daemon);

    // --config PATH elsewhere, with the data directory in it.
    let elsewhere = a.data.parent().unwrap().join("elsewhere.toml");
    std::fs::write(
        &elsewhere,
        format!(
            "data = {:?}\nname = \"from-the-file\"\n",
            a.data.to_str().unwrap()
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .env_remove("SHOAL_DATA")
        .env_remove("SHOAL_CONFIG")
        .args(["--json", "--config", elsewhere.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let ours = a.run(&["--json", "status"]).ok().json();
    let theirs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(theirs["peer_id"], ours["peer_id"]);
    let missing = a
        .run(&["--config", "/nonexistent/shoal.toml", "status"])
        .code(2);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_service_unit_is_written_checked_and_removed() {
    let a = Node::init();
    let units = a.data.parent().unwrap().join("units");
    let dir = units.to_str().unwrap();
    // No group secret yet: the unit would not start, so it is not written.
    let refused = a.run(&["service", "install", "--unit-dir", dir]).code(2);
    assert!(
        refused.stderr.contains("no group secret"),
        "{}",
        refused.stderr
    );
    assert!(!units.join("shoal.service").exists());

    a.run(&["invite"]).code(2);
    write_config(
        &a,
        "listen = [\"/ip4/127.0.0.1/tcp/4999\"]\nno-mdns = true\nsecret-file = \"relative.txt\"\n",
    );
    let refused = a.run(&["service", "install", "--unit-dir", dir]).code(2);
    assert!(refused.stderr.contains("absolute"), "{}", refused.stderr);
    write_config(
        &a,
        "listen = [\"/ip4/127.0.0.1/tcp/4999\"]\nno-mdns = true\n",
    );

    let printed = a.run(&["service", "install", "--print"]).ok().stdout;
    assert!(!units.exists(), "--print writes nothing");
    let data = a.data.to_str().unwrap();
    let config = a.data.join("shoal.toml");
    let exec = format!(
        "ExecStart=\"{}\" \"--data\" \"{data}\" \"--config\" \"{}\" \"serve\"",
        env!("CARGO_BIN_EXE_shoal"),
        config.display()
    );
    assert!(printed.contains(&exec), "{printed}");
    assert!(printed.contains("/ip4/127.0.0.1/tcp/4999"), "{printed}");
    assert!(
        printed.contains("ExecReload=kill -HUP $MAINPID"),
        "{printed}"
    );

    for (system, name) in [(false, "shoal"), (true, "shoal-system")] {
        let mut args = vec!["service", "install", "--unit-dir", dir, "--unit", name];
        if system {
            args.extend(["--system", "--run-as", "root"]);
        }
        a.run(&args).ok();
        let path = units.join(format!("{name}.service"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&exec), "{text}");
        assert_eq!(text.contains("User=root"), system, "{text}");
        verify(&path);
    }

    // A unit someone else wrote is neither replaced nor removed.
    let foreign = units.join("other.service");
    std::fs::write(&foreign, "[Service]\nExecStart=/bin/true\n").unwrap();
    let refused = a
        .run(&["service", "install", "--unit-dir", dir, "--unit", "other"])
        .code(2);
    assert!(
        refused.stderr.contains("not written by"),
        "{}",
        refused.stderr
    );
    let refused = a
        .run(&["service", "uninstall", "--unit-dir", dir, "--unit", "other"])
        .code(2);
    assert!(
        refused.stderr.contains("not written by"),
        "{}",
        refused.stderr
    );
    assert!(foreign.exists());

    a.run(&["service", "uninstall", "--unit-dir", dir]).ok();
    assert!(!units.join("shoal.service").exists());
    a.run(&["service", "uninstall", "--unit-dir", dir]).code(1);
}

/// `systemd-analyze verify` on the unit, when the tool is installed.
fn verify(unit: &std::path::Path) {
    let Ok(out) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
    else {
        eprintln!("systemd-analyze is not installed: the unit's content is checked, not verified");
        return;
    };
    assert!(
        out.status.success(),
        "systemd-analyze verify {}: {}{}",
        unit.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sighup_applies_new_sharing_rules_and_peers_without_a_restart() {
    let a = Node::init();
    a.run(&["invite"]).code(2);
    write_config(&a, "no-mdns = true\n");
    let da = a.serve(&[], None);
    // A SIGHUP as soon as the daemon has announced itself is a reload, not the end.
    hup(&da);
    wait_log(&da, "reloaded sharing rules and peers", 1);
    let code = a.run(&["invite"]).ok().stdout.trim().to_string();
    let b = Node::init();
    b.run(&["join", &code]).ok();
    let db = b.serve(&[], None);
    b.run(&["put", "diary", "d1", "{\"n\": 1}"]).ok();
    wait_or_explain(
        "d1 to reach a",
        || (a.run(&["get", "diary", "d1"]).code == 0).then_some(()),
        || da.log(),
    );

    // A rule in the file: a no longer takes diary from anyone.
    write_config(
        &a,
        "no-mdns = true\n[[share]]\npeer = \"*\"\ncollection = \"diary\"\nmode = \"none\"\n",
    );
    hup(&da);
    wait_log(&da, "reloaded sharing rules and peers", 2);
    let rules = a.run(&["--json", "share", "--list"]).ok().json();
    assert!(rules.to_string().contains("diary"), "{rules}");
    b.run(&["put", "diary", "d2", "{\"n\": 2}"]).ok();
    b.run(&["put", "tasks", "t1", "{\"n\": 1}"]).ok();
    wait_or_explain(
        "t1 (written after d2) to reach a",
        || (a.run(&["get", "tasks", "t1"]).code == 0).then_some(()),
        || da.log(),
    );
    a.run(&["get", "diary", "d2"]).code(1);
    // The session with b stayed up: the reload dropped nothing.
    assert_eq!(
        state_of(&a.peers(), db.peer_id()).as_deref(),
        Some("connected")
    );
    assert_eq!(da.log().matches("SIGHUP").count(), 2);

    // A peer added to the file is dialled on the next SIGHUP.
    let c = Node::empty();
    c.run(&["init"]).ok();
    c.run(&["join", &code]).ok();
    std::fs::remove_file(c.data.join("peers.txt")).unwrap(); // c dials nobody
    let dc = c.serve(&[], None);
    let address = format!("{}/p2p/{}", dc.address(), dc.peer_id());
    assert_eq!(state_of(&a.peers(), dc.peer_id()), None);
    write_config(
        &a,
        &format!(
            "no-mdns = true\npeer = [\"{address}\"]\n[[share]]\npeer = \"*\"\n\
             collection = \"diary\"\nmode = \"none\"\n"
        ),
    );
    // A broken edit first: logged, nothing applied, the daemon keeps running.
    std::fs::write(a.data.join("shoal.toml"), "peer = [\"not an address\"]\n").unwrap();
    hup(&da);
    wait_log(&da, "reload failed", 1);
    write_config(
        &a,
        &format!(
            "no-mdns = true\npeer = [\"{address}\"]\n[[share]]\npeer = \"*\"\n\
             collection = \"diary\"\nmode = \"none\"\n"
        ),
    );
    hup(&da);
    wait_log(&da, "reloaded sharing rules and peers", 3);
    wait_or_explain(
        "a to connect to c",
        || (state_of(&a.peers(), dc.peer_id()).as_deref() == Some("connected")).then_some(()),
        || format!("{:?}\n{}", a.peers(), da.log()),
    );
    assert_eq!(
        state_of(&a.peers(), db.peer_id()).as_deref(),
        Some("connected")
    );
    // A rule taken out of the file is lifted on the next SIGHUP: diary flows
    // again (d2, refused while the rule stood, arrives with what follows).
    write_config(&a, &format!("no-mdns = true\npeer = [\"{address}\"]\n"));
    hup(&da);
    wait_log(&da, "reloaded sharing rules and peers", 4);
    let rules = a.run(&["--json", "share", "--list"]).ok().json();
    assert!(!rules.to_string().contains("diary"), "{rules}");
    b.run(&["put", "diary", "d3", "{\"n\": 3}"]).ok();
    wait_or_explain(
        "d3 to reach a once the rule is gone",
        || (a.run(&["get", "diary", "d3"]).code == 0).then_some(()),
        || da.log(),
    );
    wait_or_explain(
        "d2 to be levelled once the rule is gone",
        || (a.run(&["get", "diary", "d2"]).code == 0).then_some(()),
        || da.log(),
    );
}
