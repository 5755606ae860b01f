//! A relay listening on WebSocket (`/ip4/127.0.0.1/tcp/0/ws`, what a browser
//! tab dials) serves members over it as over TCP: real libp2p peers dial
//! its `/ws` address over loopback, prove membership on the admission
//! protocol, and then one reserves and another reaches it through a
//! circuit; a peer with another group's token is refused and its circuit
//! denied.

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, StreamProtocol, Swarm, SwarmBuilder, Transport, noise, relay, tcp, websocket, yamux,
};
use shoal_core::sync::{Admission, GroupKey, RELAY_AUTH_LEN, RELAY_AUTH_PROTOCOL, RelayToken};
use shoal_relay::{Relay, RelayConfig, RelayLimits};
use std::time::Duration;

/// Longest any step of these tests may take.
const STEP: Duration = Duration::from_secs(20);

#[derive(NetworkBehaviour)]
struct Member {
    relay: relay::client::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// A peer speaking WebSocket (over TCP) only, with the relay client.
fn member() -> Swarm<Member> {
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let tcp = tcp::tokio::Transport::new(tcp::Config::default());
            Ok(websocket::Config::new(tcp)
                .upgrade(upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_, relay| Member {
            relay,
            stream: libp2p_stream::Behaviour::new(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn token(byte: u8) -> RelayToken {
    RelayToken::for_group(&GroupKey::from_random([byte; 32]))
}

/// Drives `swarm` until `done` holds for one of its events.
async fn until<B: NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    what: &str,
    mut done: impl FnMut(&SwarmEvent<B::ToSwarm>) -> bool,
) {
    let wait = async {
        loop {
            if done(&swarm.select_next_some().await) {
                return;
            }
        }
    };
    tokio::time::timeout(STEP, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Drives `swarm` while `work` runs; `work`'s answer.
async fn driving<B: NetworkBehaviour, T>(
    swarm: &mut Swarm<B>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let work = tokio::time::timeout(STEP, work);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out.expect("timed out"),
            _ = swarm.select_next_some() => {}
        }
    }
}

/// Dials the relay at `address` and runs the admission exchange with
/// `token`; the relay's verdict.
async fn admit(swarm: &mut Swarm<Member>, address: &Multiaddr, token: &RelayToken) -> Admission {
    let Some(Protocol::P2p(relay)) = address.iter().last() else {
        panic!("{address} names no relay");
    };
    swarm.dial(address.clone()).unwrap();
    until(
        swarm,
        "the connection to the relay",
        |e| matches!(e, SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == relay),
    )
    .await;
    let local = *swarm.local_peer_id();
    let mut control = swarm.behaviour().stream.new_control();
    let token = token.clone();
    driving(swarm, async move {
        let mut stream = control
            .open_stream(relay, StreamProtocol::new(RELAY_AUTH_PROTOCOL))
            .await
            .unwrap();
        let mut challenge = [0u8; RELAY_AUTH_LEN];
        stream.read_exact(&mut challenge).await.unwrap();
        let proof = token.prove(&relay.to_bytes(), &local.to_bytes(), &challenge);
        stream.write_all(&proof).await.unwrap();
        stream.flush().await.unwrap();
        let mut verdict = [0u8; 1];
        stream.read_exact(&mut verdict).await.unwrap();
        Admission::from_byte(verdict[0]).expect("a known verdict")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reach_each_other_through_a_relay_listening_on_websocket() {
    let group = token(7);
    // A relay serves only with an external address (it is what a
    // reservation carries): here its loopback one, on a port known ahead.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/ws").parse().unwrap();
    let relay = Relay::start(
        Keypair::generate_ed25519(),
        RelayConfig {
            listen: vec![ws.clone()],
            external: vec![ws],
            token: group.clone(),
            limits: RelayLimits::default(),
        },
    )
    .await
    .expect("the relay starts on a /ws address");
    let addresses = relay.listen_addrs(STEP).await.unwrap();
    let address = addresses
        .iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Ws(_))))
        .unwrap_or_else(|| panic!("no /ws address among {addresses:?}"))
        .clone();

    // A member reserves over WebSocket once admitted.
    let mut a = member();
    assert_eq!(admit(&mut a, &address, &group).await, Admission::Granted);
    a.listen_on(address.clone().with(Protocol::P2pCircuit))
        .unwrap();
    until(&mut a, "the reservation", |e| {
        matches!(
            e,
            SwarmEvent::Behaviour(MemberEvent::Relay(
                relay::client::Event::ReservationReqAccepted { .. }
            ))
        )
    })
    .await;
    let a_id = *a.local_peer_id();
    let circuit = address
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(a_id));

    // Another member, admitted over WebSocket, reaches it through a circuit.
    let mut b = member();
    assert_eq!(admit(&mut b, &address, &group).await, Admission::Granted);
    b.dial(circuit.clone()).unwrap();
    let reached =
        async {
            until(&mut b, "the circuit to the member", |e| {
            matches!(e, SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == a_id)
        })
        .await
        };
    driving(&mut a, reached).await;

    // A peer holding another group's token is refused, and its circuit
    // denied.
    let mut stranger = member();
    assert_eq!(
        admit(&mut stranger, &address, &token(8)).await,
        Admission::Refused
    );
    stranger.dial(circuit).unwrap();
    let denied = async {
        until(&mut stranger, "the circuit's refusal", |e| match e {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == a_id => {
                panic!("a refused peer reached a member through the relay")
            }
            SwarmEvent::OutgoingConnectionError { peer_id, .. } => *peer_id == Some(a_id),
            _ => false,
        })
        .await
    };
    driving(&mut a, denied).await;

    // The relay counts the denial when its own task handles the event, which
    // may come after the stranger already read the refusal: wait for it.
    let counted = async {
        while relay.stats().circuits_denied == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(STEP, counted)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the relay never counted the denied circuit: {:?}",
                relay.stats()
            )
        });
    let stats = relay.stats();
    assert_eq!(stats.admitted, 2);
    assert_eq!(stats.refused, 1);
    assert_eq!(stats.reservations_accepted, 1);
    assert_eq!(stats.circuits_accepted, 1);
    assert!(stats.circuits_denied >= 1, "{stats:?}");
    relay.shutdown().await;
}

#[tokio::test]
async fn a_websocket_address_without_tcp_is_refused_clearly() {
    let result = Relay::start(
        Keypair::generate_ed25519(),
        RelayConfig {
            listen: vec!["/ip4/127.0.0.1/udp/0/ws".parse().unwrap()],
            external: Vec::new(),
            token: token(7),
            limits: RelayLimits::default(),
        },
    )
    .await;
    let Err(error) = result else {
        panic!("a relay listened on WebSocket over UDP");
    };
    assert!(
        error.to_string().contains("/ip4/127.0.0.1/udp/0/ws"),
        "{error}"
    );
}
