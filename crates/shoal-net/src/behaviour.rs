//! The libp2p stack: TCP + Noise + Yamux, QUIC, and WebSocket + Noise +
//! Yamux (what a browser tab can speak: `/…/tcp/N/ws` listen addresses) plus
//! circuits through relays, and the behaviours — connection limits, identify, ping,
//! mDNS (switchable), the relay client, DCUtR (hole punching a relayed
//! connection into a direct one), the AutoNAT v2 client (asks servers — the
//! relays — to dial this node back, to learn whether it is reachable) and
//! raw streams for sync.
//!
//! It owns how the swarm is assembled; what to do with its events is `node.rs`'s.

use crate::config::ConnectionCaps;
use crate::punch_delay::Delayed;
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::{Transport, upgrade};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, Swarm, SwarmBuilder, autonat, dcutr, identify, mdns, noise, ping, relay, tcp,
    websocket, yamux,
};
use std::time::Duration;

/// The behaviours a Shoal node runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) autonat: autonat::v2::client::Behaviour,
    pub(crate) dcutr: Delayed<dcutr::Behaviour>,
    pub(crate) stream: libp2p_stream::Behaviour,
}

/// WebSocket over TCP, secured by Noise and multiplexed by Yamux, as a
/// browser's `websocket-websys` transport speaks it: the same peer
/// authentication and the same sync protocol as over plain TCP.
fn websocket_transport(
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    Ok(websocket::Config::new(tcp)
        .upgrade(upgrade::Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

/// Builds the swarm for `keypair`, with mDNS when asked, pinging each
/// connection every `liveness` (a ping unanswered that long fails), refusing
/// connections past `caps`, hole punching `punch_delay` after a relayed
/// connection opens (zero: at once).
pub(crate) fn build_swarm(
    keypair: Keypair,
    with_mdns: bool,
    liveness: Duration,
    caps: ConnectionCaps,
    punch_delay: Duration,
) -> Result<Swarm<Behaviour>, String> {
    let limits = ConnectionLimits::default()
        .with_max_established(Some(caps.total))
        .with_max_pending_incoming(Some(caps.pending))
        .with_max_established_per_peer(Some(caps.per_peer));
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("cannot set up TCP with Noise and Yamux: {e}"))?
        .with_quic()
        .with_other_transport(websocket_transport)
        .map_err(|e| format!("cannot set up WebSocket with Noise and Yamux: {e}"))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| format!("cannot set up the relay client: {e}"))?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();
            let mdns = if with_mdns {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/shoal/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(liveness)
                        .with_timeout(liveness),
                ),
                mdns: Toggle::from(mdns),
                relay_client,
                autonat: autonat::v2::client::Behaviour::default(),
                dcutr: Delayed::new(dcutr::Behaviour::new(peer_id), punch_delay),
                stream: libp2p_stream::Behaviour::new(),
            })
        })
        .map_err(|e| format!("cannot set up the network behaviours: {e}"))?
        // Sync streams keep connections busy; idle ones close after a while.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    Ok(swarm)
}
