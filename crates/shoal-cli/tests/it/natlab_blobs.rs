//! The blob policy over relays, in the NAT lab (`common/natlab.rs`): behind
//! symmetric NATs, where the connection stays relayed, a blob up to
//! `--relay-blob-max` flows through the relay and a larger one waits for a
//! direct connection, reported as such by `shoal blob ls --missing`. Needs
//! root; skips, saying why, where the lab cannot be built.

use crate::common;

use common::natlab::{KEY, Lab, wait_for};
use serde_json::Value;
use std::time::Duration;

/// The relay cap the fetching node runs with, in KiB.
const RELAY_MAX_KIB: usize = 64;

#[test]
fn a_blob_over_the_relay_cap_waits_for_a_direct_connection_one_under_it_flows() {
    let Some(mut lab) = Lab::up("symmetric") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    lab.init("b");
    let small = lab.blob_add("a", &vec![7u8; 16 * 1024]);
    let large = lab.blob_add("a", &vec![9u8; 4 * RELAY_MAX_KIB * 1024]);
    let body = |hash: &str, size: usize| format!(r#"{{"f":{{"$blob":"{hash}","size":{size}}}}}"#);
    lab.put("a", "a", "small", &body(&small, 16 * 1024));
    lab.put("a", "a", "large", &body(&large, 4 * RELAY_MAX_KIB * 1024));
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    let cap = RELAY_MAX_KIB.to_string();
    lab.serve(
        "b",
        "b",
        KEY,
        &[
            "--relay",
            &relay,
            "--peer",
            &via_relay,
            "--relay-blob-max",
            &cap,
        ],
    );

    // Both records arrive; the small blob follows them through the relay.
    let records = wait_for(Duration::from_secs(40), || {
        lab.get("b", "b", KEY, "large")
            .and(lab.get("b", "b", KEY, "small"))
    });
    assert!(records.is_some(), "the records never arrived");
    let held = |hash: &str| {
        lab.json("b", "b", &["blob", "ls"]).is_some_and(|v| {
            v["blobs"]
                .as_array()
                .is_some_and(|rows| rows.iter().any(|r| r["hash"] == hash))
        })
    };
    let small_here = wait_for(Duration::from_secs(30), || held(&small).then_some(()));
    assert!(
        small_here.is_some(),
        "the small blob never came through the relay"
    );

    // The large one waits, and says why.
    let waiting = wait_for(Duration::from_secs(20), || {
        let missing = lab.json("b", "b", &["blob", "ls", "--missing"])?;
        let row = missing["blobs"]
            .as_array()?
            .iter()
            .find(|r| r["hash"] == large.as_str())?
            .clone();
        (row["transfer"]["state"] == "awaiting-direct").then_some(row)
    });
    let row = waiting.unwrap_or_else(|| {
        panic!(
            "the large blob is not reported waiting: {:?}",
            lab.json("b", "b", &["blob", "ls", "--missing"])
        )
    });
    assert_eq!(
        row["transfer"]["relay_max"],
        (RELAY_MAX_KIB * 1024) as u64,
        "{row}"
    );
    // Still waiting a few scans later, over a connection still relayed.
    std::thread::sleep(Duration::from_secs(6));
    assert!(!held(&large), "the large blob went through the relay");
    let peer: Value = lab.peer("b", "b", &a).expect("B knows A");
    assert_eq!(peer["path"], "relayed", "{peer}");
    let table = {
        let dir = lab.path("b");
        lab.run(
            "b",
            KEY,
            &["--data", dir.to_str().unwrap(), "blob", "ls", "--missing"],
        )
        .1
    };
    assert!(
        table.contains("waiting for a direct connection (over the relay cap of 64 KiB)"),
        "{table}"
    );
}
