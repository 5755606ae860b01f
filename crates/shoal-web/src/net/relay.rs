//! Reaching a peer through the group's relay (`shoal relay`): the tab
//! connects to the relay over WebSocket, proves it is a member on the
//! admission protocol (`shoal-core`'s `RelayToken` from the group key and
//! `Admission` verdict, the exchange a native node runs in
//! crates/shoal-net/src/relay_client.rs), and only once the relay admitted
//! it dials the circuit `<relay>/p2p-circuit/p2p/<peer>` — the relay
//! grants circuits to admitted members only. The relayed connection then
//! carries the same Noise, Yamux and sync streams as a direct one.
//!
//! It owns the tab's link with each relay and the peers waiting on it; it
//! answers the loop (task.rs) with what to do for those peers ([`Next`]).
//! It must not touch sync sessions: a relay is not a group member.

use crate::error::WebError;
use crate::net::address::RelayHop;
use crate::net::swarm::Behaviour;
use crate::peers::PeerState;
use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use shoal_core::sync::{Admission, GroupKey, RELAY_AUTH_LEN, RELAY_AUTH_PROTOCOL, RelayToken};
use std::collections::HashMap;
use std::time::Duration;
use wasm_bindgen_futures::spawn_local;

/// Longest the admission exchange may take (the relay gives 10 s).
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(12);

/// Where the tab stands with one relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected, and not dialing.
    Away,
    /// Dialing the relay.
    Dialing,
    /// Connected; the admission exchange runs.
    Proving,
    /// The relay admitted the tab (for this connection).
    Admitted,
    /// The relay refused the tab's proof (for this connection and token).
    Refused,
}

/// One relay.
struct Link {
    /// Its address, ending in `/p2p/<relay id>`.
    address: Multiaddr,
    /// The token the tab proves (or proved) membership with.
    token: RelayToken,
    state: State,
    /// Peers to dial through it once admitted, with their circuit address.
    waiting: HashMap<PeerId, Multiaddr>,
    /// Which exchange a verdict answers (a newer one replaces an older).
    round: u64,
}

/// How an admission exchange ended.
pub(crate) struct Verdict {
    relay: PeerId,
    round: u64,
    outcome: Result<(), Refusal>,
}

/// Why an exchange did not admit the tab.
enum Refusal {
    /// The relay answered with a refusal: not this group's secret.
    Refused,
    /// The exchange broke before a verdict.
    Broken(String),
}

/// What the loop does for a peer waiting on a relay.
pub(crate) enum Next {
    /// Dial the peer at its circuit address: the relay admitted the tab.
    Dial(PeerId, Multiaddr),
    /// Answer the peer's `connect` calls with this failure.
    Fail(PeerId, PeerState, WebError),
}

/// The relays the tab was asked to reach peers through.
pub(crate) struct Relays {
    links: HashMap<PeerId, Link>,
    verdicts: mpsc::UnboundedSender<Verdict>,
}

impl Relays {
    /// No relays yet; verdicts of admission exchanges arrive on the
    /// receiver, for [`Relays::on_verdict`].
    pub(crate) fn new() -> (Relays, mpsc::UnboundedReceiver<Verdict>) {
        let (verdicts, receiver) = mpsc::unbounded();
        let relays = Relays {
            links: HashMap::new(),
            verdicts,
        };
        (relays, receiver)
    }

    /// Whether `peer` is a relay the tab uses.
    pub(crate) fn is_relay(&self, peer: &PeerId) -> bool {
        self.links.contains_key(peer)
    }

    /// Reaches `peer` at `circuit` through `hop` as a member holding `key`:
    /// dials the relay or proves membership to it as needed; the peer is
    /// dialed once the relay admitted the tab.
    pub(crate) fn reach(
        &mut self,
        hop: &RelayHop,
        key: &GroupKey,
        peer: PeerId,
        circuit: Multiaddr,
        swarm: &mut Swarm<Behaviour>,
    ) -> Vec<Next> {
        let token = RelayToken::for_group(key);
        let link = self.links.entry(hop.peer).or_insert_with(|| Link {
            address: hop.address.clone(),
            token: token.clone(),
            state: State::Away,
            waiting: HashMap::new(),
            round: 0,
        });
        link.address = hop.address.clone();
        if link.token != token {
            // Another secret: the relay's verdict on the old one says
            // nothing about it.
            link.token = token;
            if link.state != State::Dialing {
                link.state = State::Away;
            }
        }
        link.waiting.insert(peer, circuit);
        self.advance(hop.peer, swarm)
    }

