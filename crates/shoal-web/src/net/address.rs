//! The addresses `store.connect` dials: a multiaddr over WebSocket (`/ws`,
//! or `/wss` / `/tls/ws` behind a TLS proxy) naming the peer
//! (`/p2p/<peer id>`), as the daemon lists its `/ws` listen addresses
//! (`/apps/daemon.json`, `/api/node`); or a peer reached through the
//! group's relay: the relay's WebSocket address, its id, then
//! `/p2p-circuit/p2p/<peer id>`. It owns checking them; dialing is
//! task.rs's, proving membership to the relay relay.rs's.

use crate::error::WebError;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// What `connect` was asked to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The whole address, as dialed (for a relayed peer, the circuit).
    pub(crate) address: Multiaddr,
    /// The peer it names (its last `/p2p/`).
    pub(crate) peer: PeerId,
    /// The relay in between, if any.
    pub(crate) relay: Option<RelayHop>,
}

/// The relay a peer is reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelayHop {
    /// The relay's peer id.
    pub(crate) peer: PeerId,
    /// Its WebSocket address, ending in `/p2p/<relay id>`.
    pub(crate) address: Multiaddr,
}

/// The form of a relayed address, for error messages.
const RELAYED_FORM: &str = "<the relay's /ws address>/p2p/<relay id>/p2p-circuit/p2p/<peer id>";

/// `text` as an address the tab can dial; `local` is the tab's own peer id
/// (a tab does not dial itself).
pub(crate) fn parse(text: &str, local: &PeerId) -> Result<Target, WebError> {
    let bad = |why: &str| WebError::BadAddress(format!("cannot dial {text:?}: {why}"));
    let address: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| bad(&format!("not a multiaddr ({e})")))?;
    let Some(Protocol::P2p(peer)) = address.iter().last() else {
        return Err(bad(
            "it must end in /p2p/<peer id> (the daemon's, as /apps/daemon.json lists it)",
        ));
    };
    if &peer == local {
        return Err(bad("it names this tab itself"));
    }
    let parts: Vec<Protocol> = address.iter().collect();
    let circuits = parts
        .iter()
        .filter(|p| matches!(p, Protocol::P2pCircuit))
        .count();
    let relay = match circuits {
        0 => None,
        1 => Some(relay_hop(&parts, &peer, local).map_err(|why| bad(&why))?),
        _ => {
            return Err(bad(&format!(
                "it goes through more than one relay; one hop only: {RELAYED_FORM}"
            )));
        }
    };
    let first_hop = relay.as_ref().map_or(&address, |r| &r.address);
    let websocket = first_hop
        .iter()
        .any(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_)));
    if !websocket {
        return Err(bad(match relay {
            None => {
                "a browser reaches peers over WebSocket only: use the daemon's /ws address \
                 (e.g. /ip4/127.0.0.1/tcp/4042/ws/p2p/<peer id>)"
            }
            Some(_) => {
                "a browser reaches the relay over WebSocket only: use the relay's /ws address \
                 (e.g. /ip4/127.0.0.1/tcp/4002/ws/p2p/<relay id>/p2p-circuit/p2p/<peer id>)"
            }
        }));
    }
    Ok(Target {
        address,
        peer,
        relay,
    })
}

/// The relay of `parts` (an address with one `/p2p-circuit`, naming `peer`
/// last), or why it is not a relayed address the tab can dial.
fn relay_hop(parts: &[Protocol], peer: &PeerId, local: &PeerId) -> Result<RelayHop, String> {
    let at = parts
        .iter()
        .position(|p| matches!(p, Protocol::P2pCircuit))
        .unwrap_or(parts.len());
    let (before, after) = parts.split_at(at);
    if after.len() != 2 {
        return Err(format!(
            "after /p2p-circuit comes the peer's id alone (/p2p-circuit/p2p/<peer id>): \
             {RELAYED_FORM}"
        ));
    }
    let Some(Protocol::P2p(relay)) = before.last() else {
        return Err(format!(
            "the relay's id must come before /p2p-circuit: {RELAYED_FORM}"
        ));
    };
    if before.len() < 2 {
        return Err(format!("the relay's address is missing: {RELAYED_FORM}"));
    }
    if relay == peer {
        return Err("the relay and the peer behind it are the same peer".into());
    }
    if relay == local {
        return Err("it names this tab as the relay".into());
    }
    Ok(RelayHop {
        peer: *relay,
        address: before.iter().cloned().collect(),
    })
}

