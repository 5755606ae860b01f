//! A passphrase group across machines, with real `shoal serve` processes on
//! loopback: the first daemon makes the group's salt, its invite carries it,
//! and a second machine that joined with the code and serves with the same
//! passphrase (`$SHOAL_SECRET`) is in the same group — while a third that
//! never joined (its own salt) is refused as holding the wrong secret.
#![cfg(unix)]

use crate::common;

use common::{Node, state_of, wait_for, wait_or_explain};

const PASSPHRASE: &str = "sunshine42 on the shoal";

#[test]
fn a_passphrase_group_shares_its_salt_through_the_invite() {
    let a = Node::init();
    let da = a.serve(&[], Some(PASSPHRASE));
    let salt = std::fs::read_to_string(a.data.join("group.salt")).unwrap();
    assert_eq!(salt.trim().len(), 32, "{salt}");
    let code = a.run_with_secret(&["invite"], PASSPHRASE).ok().stdout;
    assert!(
        code.contains(salt.trim()),
        "the code carries the salt: {code}"
    );

    let b = Node::init();
    b.run(&["join", code.trim()]).ok();
    assert_eq!(
        std::fs::read_to_string(b.data.join("group.salt")).unwrap(),
        salt
    );
    // B's group.key came with the code; serving with the passphrase instead
    // derives the same key under the joined salt.
    std::fs::remove_file(b.data.join("group.key")).unwrap();
    let db = b.serve(&["--peer", da.address()], Some(PASSPHRASE));
    wait_for("the two passphrase daemons to connect", || {
        let on_b = state_of(&b.peers(), da.peer_id());
        (on_b.as_deref() == Some("connected")).then_some(())
    });

    // The same passphrase under another salt is another group.
    let c = Node::init();
    let dc = c.serve(&["--peer", da.address()], Some(PASSPHRASE));
    let rejected = wait_or_explain(
        "the machine that never joined to be refused",
        || {
            let on_c = c.peers();
            let on_a = a.peers();
            [
                on_c.iter().find(|p| p["peer"] == da.peer_id()),
                on_a.iter().find(|p| p["peer"] == dc.peer_id()),
            ]
            .into_iter()
            .flatten()
            .find(|row| row["state"] == "rejected")
            .cloned()
        },
        || format!("{}\n{}", da.log(), dc.log()),
    );
    assert_eq!(rejected["reason"], "wrong group secret");
    drop(db);
}
