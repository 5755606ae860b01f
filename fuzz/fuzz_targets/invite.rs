//! Invite codes (`shoal2:KEY.SALT.CHECKSUM@ADDRESS` and
//! `shoal3:KEY.SALT.CHECKSUM@ADDRESS,RELAY,…`, `shoal_net::Invite`) as a user
//! pastes them: any text, and — since a checksum guards the rest and a
//! fuzzer would rarely get past it — text whose checksum the target computes
//! itself (the documented formula: the first 4 bytes of BLAKE3 derive-key
//! "shoal invite checksum v2" over `shoal2:KEY.SALT@ADDRESS`, "… v3" over
//! `shoal3:KEY.SALT@ADDRESS,RELAY,…`), so the key, salt, multiaddr and relay
//! list parsers see arbitrary parts.
//!
//! Checked: no panic; an accepted code prints as a code that parses to the
//! same invite, and names the inviter behind each of its relays.
//!
//! The parser is `crates/shoal-net/src/invite.rs`, compiled here from its
//! source (with `libp2p` standing for the `multiaddr` crate it re-exports,
//! see `fuzz/libp2p-shim`), so the fuzz build needs no libp2p. If the file
//! moves, move the `#[path]` with it.

#![no_main]

use libfuzzer_sys::fuzz_target;
#[path = "../../crates/shoal-net/src/invite.rs"]
mod invite;

use invite::Invite;

fn check(text: &str) {
    if let Ok(invite) = text.parse::<Invite>() {
        let printed = invite.to_string();
        assert_eq!(printed.parse::<Invite>().as_ref(), Ok(&invite), "{printed}");
        // One way in through each relay, each ending at the inviter.
        let inviter = invite.address.iter().last();
        let via = invite.relayed_addresses();
        assert_eq!(via.len(), invite.relays.len());
        assert!(via.iter().all(|a| a.iter().last() == inviter));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        check(text);
        return;
    }
    // Odd modes: parts separated by newlines: key, salt, address (with
    // relays after commas); mode 1 mod 4 as shoal2, 3 mod 4 as shoal3.
    let (prefix, context) = if mode % 4 == 1 {
        ("shoal2:", "shoal invite checksum v2")
    } else {
        ("shoal3:", "shoal invite checksum v3")
    };
    let mut parts = text.splitn(3, '\n');
    let (key, salt, address) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let body = format!("{prefix}{key}.{salt}@{address}");
    let sum: String = blake3::derive_key(context, body.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    check(&format!("{prefix}{key}.{salt}.{sum}@{address}"));
});
