//! `shoal invite` and `shoal join`: handing the group secret and an address
//! to dial from one machine to another as one line of text (an [`Invite`]).
//!
//! This module owns creating a group (a random key in `DATA/group.key` when
//! none exists), choosing the address and the relays an invite carries
//! (`--relay`, else the running daemon's relays, else `relays.txt`), and
//! joining: writing the key and the group's salt (never silently replacing
//! a different key), remembering the address — and the inviter's address
//! through each of its relays — in `peers.txt` and the relays in
//! `relays.txt`, and telling a running daemon to dial them.

use crate::args::{InviteArgs, JoinArgs};
use crate::daemon_client::Daemon;
use crate::datadir::DataDir;
use crate::exit::usage;
use crate::output::{Output, hint};
use crate::{peer_file, secrets};
use anyhow::Result;
use serde_json::json;
use shoal::{Invite, Multiaddr};

/// `shoal invite`.
pub fn invite(data: &DataDir, args: InviteArgs, out: &mut Output) -> Result<()> {
    let store = data.open()?;
    let own_peer = store.peer_id();
    let daemon = DaemonView::find(data)?;
    let (key, salt) = match secrets::load_group_key(data, None)? {
        Some(loaded) => {
            for note in &loaded.notes {
                hint(format_args!("{note}"));
            }
            (loaded.key, loaded.salt)
        }
        // A daemon runs with a key we cannot see: a new one would not match it.
        None if daemon.is_some() => return Err(different_secret()),
        None => {
            let key = secrets::random_key()?;
            secrets::write_key_file(data, &key)?;
            hint(format_args!(
                "created a new group: its key is in {}",
                data.file(secrets::GROUP_KEY_FILE).display()
            ));
            (key, secrets::ensure_salt(data)?)
        }
    };
    if let Some(daemon) = &daemon
        && daemon.group != crate::api::fingerprint(&key)
    {
        return Err(different_secret());
    }
    let address = match (args.address, &daemon) {
        (Some(address), _) => with_peer_id(address, &own_peer)?,
        (None, Some(daemon)) => {
            crate::http::invite_address(&daemon.listen).ok_or_else(no_address)?
        }
        (None, None) => return Err(no_address()),
    };
    let relays = if !args.relay.is_empty() {
        args.relay
    } else if let Some(daemon) = &daemon {
        daemon
            .relays
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect()
    } else {
        peer_file::read_relays(data)?
    };
    if relays.len() > shoal::MAX_INVITE_RELAYS {
        return Err(usage(format!(
            "an invite carries at most {} relays; pass fewer with --relay",
            shoal::MAX_INVITE_RELAYS
        )));
    }
    let code = Invite {
        key,
        salt,
        address,
        relays,
    };
    // What a joiner will parse must parse: e.g. the address ends in /p2p/<id>.
    if let Err(e) = code.to_string().parse::<Invite>() {
        return Err(usage(format!(
            "cannot make an invite for {}: {e}",
            code.address
        )));
    }
    if out.is_json() {
        out.json(&json!({
            "invite": code.to_string(),
            "address": code.address.to_string(),
            "relays": code.relays.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        out.line(&code)?;
    }
    hint(
        "warning: this code contains the group secret; anyone who has it can join the group \
         and read and change all its data. Share it only over a private channel.",
    );
    Ok(())
}

fn no_address() -> anyhow::Error {
    usage(
        "no address to put in the invite: start `shoal serve` (the invite then carries its \
         address) or pass --address MULTIADDR",
    )
}

fn different_secret() -> anyhow::Error {
    usage(
        "the running daemon uses a different group secret than this command found (it was \
         started with --secret-file or $SHOAL_SECRET); run `shoal invite` with the same \
         $SHOAL_SECRET, or restart `shoal serve` without it",
    )
}

/// `address` ending in `/p2p/<peer id>`: as given if it names a peer, else
/// with this node's id appended.
fn with_peer_id(address: Multiaddr, own_peer: &str) -> Result<Multiaddr> {
    if address.to_string().contains("/p2p/") {
        return Ok(address);
    }
    format!("{address}/p2p/{own_peer}").parse().map_err(|e| {
        usage(format!(
            "cannot add the peer id to --address {address}: {e}"
        ))
    })
}

/// What the running daemon says of itself (a daemon.json whose daemon does
/// not answer is left over from a crash and ignored).
struct DaemonView {
    listen: Vec<String>,
    group: String,
    relays: Vec<String>,
}

impl DaemonView {
    fn find(data: &DataDir) -> Result<Option<Self>> {
        let Some(daemon) = Daemon::find(data)? else {
            return Ok(None);
        };
        match daemon.node() {
            Ok(node) => Ok(Some(DaemonView {
                listen: node.listen,
                group: node.group,
                relays: node.relays,
            })),
            Err(_) => {
                hint(format_args!(
                    "note: ignoring daemon.json: its daemon (pid {}) does not answer",
                    daemon.file.pid
                ));
                Ok(None)
            }
        }
    }
}

/// `shoal join CODE`.
pub fn join(data: &DataDir, args: JoinArgs, out: &mut Output) -> Result<()> {
    let store = data.open()?;
    let invite: Invite = args
        .code
        .parse()
        .map_err(|e| usage(format!("invalid invite code: {e}")))?;
    if invite
        .address
        .to_string()
        .ends_with(&format!("/p2p/{}", store.peer_id()))
    {
        return Err(usage(
            "this invite code is this node's own; run `shoal join` on the other machine",
        ));
    }
    let key_path = data.file(secrets::GROUP_KEY_FILE);
    let key_written = match secrets::read_key_file(data)? {
        Some(existing) if existing == invite.key => false,
        Some(_) if !args.force => {
            return Err(usage(format!(
                "{} holds a different group key: this node belongs to another group. \
                 Pass --force to replace it (the node leaves that group)",
                key_path.display()
            )));
        }
        _ => {
            secrets::write_key_file(data, &invite.key)?;
            true
        }
    };
    // The inviter's salt is the group's: a passphrase given here later
    // ($SHOAL_SECRET) derives the group's key only under it.
    secrets::write_salt_file(data, &invite.salt)?;
    let address = invite.address.to_string();
    let remembered = peer_file::add(data, &invite.address)?;
    // Through the inviter's relays: the way in from behind a NAT.
    let relayed = invite.relayed_addresses();
    for via in &relayed {
        peer_file::add(data, via)?;
    }
    let mut relays_added = false;
    for relay in &invite.relays {
        relays_added |= peer_file::add_relay(data, relay)?;
    }
    if std::env::var_os(secrets::SECRET_ENV).is_some_and(|v| !v.is_empty()) {
        hint(format_args!(
            "warning: ${} is set and takes precedence over {}; unset it so `shoal serve` uses the joined group",
            secrets::SECRET_ENV,
            key_path.display()
        ));
    }
    let daemon = tell_daemon(data, &invite)?;
    if out.is_json() {
        out.json(&json!({
            "address": address,
            "key_written": key_written,
            "peer_added": remembered,
            "relayed": relayed.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "relays_added": relays_added,
            "daemon": daemon.as_json(),
        }))?;
        return Ok(());
    }
    if key_written {
        out.line(format_args!(
            "joined: group key written to {}",
            key_path.display()
        ))?;
    } else {
        out.line("already a member of this group")?;
    }
    let peers = data.file(peer_file::PEERS_FILE);
    if remembered {
        out.line(format_args!("peer {address} added to {}", peers.display()))?;
    } else {
        out.line(format_args!(
            "peer {address} already in {}",
            peers.display()
        ))?;
    }
    if !invite.relays.is_empty() {
        out.line(format_args!(
            "{} relay(s) of the inviter in {}; the inviter is also reached through them",
            invite.relays.len(),
            data.file(peer_file::RELAYS_FILE).display()
        ))?;
    }
    out.line(daemon.sentence())?;
    if relays_added && matches!(daemon, DaemonOutcome::Dialing) {
        out.line("restart `shoal serve` to hold reservations on the new relays")?;
    }
    Ok(())
}

/// What became of the running daemon, if any, after a join.
enum DaemonOutcome {
    None,
    Dialing,
    NeedsRestart(u32),
    Unreachable(String),
}

impl DaemonOutcome {
    fn sentence(&self) -> String {
        match self {
            DaemonOutcome::None => "start `shoal serve` to connect".into(),
            DaemonOutcome::Dialing => "the running daemon is dialing the peer now".into(),
            DaemonOutcome::NeedsRestart(pid) => format!(
                "the running daemon (pid {pid}) still uses the old group secret: restart `shoal serve` to join"
            ),
            DaemonOutcome::Unreachable(e) => {
                format!("could not tell the daemon ({e}); restart `shoal serve` to connect")
            }
        }
    }

    fn as_json(&self) -> serde_json::Value {
        match self {
            DaemonOutcome::None => json!("none"),
            DaemonOutcome::Dialing => json!("dialing"),
            DaemonOutcome::NeedsRestart(_) => json!("restart"),
            DaemonOutcome::Unreachable(_) => json!("unreachable"),
        }
    }
}

fn tell_daemon(data: &DataDir, invite: &Invite) -> Result<DaemonOutcome> {
    let Some(daemon) = Daemon::find(data)? else {
        return Ok(DaemonOutcome::None);
    };
    let node = match daemon.node() {
        Ok(node) => node,
        Err(_) => return Ok(DaemonOutcome::None),
    };
    // The daemon's key is fixed when it starts; dialing with the old one would
    // only get the peer rejected.
    if node.group != crate::api::fingerprint(&invite.key) {
        return Ok(DaemonOutcome::NeedsRestart(daemon.file.pid));
    }
    for via in invite.relayed_addresses() {
        // Best effort: the direct address decides the outcome shown.
        let _ = daemon.add_peer(&via.to_string());
    }
    Ok(match daemon.add_peer(&invite.address.to_string()) {
        Ok(_) => DaemonOutcome::Dialing,
        Err(e) => DaemonOutcome::Unreachable(crate::exit::message(&e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_peer_id_gets_ours() {
        let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        let bare: Multiaddr = "/ip4/10.0.0.1/tcp/4040".parse().unwrap();
        let full = with_peer_id(bare, peer).unwrap();
        assert_eq!(
            full.to_string(),
            format!("/ip4/10.0.0.1/tcp/4040/p2p/{peer}")
        );
        assert_eq!(with_peer_id(full.clone(), peer).unwrap(), full);
    }
}
