//! WAN scenarios in the NAT lab (`scripts/natlab.sh`): real `shoal relay`
//! and `shoal serve` daemons in network namespaces behind nftables NAT.
//! Needs root; where the lab cannot be built the tests print why and pass
//! without running (the script's exit 77). The lab's helpers are in
//! `common/natlab.rs`.

use crate::common;

use common::natlab::{KEY, Lab, STRANGER_KEY, shoal, wait_for};
use std::process::Command;
use std::time::Duration;

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
    // Nor a dial-back: the member learns where it stands, the stranger
    // never does (the relay drops its AutoNAT requests; without that it
    // would hear "behind NAT" within about 15 s).
    let member = wait_for(Duration::from_secs(60), || {
        let r = lab.peers("a", "a")?["reachability"].as_str()?.to_string();
        (r != "unknown").then_some(r)
    });
    assert_eq!(
        member.as_deref(),
        Some("behind NAT"),
        "{}",
        lab.relay_stats()
    );
    let stranger = wait_for(Duration::from_secs(25), || {
        let r = lab.peers("s", "b")?["reachability"].as_str()?.to_string();
        (r != "unknown").then_some(r)
    });
    assert_eq!(stranger, None, "the stranger was probed");
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
