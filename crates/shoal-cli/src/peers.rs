//! `shoal peers`: whether this node is reachable from the internet (public
//! / behind NAT / unknown), and the running daemon's peer table — who, in what state
//! (connected, connecting, disconnected and its last error, rejected and
//! why, unreachable and why), how it is reached (direct, relayed through
//! which relay, none), hole punches tried and succeeded, when it last
//! synced, how far its log is applied here, how many versions behind we
//! are, and what is held back for a clock too far ahead.
//!
//! This module owns the table's text form; `--json` prints the daemon's JSON
//! as it came.

use crate::api::{PeerInfo, PeersReply, now_ms};
use crate::daemon_client::Daemon;
use crate::datadir::DataDir;
use crate::exit::network;
use crate::output::{Output, hint, pad};
use anyhow::Result;

/// `shoal peers`.
pub fn run(data: &DataDir, out: &mut Output) -> Result<()> {
    let daemon = Daemon::connect(data)?;
    let raw = daemon.peers_raw()?;
    if out.is_json() {
        out.json(&raw)?;
        return Ok(());
    }
    let reply: PeersReply = serde_json::from_value(raw)
        .map_err(|e| network(format!("the daemon sent an unexpected peer table: {e}")))?;
    if reply.peers.is_empty() {
        print_reachability(out, &reply.reachability)?;
        hint(
            "no peers known yet: add one with `shoal join CODE` or `shoal serve --peer MULTIADDR` \
             (peers on the LAN are found by mDNS)",
        );
        return Ok(());
    }
    let now = now_ms();
    let header = [
        "PEER",
        "STATE",
        "PATH",
        "PUNCHED",
        "LAST SYNC",
        "CURSOR",
        "LAG",
    ];
    let rows: Vec<[String; 7]> = reply
        .peers
        .iter()
        .map(|p| {
            [
                short_peer(&p.peer),
                state_text(p),
                path_text(p),
                punch_text(p),
                p.last_sync_ms
                    .map_or_else(|| "never".to_string(), |t| ago(now.saturating_sub(t))),
                p.cursor.to_string(),
                p.lag.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&pad(cell, widths[i]));
                text.push_str("  ");
            }
        }
        text
    };
    out.line(line(header))?;
    for row in &rows {
        out.line(line(row.each_ref().map(String::as_str)))?;
    }
    hint(format_args!(
        "hole punches with any peer since the daemon started: {} of {} went direct",
        reply.punch.successes, reply.punch.attempts
    ));
    // Below the table: the table's header stays the first line.
    out.line("")?;
    print_reachability(out, &reply.reachability)
}

/// "this node: …" (nothing from a daemon older than the field).
fn print_reachability(out: &mut Output, reachability: &str) -> Result<()> {
    if !reachability.is_empty() {
        out.line(format_args!(
            "this node: {}",
            reachability_text(reachability)
        ))?;
    }
    Ok(())
}

/// This node's reachability for people: `public` / `behind NAT` /
/// `unknown`, and what it means.
pub fn reachability_text(reachability: &str) -> String {
    match reachability {
        "public" => "public (a relay dialed it back: peers can dial it directly)".into(),
        "behind NAT" => {
            "behind NAT (peers reach it through its relays, then by hole punching)".into()
        }
        "unknown" => "reachability unknown (no relay has probed it yet)".into(),
        other => other.to_string(),
    }
}

/// A peer id short enough for a table: its start and its end.
pub fn short_peer(peer: &str) -> String {
    let chars: Vec<char> = peer.chars().collect();
    if chars.len() <= 16 {
        return peer.to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail}")
}

/// The STATE column: the state, and why for rejected, incompatible and
/// unreachable peers.
pub fn state_text(peer: &PeerInfo) -> String {
    let reason = peer.reason.as_deref().unwrap_or("unknown reason");
    let state = match peer.state.as_str() {
        "rejected" => {
            let by = match peer.by_peer {
                Some(true) => " (by peer)",
                Some(false) => " (by us)",
                None => "",
            };
            format!("rejected: {reason}{by}")
        }
        "unreachable" => format!("unreachable: {reason}"),
        "disconnected" if peer.last_error.is_some() => {
            format!(
                "disconnected (last error: {})",
                peer.last_error.as_deref().unwrap_or("")
            )
        }
        "incompatible" => format!("incompatible: {reason}"),
        other => other.to_string(),
    };
    state + &held_text(peer)
}

/// The PATH column: `direct`, `relayed via RELAY`, or `none` (`-` from a
/// daemon that does not say).
pub fn path_text(peer: &PeerInfo) -> String {
    match (peer.path.as_str(), &peer.relay) {
        ("relayed", Some(relay)) => format!("relayed via {}", short_peer(relay)),
        ("", _) => "-".into(),
        (path, _) => path.into(),
    }
}

