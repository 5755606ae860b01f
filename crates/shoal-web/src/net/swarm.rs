//! The tab's libp2p stack: the browser's WebSocket (`websocket-websys`,
//! watched: websocket.rs),
//! secured by Noise and multiplexed by Yamux — what the daemon's `/ws`
//! listener speaks (crates/shoal-net/src/behaviour.rs) — with ping (the
//! daemon closes connections that stop answering its pings) and raw
//! streams for the sync protocol (and the relay admission protocol); plus
//! libp2p's relay client, so a peer is also reached through a circuit of
//! the group's relay (`…/p2p/<relay>/p2p-circuit/p2p/<peer>`), the relayed
//! connection secured and multiplexed end to end the same way.
//!
//! It owns how the swarm is assembled; what to do with its events is
//! task.rs's. No identify: the daemon uses it only to learn listen
//! addresses, and a tab listens on none.

use crate::net::websocket::WatchedTransport;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Swarm, SwarmBuilder, Transport, noise, ping, relay, yamux};
use std::time::Duration;

/// The behaviours a tab runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) stream: libp2p_stream::Behaviour,
}

/// How often the tab pings its peers, and how long an answer may take.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Builds the tab's swarm for `keypair`.
pub(crate) fn build(keypair: Keypair) -> Result<Swarm<Behaviour>, String> {
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(WatchedTransport::default()
                .upgrade(Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(|e| format!("cannot set up WebSocket with Noise and Yamux: {e}"))?
        // Tried before WebSocket for each dial: it takes `/p2p-circuit`
        // addresses only.
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| format!("cannot set up the relay client: {e}"))?
        .with_behaviour(|_, relay_client| Behaviour {
            relay_client,
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_EVERY)
                    .with_timeout(PING_EVERY),
            ),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| format!("cannot set up the network behaviours: {e}"))?
        // A sync stream keeps a connection busy; an idle one (no session,
        // e.g. after a rejection) closes after a while.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}
