//! Seeing how a peer is reached, in the NAT lab (`common/natlab.rs`): sync
//! starts at once over the relayed connection and moves to the direct one
//! when the hole is punched. Both daemons run with the testing option
//! `--punch-delay`, which starts the (real) hole punch that long after the
//! relayed connection opens — without it the punch usually wins the race
//! with the first record and the relayed start cannot be seen. Needs root;
//! skips, saying why, where the lab cannot be built.

use crate::common;

use common::natlab::{KEY, Lab, wait_for};
use serde_json::Value;
use std::time::Duration;

/// How long after the relayed connection opens the hole is punched.
const PUNCH_DELAY_SECS: u64 = 8;

#[test]
fn sync_starts_over_the_relay_then_moves_to_the_punched_connection() {
    let Some(mut lab) = Lab::up("cone") else {
        return;
    };
    let relay = lab.relay();
    let relay_id = relay.rsplit('/').next().unwrap().to_string();
    let a = lab.init("a");
    let b = lab.init("b");
    lab.put("a", "a", "n1", r#"{"t":"first"}"#);
    let delay = format!("{PUNCH_DELAY_SECS}s");
    lab.serve("a", "a", KEY, &["--relay", &relay, "--punch-delay", &delay]);
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    lab.serve(
        "b",
        "b",
        KEY,
        &[
            "--relay",
            &relay,
            "--peer",
            &via_relay,
            "--punch-delay",
            &delay,
        ],
    );

    // The first record arrives while the only connection is the relayed one.
    let first = wait_for(Duration::from_secs(30), || lab.get("b", "b", KEY, "n1"));
    assert!(
        first.is_some_and(|r| r.contains("first")),
        "the first record never arrived"
    );
    let seen = lab.peer("b", "b", &a).expect("B knows A");
    assert_eq!(seen["path"], "relayed", "arrived over the relay: {seen}");
    assert_eq!(seen["relay"], relay_id.as_str(), "{seen}");
    assert_eq!(seen["punch"]["attempts"], 0, "no punch yet: {seen}");
    let relayed_since = seen["path_since_ms"].as_u64().expect("path_since_ms");
    let table = lab.peers_table("b", "b");
    let short_relay = &relay_id[relay_id.len() - 8..];
    assert!(
        table.contains("relayed via") && table.contains(short_relay),
        "the table names the relay: {table}"
    );

    // Then the hole is punched: the connection becomes direct, at A's
    // router's address, and the punch is counted.
    let direct = wait_for(Duration::from_secs(PUNCH_DELAY_SECS + 20), || {
        lab.peer("b", "b", &a)
            .filter(|p| p["path"] == "direct" && p["state"] == "connected")
    })
    .unwrap_or_else(|| panic!("never direct: {:?}", lab.peer("b", "b", &a)));
    let direct_since = direct["path_since_ms"].as_u64().expect("path_since_ms");
    assert!(
        direct_since >= relayed_since + (PUNCH_DELAY_SECS - 1) * 1000,
        "direct only after the delay: relayed at {relayed_since}, direct at {direct_since}"
    );
    assert!(
        direct["addresses"].to_string().contains("/ip4/198.18.0.2/"),
        "{direct}"
    );
    let punched = |p: &Value| p["punch"]["successes"].as_u64().unwrap_or(0);
    let on_a = lab.peer("a", "a", &b).expect("A knows B");
    assert!(
        punched(&direct) + punched(&on_a) >= 1,
        "a punch succeeded on one side: B {direct}, A {on_a}"
    );
    let tried = |p: &Value| p["punch"]["attempts"].as_u64().unwrap_or(0);
    assert!(tried(&direct) >= punched(&direct), "{direct}");
    let table = lab.json("b", "b", &["peers"]).expect("B's peers");
    assert!(
        tried(&table) >= tried(&direct) && punched(&table) >= punched(&direct),
        "the node's totals hold the peer's punches: {table}"
    );

    // Later data flows over the direct connection: every circuit closed.
    lab.put("a", "a", "n2", r#"{"t":"later"}"#);
    let later = wait_for(Duration::from_secs(20), || lab.get("b", "b", KEY, "n2"));
    assert!(
        later.is_some_and(|r| r.contains("later")),
        "the later record never arrived"
    );
    let closed = wait_for(Duration::from_secs(6), || {
        let s = lab.relay_stats();
        (s["circuits_accepted"].as_u64() >= Some(1)
            && s["circuits_closed"] == s["circuits_accepted"])
            .then_some(s)
    });
    assert!(
        closed.is_some(),
        "a circuit stayed open: {}",
        lab.relay_stats()
    );
    let still = lab.peer("b", "b", &a).unwrap();
    assert_eq!(still["path"], "direct", "{still}");
    assert_eq!(
        still["path_since_ms"], direct["path_since_ms"],
        "the direct connection stayed: {still}"
    );
}
