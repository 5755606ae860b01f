//! [`Relay`]: a running relay — starting its swarm, the loop that admits
//! members and counts what the relay does, and stopping it. Admission itself
//! is `admission.rs`'s, the gate `gate.rs`'s.

use crate::admission::Admit;
use crate::behaviour::{BehaviourEvent, build_swarm};
use crate::config::RelayConfig;
use crate::gate::Gate;
use crate::stats::{Counters, RelayStats, bump};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, relay};
use shoal_core::sync::RELAY_AUTH_PROTOCOL;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

/// Admissions running at once; more streams wait for a slot.
const ADMISSIONS_AT_ONCE: usize = 64;

/// Why a relay could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The swarm could not be built (or a limit is out of range).
    #[error("cannot start the relay: {0}")]
    Setup(String),
    /// A listen address was refused.
    #[error("cannot listen on {address}: {error}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// The transport's error.
        error: String,
    },
    /// Nothing was listening after the wait.
    #[error("the relay has no listen address after {0:?}")]
    NoListenAddress(Duration),
}

/// A running relay. Dropping it stops the relay.
pub struct Relay {
    peer_id: PeerId,
    counters: Arc<Counters>,
    listening: watch::Receiver<Vec<Multiaddr>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay with identity `keypair` on the current tokio runtime.
    pub async fn start(keypair: Keypair, config: RelayConfig) -> Result<Relay, RelayError> {
        if config.listen.is_empty() {
            return Err(RelayError::Setup("no listen address".into()));
        }
        let peer_id = keypair.public().to_peer_id();
        let gate = Gate::default();
        let mut swarm = build_swarm(keypair, config.limits, &gate).map_err(RelayError::Setup)?;
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| RelayError::Listen {
                    address: address.clone(),
                    error: e.to_string(),
                })?;
        }
        for address in &config.external {
            swarm.add_external_address(address.clone());
        }
        let protocol = StreamProtocol::new(RELAY_AUTH_PROTOCOL);
        let mut incoming = swarm
            .behaviour()
            .stream
            .new_control()
            .accept(protocol)
            .map_err(|e| RelayError::Setup(format!("admission protocol taken: {e}")))?;
        let counters = Arc::new(Counters::default());
        let admit = Arc::new(Admit {
            relay: peer_id,
            token: config.token,
            gate: gate.clone(),
            counters: counters.clone(),
        });
        let (listening_tx, listening) = watch::channel(Vec::new());
        let (stop, mut stopped) = oneshot::channel();
        let loop_counters = counters.clone();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(ADMISSIONS_AT_ONCE));
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        on_event(event, &gate, &loop_counters, &listening_tx);
                    }
                    Some((peer, stream)) = incoming.next() => {
                        let admit = admit.clone();
                        let slots = slots.clone();
                        tokio::spawn(async move {
                            if let Ok(_slot) = slots.acquire().await {
                                admit.run(peer, stream).await;
                            }
                        });
                    }
                    _ = &mut stopped => return,
                }
            }
        });
        Ok(Relay {
            peer_id,
            counters,
            listening,
            stop: Some(stop),
            task,
        })
    }

    /// The relay's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// What the relay did since it started.
    pub fn stats(&self) -> RelayStats {
        self.counters.snapshot()
    }

    /// The addresses the relay listens on, once it does (waits up to `wait`),
    /// each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self, wait: Duration) -> Result<Vec<Multiaddr>, RelayError> {
        let mut listening = self.listening.clone();
        match tokio::time::timeout(wait, listening.wait_for(|a| !a.is_empty())).await {
            Ok(Ok(addresses)) => Ok(addresses
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
                .collect()),
            _ => Err(RelayError::NoListenAddress(wait)),
        }
    }

    /// Stops the relay and waits for its loop to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts what the relay did, and forgets a member's admission with its
/// last connection.
fn on_event(
    event: SwarmEvent<BehaviourEvent>,
    gate: &Gate,
    counters: &Counters,
    listening: &watch::Sender<Vec<Multiaddr>>,
) {
    match event {
        SwarmEvent::NewListenAddr { address, .. } => {
            tracing::info!("relay listening on {address}");
            listening.send_modify(|a| a.push(address));
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established: 0,
            ..
        } => gate.forget(&peer_id),
        SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => on_relay_event(event, counters),
        SwarmEvent::Behaviour(BehaviourEvent::Autonat(probe)) => match probe.result {
            Ok(()) => {
                tracing::info!(client = %probe.client, address = %probe.tested_addr, "dial-back probe answered");
                bump(&counters.probes);
            }
            Err(e) => {
                tracing::info!(client = %probe.client, address = %probe.tested_addr, "dial-back probe failed: {e}")
            }
        },
        _ => {}
    }
}

fn on_relay_event(event: relay::Event, counters: &Counters) {
    match event {
        relay::Event::ReservationReqAccepted {
            src_peer_id,
            renewed,
        } => {
            tracing::info!(peer = %src_peer_id, renewed, "reservation accepted");
            bump(&counters.reservations_accepted);
            if !renewed {
                bump(&counters.reservations_now);
            }
        }
        relay::Event::ReservationReqDenied {
            src_peer_id,
            status,
        } => {
            tracing::info!(peer = %src_peer_id, ?status, "reservation denied");
            bump(&counters.reservations_denied);
        }
        relay::Event::ReservationClosed { .. } | relay::Event::ReservationTimedOut { .. } => {
            let _ =
                counters
                    .reservations_now
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        relay::Event::CircuitReqAccepted {
            src_peer_id,
            dst_peer_id,
        } => {
            tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened");
            bump(&counters.circuits_accepted);
        }
        relay::Event::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
            status,
        } => {
            tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "circuit denied");
            bump(&counters.circuits_denied);
        }
        relay::Event::CircuitClosed { .. } => bump(&counters.circuits_closed),
        #[allow(deprecated)]
        _ => {}
    }
}