/// The PUNCHED column: hole punches that went direct of those tried, and
/// why the last failed one failed ("1/3: …").
pub fn punch_text(peer: &PeerInfo) -> String {
    let punch = &peer.punch;
    let mut text = format!("{}/{}", punch.successes, punch.attempts);
    if let Some(error) = &punch.last_error {
        text.push_str(&format!(" (last failed: {error})"));
    }
    text
}

/// What is held back from the peer for its clock, as a suffix of STATE:
/// " (3 held: clock ahead by 4m 30s)"; empty when nothing is.
pub fn held_text(peer: &PeerInfo) -> String {
    if peer.held == 0 {
        return String::new();
    }
    let ahead = peer.clock_ahead_ms.unwrap_or(0) / 1000;
    let ahead = match ahead {
        0..60 => format!("{ahead}s"),
        60..3600 => format!("{}m {}s", ahead / 60, ahead % 60),
        _ => format!("{}h {}m", ahead / 3600, ahead % 3600 / 60),
    };
    format!(" ({} held: clock ahead by {ahead})", peer.held)
}

/// A duration in milliseconds as "3s ago", "5m ago", "2h ago", "4d ago".
pub fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(ago(3_400), "3s ago");
        assert_eq!(ago(5 * 60_000 + 1), "5m ago");
        assert_eq!(ago(2 * 3_600_000), "2h ago");
        assert_eq!(ago(3 * 86_400_000), "3d ago");
    }

    #[test]
    fn held_changes_show_how_far_ahead() {
        let mut peer: PeerInfo = serde_json::from_value(serde_json::json!({
            "peer": "p", "state": "connected", "reason": null, "by_peer": null,
            "addresses": [], "last_sync_ms": null, "cursor": {"base": 0, "position": null, "partial": null}, "remote_head": 0,
            "applied": 0, "lag": 0, "changes_in": 0, "bytes": {"in": 0, "out": 0}
        }))
        .expect("a peer from an older daemon, without the held fields");
        assert_eq!(state_text(&peer), "connected");
        peer.held = 3;
        peer.clock_ahead_ms = Some(270_400);
        assert_eq!(
            state_text(&peer),
            "connected (3 held: clock ahead by 4m 30s)"
        );
    }

    #[test]
    fn the_path_names_the_relay_and_punches_show_the_last_failure() {
        let mut peer: PeerInfo = serde_json::from_value(serde_json::json!({
            "peer": "p", "state": "disconnected", "reason": null, "by_peer": null,
            "addresses": [], "last_sync_ms": null, "cursor": {"base": 0, "position": null, "partial": null}, "remote_head": 0,
            "applied": 0, "lag": 0, "changes_in": 0, "bytes": {"in": 0, "out": 0}
        }))
        .expect("a peer from an older daemon, without path or punch fields");
        assert_eq!(path_text(&peer), "-");
        assert_eq!(punch_text(&peer), "0/0");
        assert_eq!(state_text(&peer), "disconnected");
        peer.last_error = Some("connection reset".into());
        assert_eq!(
            state_text(&peer),
            "disconnected (last error: connection reset)"
        );
        peer.path = "relayed".into();
        peer.relay = Some("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".into());
        assert_eq!(path_text(&peer), "relayed via 12D3…4kx6nXTN");
        peer.punch.attempts = 3;
        peer.punch.successes = 1;
        peer.punch.last_error = Some("gave up".into());
        assert_eq!(punch_text(&peer), "1/3 (last failed: gave up)");
    }

    #[test]
    fn an_incompatible_peer_says_which_machine_to_upgrade() {
        let peer: PeerInfo = serde_json::from_value(serde_json::json!({
            "peer": "p", "state": "incompatible",
            "reason": "peer runs an older Shoal (protocol 2; this node needs 3 or later): upgrade it",
            "by_peer": null, "addresses": [], "last_sync_ms": null,
            "cursor": {"base": 0, "position": null, "partial": null}, "remote_head": 0,
            "applied": 0, "lag": 0, "changes_in": 0, "bytes": {"in": 0, "out": 0}, "protocol": 2
        }))
        .expect("peer");
        assert_eq!(
            state_text(&peer),
            "incompatible: peer runs an older Shoal (protocol 2; this node needs 3 or later): upgrade it"
        );
        assert_eq!(peer.protocol, Some(2));
    }

    #[test]
    fn peer_ids_are_shortened() {
        let id = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        assert_eq!(short_peer(id), "12D3…4kx6nXTN");
        assert_eq!(short_peer("short"), "short");
    }
}
