//! The addresses `store.connect` dials: a multiaddr over WebSocket (`/ws`,
//! or `/wss` / `/tls/ws` behind a TLS proxy) naming the peer
//! (`/p2p/<peer id>`), as the daemon lists its `/ws` listen addresses
//! (`/apps/daemon.json`, `/api/node`). It owns checking them; dialing is
//! task.rs's.

use crate::error::WebError;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// `text` as an address the tab can dial and the peer it names; `local` is
/// the tab's own peer id (a tab does not dial itself).
pub(crate) fn parse(text: &str, local: &PeerId) -> Result<(Multiaddr, PeerId), WebError> {
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
    let websocket = address
        .iter()
        .any(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_)));
    if !websocket {
        return Err(bad(
            "a browser reaches peers over WebSocket only: use the daemon's /ws address \
             (e.g. /ip4/127.0.0.1/tcp/4042/ws/p2p/<peer id>)",
        ));
    }
    if &peer == local {
        return Err(bad("it names this tab itself"));
    }
    Ok((address, peer))
}
