//! `shoal demo --wan`: where the NAT lab can be built (root, namespaces,
//! nftables), the two NATed machines meet through the relay, go direct and
//! print the same state digest; elsewhere the demo says it needs root and
//! exits with the usage code, creating no namespace.

use crate::common;

use common::natlab::natlab;
use std::process::Command;

#[test]
fn the_wan_demo_meets_through_the_relay_goes_direct_and_converges() {
    let check = Command::new(natlab()).arg("check").output().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["demo", "--wan"])
        .output()
        .expect("run shoal demo --wan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !check.status.success() {
        eprintln!(
            "skipping the full run: {}",
            String::from_utf8_lossy(&check.stderr).trim()
        );
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(stderr.contains("needs root"), "{stderr}");
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The punch may win the race with the demo's first look at the path.
    assert!(
        stdout.contains("connected through the relay") || stdout.contains("met through the relay"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hole punched, direct to the laptop's router at /ip4/198.18.0.2/"),
        "{stdout}"
    );
    let digests: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split("state digest ").nth(1))
        .collect();
    assert_eq!(digests.len(), 2, "{stdout}");
    assert_eq!(digests[0], digests[1], "{stdout}");
    assert!(stdout.contains("plan trip to Lisbon"), "{stdout}");
    assert!(stdout.contains("book flights"), "{stdout}");
}
