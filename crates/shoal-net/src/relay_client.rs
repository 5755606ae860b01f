//! The node's side of its configured relays: dialing each relay, proving
//! membership to it (the admission protocol of `shoal-core`'s
//! `relay_auth`), and, once admitted, asking it for a reservation so that
//! peers can reach this node through it at `<relay>/p2p-circuit/p2p/<us>`.
//!
//! It owns only the relays' link states; the swarm loop (`driver.rs`) calls
//! it on connection events and hands it the admission verdicts. It must not
//! touch sync sessions: a relay is not a group member.

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use shoal_core::sync::{Admission, RELAY_AUTH_LEN, RELAY_AUTH_PROTOCOL, RelayToken};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest an admission exchange may take.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where this node stands with one relay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// Not connected (or not yet).
    Away,
    /// Connected; proving membership.
    Proving,
    /// Admitted; a reservation was asked for on this listener.
    Reserved,
    /// The relay refused the proof.
    Refused(String),
    /// The exchange broke before a verdict (e.g. the stream closed): proved
    /// again at the next redial while connected.
    Failed(String),
}

/// Why an admission exchange did not admit this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProofError {
    /// The relay answered with a refusal (or an unknown verdict).
    Refused(String),
    /// The exchange broke before a verdict.
    Failed(String),
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofError::Refused(reason) | ProofError::Failed(reason) => f.write_str(reason),
        }
    }
}

/// A verdict from an admission task: the relay and what came of it.
pub(crate) type Verdict = (PeerId, Result<(), ProofError>);

/// The configured relays and this node's link with each.
pub(crate) struct Relays {
    /// Each relay's address (ending in `/p2p/<relay>`) and link.
    links: HashMap<PeerId, (Multiaddr, Link)>,
    token: RelayToken,
    local: PeerId,
    verdicts: mpsc::Sender<Verdict>,
}

impl Relays {
    /// The relays among `addresses`; those without a `/p2p/<id>` ending are
    /// refused (a relay's identity is what its circuits are named by).
    pub(crate) fn new(
        addresses: &[Multiaddr],
        token: RelayToken,
        local: PeerId,
        verdicts: mpsc::Sender<Verdict>,
    ) -> Result<Self, String> {
        let mut links = HashMap::new();
        for address in addresses {
            let Some(Protocol::P2p(relay)) = address.iter().last() else {
                return Err(format!(
                    "relay address {address} must end in /p2p/<the relay's peer id>"
                ));
            };
            links.insert(relay, (address.clone(), Link::Away));
        }
        Ok(Relays {
            links,
            token,
            local,
            verdicts,
        })
    }

    /// Whether `peer` is one of the configured relays.
    pub(crate) fn is_relay(&self, peer: &PeerId) -> bool {
        self.links.contains_key(peer)
    }

    /// Dials every relay not connected.
    pub(crate) fn dial_away<B: libp2p::swarm::NetworkBehaviour>(&self, swarm: &mut Swarm<B>) {
        for (relay, (address, _)) in &self.links {
            if !swarm.is_connected(relay)
                && let Err(e) = swarm.dial(address.clone())
            {
                tracing::info!(%relay, "cannot dial the relay: {e}");
            }
        }
    }

    /// A connection to `relay` opened: prove membership on it (once per
    /// link), the verdict arriving later through the channel.
    pub(crate) fn on_connected(&mut self, relay: PeerId, control: &libp2p_stream::Control) {
        let Some((_, link)) = self.links.get_mut(&relay) else {
            return;
        };
        if matches!(link, Link::Proving | Link::Reserved) {
            return;
        }
        *link = Link::Proving;
        let control = control.clone();
        let token = self.token.clone();
        let local = self.local;
        let verdicts = self.verdicts.clone();
        tokio::spawn(async move {
            let outcome =
                tokio::time::timeout(ADMISSION_TIMEOUT, prove(control, relay, local, token))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ProofError::Failed(
                            "the relay did not answer in time".into(),
                        ))
                    });
            let _ = verdicts.send((relay, outcome)).await;
        });
    }

    /// Proves again to every connected relay whose last exchange broke
    /// before a verdict (a refusal is not retried while connected).
    pub(crate) fn retry_failed(
        &mut self,
        control: &libp2p_stream::Control,
        connected: impl Fn(&PeerId) -> bool,
    ) {
        let failed: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(relay, (_, link))| matches!(link, Link::Failed(_)) && connected(relay))
            .map(|(relay, _)| *relay)
            .collect();
        for relay in failed {
            self.on_connected(relay, control);
        }
    }

    /// The last connection to `relay` closed: prove again on the next one.
    pub(crate) fn on_disconnected(&mut self, relay: &PeerId) {
        if let Some((_, link)) = self.links.get_mut(relay) {
            *link = Link::Away;
        }
    }

    /// An admission verdict arrived: when admitted, listen through the relay
    /// (which asks it for a reservation). Returns whether it was admitted.
    pub(crate) fn on_verdict<B: libp2p::swarm::NetworkBehaviour>(
        &mut self,
        (relay, outcome): Verdict,
        swarm: &mut Swarm<B>,
    ) -> bool {
        let Some((address, link)) = self.links.get_mut(&relay) else {
            return false;
        };
        match outcome {
            Ok(()) => {
                let circuit = address.clone().with(Protocol::P2pCircuit);
                match swarm.listen_on(circuit) {
                    Ok(_) => {
                        tracing::info!(%relay, "admitted by the relay; reserving");
                        *link = Link::Reserved;
                        true
                    }
                    Err(e) => {
                        *link = Link::Refused(format!("cannot listen through it: {e}"));
                        false
                    }
                }
            }
            Err(ProofError::Refused(reason)) => {
                tracing::warn!(%relay, "the relay did not admit this node: {reason}");
                *link = Link::Refused(reason);
                false
            }
            Err(ProofError::Failed(reason)) => {
                tracing::warn!(%relay, "the admission exchange failed (tried again later): {reason}");
                *link = Link::Failed(reason);
                false
            }
        }
    }
}

/// Runs the admission exchange with `relay`: reads its challenge, answers
/// with the proof, reads the verdict.
async fn prove(
    mut control: libp2p_stream::Control,
    relay: PeerId,
    local: PeerId,
    token: RelayToken,
) -> Result<(), ProofError> {
    let mut stream = control
        .open_stream(relay, StreamProtocol::new(RELAY_AUTH_PROTOCOL))
        .await
        .map_err(|e| ProofError::Failed(format!("cannot open the admission stream: {e}")))?;
    let mut challenge = [0u8; RELAY_AUTH_LEN];
    stream
        .read_exact(&mut challenge)
        .await
        .map_err(|e| ProofError::Failed(format!("no challenge from the relay: {e}")))?;
    let proof = token.prove(&relay.to_bytes(), &local.to_bytes(), &challenge);
    stream
        .write_all(&proof)
        .await
        .and(stream.flush().await)
        .map_err(|e| ProofError::Failed(format!("cannot send the proof: {e}")))?;
    let mut verdict = [0u8; 1];
    stream
        .read_exact(&mut verdict)
        .await
        .map_err(|e| ProofError::Failed(format!("no verdict from the relay: {e}")))?;
    match Admission::from_byte(verdict[0]) {
        Some(Admission::Granted) => Ok(()),
        Some(Admission::Refused) => Err(ProofError::Refused(
            "the relay refused the membership proof".into(),
        )),
        None => Err(ProofError::Refused(format!(
            "the relay answered an unknown verdict {}",
            verdict[0]
        ))),
    }
}
