//! Devices through the relay (issue 19) in the NAT lab: two members behind
//! symmetric NATs, whose only way to each other is the relay; once the owner
//! revokes the other, that device — still holding the group secret, its key
//! and the relay token — gets nothing written after the revocation, and
//! nothing it writes is taken. Needs root; where the lab cannot be built the
//! test prints why and passes without running.

use crate::common;

use common::natlab::{KEY, Lab, wait_for};
use std::time::Duration;

#[test]
fn a_revoked_device_gets_nothing_through_the_relay() {
    let Some(mut lab) = Lab::up("symmetric") else {
        return;
    };
    let relay = lab.relay();
    let a = lab.init("a");
    let b = lab.init("b");
    lab.put("a", "a", "n1", r#"{"t":"before"}"#);
    lab.serve("a", "a", KEY, &["--relay", &relay]);
    let via_relay = format!("{relay}/p2p-circuit/p2p/{a}");
    lab.serve("b", "b", KEY, &["--relay", &relay, "--peer", &via_relay]);
    let first = wait_for(Duration::from_secs(60), || lab.get("b", "b", KEY, "n1"));
    assert!(
        first.is_some(),
        "the first record never arrived through the relay"
    );

    // A makes the owner key (admitting B, which it synced with), then
    // revokes B, and writes.
    let made = lab
        .json("a", "a", &["devices", "owner-key", "create"])
        .expect("owner-key create");
    assert!(made["admitted"].to_string().contains(&b), "{made}");
    let later = wait_for(Duration::from_secs(20), || {
        lab.put("a", "a", "n2", r#"{"t":"admitted"}"#);
        lab.get("b", "b", KEY, "n2")
    });
    assert!(
        later.is_some(),
        "an admitted B stopped syncing through the relay"
    );
    let revoked = lab
        .json("a", "a", &["devices", "revoke", &b])
        .expect("revoke");
    assert_eq!(revoked["status"], "revoked");
    lab.put("a", "a", "n3", r#"{"t":"after"}"#);
    let refused = wait_for(Duration::from_secs(20), || {
        lab.peer("b", "b", &a)
            .filter(|p| p["state"] == "rejected")
            .and_then(|p| p["reason"].as_str().map(str::to_string))
    });
    assert!(
        refused.as_deref().is_some_and(|r| r.contains("revoked")),
        "B was not refused as revoked: {refused:?}\n{}",
        lab.peers_table("b", "b")
    );
    lab.put("b", "b", "from-b", r#"{"t":"revoked writes"}"#);
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        lab.get("b", "b", KEY, "n3").is_none(),
        "a revoked device received a record through the relay"
    );
    assert!(
        lab.get("a", "a", KEY, "from-b").is_none(),
        "a member took a revoked device's change"
    );
}
