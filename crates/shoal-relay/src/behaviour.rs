//! The relay's libp2p stack: TCP + Noise + Yamux, QUIC, and WebSocket (over
//! TCP) + Noise + Yamux — what a browser tab can dial (`/…/tcp/N/ws` listen
//! addresses, or `/wss` through a TLS reverse proxy) — and the
//! behaviours — connection limits, circuit relay v2 and the AutoNAT v2
//! server (both gated to members), identify, ping and raw streams for
//! admission. It owns how the swarm is
//! assembled; the loop is `server.rs`'s.

use crate::config::RelayLimits;
use crate::gate::Gate;
use crate::members_only::MembersOnly;
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::core::upgrade;
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Swarm, SwarmBuilder, Transport, autonat, identify, noise, ping, relay, tcp, websocket, yamux,
};
use std::num::NonZeroU32;
use std::time::Duration;

/// Longest a TCP connection (dial or accept, with its Noise and Yamux
/// handshakes) may take to open.
const DIAL_TIMEOUT: Duration = Duration::from_secs(7);

/// The behaviours a relay runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) relay: relay::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) autonat: MembersOnly<autonat::v2::server::Behaviour>,
    pub(crate) stream: libp2p_stream::Behaviour,
}

/// Builds the relay's swarm.
pub(crate) fn build_swarm(
    keypair: Keypair,
    limits: RelayLimits,
    gate: &Gate,
) -> Result<Swarm<Behaviour>, String> {
    let burst = NonZeroU32::new(limits.rate_burst).ok_or("the rate burst must be at least 1")?;
    if limits.rate_refill.is_zero() {
        return Err("the rate refill interval must be longer than zero".into());
    }
    let mut relay_config = relay::Config {
        max_reservations: limits.reservations,
        max_reservations_per_peer: 4,
        reservation_duration: limits.reservation_duration,
        max_circuits: limits.circuits,
        max_circuits_per_peer: limits.circuits_per_peer,
        max_circuit_duration: limits.circuit_duration,
        max_circuit_bytes: limits.circuit_bytes,
        // Members only, then a rate per peer.
        reservation_rate_limiters: vec![gate.limiter()],
        circuit_src_rate_limiters: vec![gate.limiter()],
    };
    relay_config = relay_config
        .reservation_rate_per_peer(burst, limits.rate_refill)
        .circuit_src_per_peer(burst, limits.rate_refill);
    let conn_limits = ConnectionLimits::default()
        .with_max_established(Some(4096))
        .with_max_pending_incoming(Some(256))
        .with_max_established_per_peer(Some(8));
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        // TCP with a bound on each dial: a dial-back to a member behind a
        // NAT that drops it would otherwise wait out the kernel's SYN
        // retries (minutes), past AutoNAT's 10 s request, and the member
        // would never hear "not reachable".
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(upgrade::Version::V1)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .timeout(DIAL_TIMEOUT),
            )
        })
        .map_err(|e| format!("cannot set up TCP with Noise and Yamux: {e}"))?
        // WebSocket over TCP, as the daemon's `/ws` listener speaks it
        // (crates/shoal-net/src/behaviour.rs): browser tabs reach the relay
        // this way, prove membership and open circuits like any member.
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
            Ok(websocket::Config::new(tcp)
                .upgrade(upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .timeout(DIAL_TIMEOUT))
        })
        .map_err(|e| format!("cannot set up WebSocket with Noise and Yamux: {e}"))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            Behaviour {
                limits: connection_limits::Behaviour::new(conn_limits),
                relay: relay::Behaviour::new(peer_id, relay_config),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/shoal/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                autonat: MembersOnly::new(autonat::v2::server::Behaviour::default(), gate.clone()),
                stream: libp2p_stream::Behaviour::new(),
            }
        })
        .map_err(|e| format!("cannot set up the relay behaviours: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}
