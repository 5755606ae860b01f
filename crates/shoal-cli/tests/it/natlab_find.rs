//! Finding each other across NAT, in the NAT lab (`scripts/natlab.sh`,
//! helpers in `common/natlab.rs`): the relay restarts and the members
//! re-reserve, reconnect and sync on; a member moves behind the other
//! router and is found again from the address book alone; a public member
//! and one behind NAT connect directly from an invite code, each knowing
//! whether it is reachable (AutoNAT v2 through the relay). Needs root;
//! where the lab cannot be built the tests print why and pass without
//! running.

use crate::common;

use common::natlab::{KEY, Lab, wait_for};
use std::time::Duration;

/// The relay's peer id, from its address.
fn id_of(relay: &str) -> String {
    relay.rsplit('/').next().unwrap().to_string()
}

#[test]
fn after_the_relay_restarts_members_reserve_again_and_sync_on() {
    // Symmetric NATs: no hole punching, so the members depend on the relay.
    let Some(mut lab) = Lab::up("symmetric") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    lab.init("b");
    lab.put("a", "a", "n1", r#"{"t":"before"}"#);
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    lab.serve("b", "b", KEY, &["--relay", &relay, "--peer", &via_relay]);
    let first = wait_for(Duration::from_secs(45), || lab.get("b", "b", KEY, "n1"));
    assert!(first.is_some(), "the first record never arrived");
    lab.stop("relay");
    // The circuit went with the relay: B sees A gone.
    let gone = wait_for(Duration::from_secs(30), || {
        lab.peer("b", "b", &a).filter(|p| p["state"] != "connected")
    });
    assert!(gone.is_some(), "A still connected with the relay down");
    lab.put("a", "a", "n2", r#"{"t":"after"}"#);
    // Same directory, same identity, same address: a fresh process with
    // fresh counters.
    let again = lab.relay();
    assert_eq!(again, relay);
    let later = wait_for(Duration::from_secs(60), || lab.get("b", "b", KEY, "n2"));
    assert!(
        later.is_some_and(|r| r.contains("after")),
        "no sync after the relay restarted: {}",
        lab.relay_stats()
    );
    let stats = wait_for(Duration::from_secs(6), || {
        let s = lab.relay_stats();
        (s["reservations_accepted"].as_u64() >= Some(2)
            && s["circuits_accepted"].as_u64() >= Some(1))
        .then_some(s)
    });
    assert!(
        stats.is_some(),
        "both members reserved again and met through the new relay process: {}",
        lab.relay_stats()
    );
    let peer = lab.peer("b", "b", &a).expect("B knows A");
    assert_eq!(peer["state"], "connected", "{peer}");
    assert_eq!(peer["path"], "relayed", "{peer}");
    assert_eq!(peer["relay"], id_of(&relay).as_str(), "{peer}");
}

#[test]
fn a_member_that_moved_is_found_again_from_the_address_book() {
    let Some(mut lab) = Lab::up("cone") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    let b = lab.init("b");
    // B is told of nobody: only A is given B's way in, once.
    lab.serve("b", "b", KEY, &["--relay", &relay]);
    lab.put("a", "a", "n1", r#"{"t":"at home"}"#);
    let via_relay = format!("{relay}/p2p-circuit/p2p/{b}");
    lab.serve("a", "a", KEY, &["--relay", &relay, "--peer", &via_relay]);
    let first = wait_for(Duration::from_secs(45), || lab.get("b", "b", KEY, "n1"));
    assert!(first.is_some(), "the first record never arrived");
    // Each remembers where it reached the other, B's relayed address
    // among A's entries.
    let book = |name: &str| std::fs::read_to_string(lab.path(name).join("addresses.txt"));
    let learned = wait_for(Duration::from_secs(20), || {
        let text = book("a").ok()?;
        text.lines()
            .any(|l| l.starts_with(&b) && l.contains("/p2p-circuit/"))
            .then_some(text)
    });
    assert!(
        learned.is_some(),
        "A never wrote B's relayed address in: {:?}",
        book("a")
    );
    // B never dialed A: A's relayed address came in A's announcement.
    let b_knows = wait_for(Duration::from_secs(20), || {
        book("b").ok().filter(|t| {
            t.lines()
                .any(|l| l.starts_with(&a) && l.contains("/p2p-circuit/"))
        })
    });
    assert!(
        b_knows.is_some(),
        "B never wrote A's relayed address in: {:?}",
        book("b")
    );
    // The laptop closes, moves to the other network, and starts again
    // with no peer given: only its address book knows the group.
    lab.stop("a");
    lab.move_node("a");
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    lab.put("b", "b", "n2", r#"{"t":"while away"}"#);
    let found = wait_for(Duration::from_secs(60), || lab.get("a", "a", KEY, "n2"));
    assert!(
        found.is_some_and(|r| r.contains("while away")),
        "the moved member never synced again"
    );
    let seen = wait_for(Duration::from_secs(20), || {
        lab.peer("b", "b", &a).filter(|p| p["state"] == "connected")
    });
    let seen = seen.expect("B does not see the moved A connected");
    // A is somewhere new: behind router 2 (10.3.0.2, or its NAT's
    // 198.18.0.3), or through the relay.
    let addresses = seen["addresses"].to_string();
    assert!(
        addresses.contains("10.3.0.2")
            || addresses.contains("198.18.0.3")
            || seen["path"] == "relayed",
        "B reaches A at its new place: {seen}"
    );
    lab.put("a", "a", "n3", r#"{"t":"from the new place"}"#);
    let back = wait_for(Duration::from_secs(30), || lab.get("b", "b", KEY, "n3"));
    assert!(back.is_some(), "no sync from the moved member");
}

#[test]
fn a_public_member_and_one_behind_nat_connect_directly_from_an_invite() {
    let Some(mut lab) = Lab::up("cone") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    lab.init("b");
    lab.put("a", "a", "n1", r#"{"t":"public"}"#);
    // A sits on the internet itself, next to the relay.
    lab.serve("a", "inet", KEY, &["--relay", &relay]);
    let a_dir = lab.path("a");
    let invite = wait_for(Duration::from_secs(20), || {
        let (ok, out) = lab.run(
            "inet",
            KEY,
            &["--json", "--data", a_dir.to_str().unwrap(), "invite"],
        );
        ok.then(|| serde_json::from_str::<serde_json::Value>(&out).ok())
            .flatten()
    })
    .expect("no invite from A");
    let code = invite["invite"].as_str().unwrap().to_string();
    assert!(
        code.starts_with("shoal3:"),
        "the invite carries the relay: {code}"
    );
    assert_eq!(invite["relays"][0], relay.as_str(), "{invite}");
    assert!(
        invite["address"]
            .as_str()
            .unwrap()
            .contains("/ip4/198.18.0.1/"),
        "{invite}"
    );
    // B joins with the code alone: it learns A's address and the relay.
    let b_dir = lab.path("b");
    let (ok, joined) = lab.run(
        "b",
        KEY,
        &["--json", "--data", b_dir.to_str().unwrap(), "join", &code],
    );
    assert!(ok, "join failed: {joined}");
    let relays = std::fs::read_to_string(b_dir.join("relays.txt")).unwrap();
    assert!(relays.contains(&relay), "{relays}");
    lab.serve("b", "b", KEY, &[]);
    let got = wait_for(Duration::from_secs(45), || lab.get("b", "b", KEY, "n1"));
    assert!(got.is_some(), "the record never arrived");
    let peer = lab.peer("b", "b", &a).expect("B knows A");
    assert_eq!(peer["state"], "connected", "{peer}");
    assert_eq!(peer["path"], "direct", "no relay needed: {peer}");
    // Each knows whether it can be dialed from the internet. A verdict
    // follows the latest probe of each address, so the first one may come
    // from an address that failed before another at the same IP was
    // probed: wait for the expected verdict, and name the last one seen.
    let reachability = |name: &str, node: &str, expected: &str| {
        let mut last = None;
        let reached = wait_for(Duration::from_secs(60), || {
            let r = lab.peers(name, node)?["reachability"].as_str()?.to_string();
            let done = r == expected;
            last = Some(r);
            done.then_some(())
        });
        assert!(
            reached.is_some(),
            "{name}: reachability {last:?} after 60 s, expected {expected}; relay: {}",
            lab.relay_stats()
        );
    };
    reachability("a", "inet", "public");
    reachability("b", "b", "behind NAT");
    // The relay writes its counters every 2 s.
    let probed = wait_for(Duration::from_secs(6), || {
        let s = lab.relay_stats();
        (s["probes"].as_u64() >= Some(2)).then_some(s)
    });
    assert!(
        probed.is_some(),
        "the relay probed both: {}",
        lab.relay_stats()
    );
    // Later data flows on the direct connection.
    lab.put("a", "inet", "n2", r#"{"t":"later"}"#);
    let later = wait_for(Duration::from_secs(20), || lab.get("b", "b", KEY, "n2"));
    assert!(later.is_some(), "the later record never arrived");
    let still = lab.peer("b", "b", &a).unwrap();
    assert_eq!(still["path"], "direct", "{still}");
}