/// Whether `address` goes through a relay.
pub(crate) fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Why a dial of `peer` at `address` failed, for people, from libp2p's
/// `error` (which names every layer: "Multistream select failed: … broken
/// pipe"; in a browser it means the WebSocket did not open, or the relay
/// opened no circuit).
pub(crate) fn dial_failure(
    address: &Multiaddr,
    peer: &PeerId,
    error: &impl std::fmt::Display,
) -> String {
    if is_relayed(address) {
        format!(
            "the relay opened no circuit to {peer} (is that daemon reserved on it with \
             --relay?): {error}"
        )
    } else {
        format!("cannot reach {address}: no WebSocket connection (is a daemon listening there?)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;
    use wasm_bindgen_test::wasm_bindgen_test;

    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    fn id() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    fn refusal(text: &str, local: &PeerId) -> String {
        match parse(text, local) {
            Err(WebError::BadAddress(why)) => why,
            other => panic!("{text} was not refused as a bad address: {other:?}"),
        }
    }

    #[wasm_bindgen_test]
    fn a_direct_websocket_address_names_its_peer_and_no_relay() {
        let (tab, daemon) = (id(), id());
        let text = format!("/ip4/127.0.0.1/tcp/4042/ws/p2p/{daemon}");
        let target = parse(&format!("  {text}\n"), &tab).unwrap();
        assert_eq!(target.address.to_string(), text);
        assert_eq!(target.peer, daemon);
        assert_eq!(target.relay, None);
        assert!(!is_relayed(&target.address));
        for wss in [
            format!("/dns4/example.org/tcp/443/wss/p2p/{daemon}"),
            format!("/dns4/example.org/tcp/443/tls/ws/p2p/{daemon}"),
        ] {
            assert_eq!(parse(&wss, &tab).unwrap().peer, daemon);
        }
    }

    #[wasm_bindgen_test]
    fn a_relayed_address_names_the_relay_and_the_peer_behind_it() {
        let (tab, relay, daemon) = (id(), id(), id());
        let relay_ws = format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{relay}");
        let text = format!("{relay_ws}/p2p-circuit/p2p/{daemon}");
        let target = parse(&text, &tab).unwrap();
        assert_eq!(target.address.to_string(), text);
        assert_eq!(target.peer, daemon);
        let hop = target.relay.expect("a relay hop");
        assert_eq!(hop.peer, relay);
        assert_eq!(hop.address.to_string(), relay_ws);
        assert!(is_relayed(&target.address));
        let wss =
            format!("/dns4/relay.example.org/tcp/443/wss/p2p/{relay}/p2p-circuit/p2p/{daemon}");
        assert_eq!(parse(&wss, &tab).unwrap().relay.unwrap().peer, relay);
    }

    #[wasm_bindgen_test]
    fn bad_addresses_are_refused_with_the_reason() {
        let (tab, relay, daemon) = (id(), id(), id());
        let cases = [
            ("not an address".to_string(), "not a multiaddr"),
            (
                "/ip4/127.0.0.1/tcp/4042/ws".into(),
                "must end in /p2p/<peer id>",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4042/p2p/{daemon}"),
                "over WebSocket only",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4042/ws/p2p/{tab}"),
                "this tab itself",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{daemon}"),
                "the relay over WebSocket only",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4002/ws/p2p-circuit/p2p/{daemon}"),
                "the relay's id must come before /p2p-circuit",
            ),
            (
                format!("/p2p/{relay}/p2p-circuit/p2p/{daemon}"),
                "the relay's address is missing",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{relay}/p2p-circuit/ws/p2p/{daemon}"),
                "the peer's id alone",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{relay}/p2p-circuit/p2p/{relay}"),
                "the same peer",
            ),
            (
                format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{tab}/p2p-circuit/p2p/{daemon}"),
                "this tab as the relay",
            ),
            (
                format!(
                    "/ip4/127.0.0.1/tcp/4002/ws/p2p/{relay}/p2p-circuit/p2p/{daemon}/p2p-circuit/p2p/{}",
                    id()
                ),
                "more than one relay",
            ),
        ];
        for (text, expected) in cases {
            let why = refusal(&text, &tab);
            assert!(why.contains(expected), "{text}: {why:?} lacks {expected:?}");
        }
    }
}