    /// `peer` is no longer wanted: it waits on no relay.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        for link in self.links.values_mut() {
            link.waiting.remove(peer);
        }
    }

    /// A connection to `relay` opened.
    pub(crate) fn on_connected(
        &mut self,
        relay: PeerId,
        swarm: &mut Swarm<Behaviour>,
    ) -> Vec<Next> {
        if let Some(link) = self.links.get_mut(&relay)
            && link.state == State::Dialing
        {
            link.state = State::Away;
        }
        self.advance(relay, swarm)
    }

    /// The last connection to `relay` closed: its admission ended with it
    /// (the relay forgets it too); peers still waiting fail.
    pub(crate) fn on_closed(&mut self, relay: &PeerId) -> Vec<Next> {
        let Some(link) = self.links.get_mut(relay) else {
            return Vec::new();
        };
        link.state = State::Away;
        link.round += 1;
        fail_all(
            link,
            PeerState::Unreachable,
            WebError::Unreachable(format!(
                "the connection to the relay {relay} closed before it let this tab through"
            )),
        )
    }

    /// A dial of `relay` failed.
    pub(crate) fn on_dial_failed(&mut self, relay: &PeerId, swarm: &Swarm<Behaviour>) -> Vec<Next> {
        let Some(link) = self.links.get_mut(relay) else {
            return Vec::new();
        };
        if link.state != State::Dialing || swarm.is_connected(relay) {
            return Vec::new();
        }
        link.state = State::Away;
        let why = format!(
            "cannot reach the relay at {}: no WebSocket connection (is the relay listening on /ws there?)",
            link.address
        );
        fail_all(link, PeerState::Unreachable, WebError::Unreachable(why))
    }

    /// An admission exchange ended.
    pub(crate) fn on_verdict(
        &mut self,
        verdict: Verdict,
        swarm: &mut Swarm<Behaviour>,
    ) -> Vec<Next> {
        let Some(link) = self
            .links
            .get_mut(&verdict.relay)
            .filter(|l| l.round == verdict.round && l.state == State::Proving)
        else {
            return Vec::new(); // an older exchange, or the connection closed since
        };
        let relay = verdict.relay;
        match verdict.outcome {
            Ok(()) => link.state = State::Admitted,
            Err(Refusal::Refused) => link.state = State::Refused,
            Err(Refusal::Broken(why)) => {
                link.state = State::Away;
                return fail_all(
                    link,
                    PeerState::Unreachable,
                    WebError::Unreachable(format!(
                        "the relay {relay} did not finish checking this tab's membership: {why}"
                    )),
                );
            }
        }
        self.advance(relay, swarm)
    }

    /// Moves `relay`'s waiting peers on as far as its link allows.
    fn advance(&mut self, relay: PeerId, swarm: &mut Swarm<Behaviour>) -> Vec<Next> {
        let Some(link) = self.links.get_mut(&relay) else {
            return Vec::new();
        };
        if link.waiting.is_empty() {
            return Vec::new();
        }
        let connected = swarm.is_connected(&relay);
        match link.state {
            State::Admitted if connected => link
                .waiting
                .drain()
                .map(|(peer, circuit)| Next::Dial(peer, circuit))
                .collect(),
            State::Refused if connected => fail_all(
                link,
                PeerState::Rejected,
                WebError::WrongSecret(format!(
                    "the relay {relay} refused this tab's membership proof, so it opens no \
                     circuit to a member"
                )),
            ),
            State::Dialing | State::Proving => Vec::new(),
            State::Away | State::Admitted | State::Refused if connected => {
                link.state = State::Proving;
                link.round += 1;
                let control = swarm.behaviour().stream.new_control();
                let local = *swarm.local_peer_id();
                let (token, round, verdicts) =
                    (link.token.clone(), link.round, self.verdicts.clone());
                spawn_local(async move {
                    let exchange = prove(control, relay, local, token).fuse();
                    let timeout = futures_timer::Delay::new(ADMISSION_TIMEOUT).fuse();
                    futures::pin_mut!(exchange, timeout);
                    let outcome = futures::select! {
                        outcome = exchange => outcome,
                        _ = timeout => Err(Refusal::Broken("no verdict in time".into())),
                    };
                    let _ = verdicts.unbounded_send(Verdict {
                        relay,
                        round,
                        outcome,
                    });
                });
                Vec::new()
            }
            State::Away | State::Admitted | State::Refused => {
                match swarm.dial(link.address.clone()) {
                    Ok(()) => {
                        link.state = State::Dialing;
                        Vec::new()
                    }
                    Err(e) => {
                        link.state = State::Away;
                        let why = format!("cannot dial the relay at {}: {e}", link.address);
                        fail_all(link, PeerState::Unreachable, WebError::Unreachable(why))
                    }
                }
            }
        }
    }
}

/// Fails every peer waiting on `link` with `error`.
fn fail_all(link: &mut Link, state: PeerState, error: WebError) -> Vec<Next> {
    link.waiting
        .drain()
        .map(|(peer, _)| Next::Fail(peer, state, error.clone()))
        .collect()
}

/// Runs the admission exchange with `relay`, being `local`: reads the
/// relay's challenge, answers with the proof, reads the verdict.
async fn prove(
    mut control: libp2p_stream::Control,
    relay: PeerId,
    local: PeerId,
    token: RelayToken,
) -> Result<(), Refusal> {
    let mut stream = control
        .open_stream(relay, StreamProtocol::new(RELAY_AUTH_PROTOCOL))
        .await
        .map_err(|e| Refusal::Broken(format!("cannot open the admission stream: {e}")))?;
    let mut challenge = [0u8; RELAY_AUTH_LEN];
    stream
        .read_exact(&mut challenge)
        .await
        .map_err(|e| Refusal::Broken(format!("no challenge from the relay: {e}")))?;
    let proof = token.prove(&relay.to_bytes(), &local.to_bytes(), &challenge);
    stream
        .write_all(&proof)
        .await
        .and(stream.flush().await)
        .map_err(|e| Refusal::Broken(format!("cannot send the proof: {e}")))?;
    let mut verdict = [0u8; 1];
    stream
        .read_exact(&mut verdict)
        .await
        .map_err(|e| Refusal::Broken(format!("no verdict from the relay: {e}")))?;
    match Admission::from_byte(verdict[0]) {
        Some(Admission::Granted) => Ok(()),
        Some(Admission::Refused) | None => Err(Refusal::Refused),
    }
}
