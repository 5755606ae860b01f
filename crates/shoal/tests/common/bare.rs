//! A bare libp2p peer for hostile tests: the node's TCP stack (Noise, Yamux)
//! and raw streams, nothing else — no Shoal session, no ping — so a test can
//! speak a Shoal protocol badly, or stop speaking it.

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};
use std::time::Duration;

/// A bare peer connected to one node; its swarm is driven until dropped.
pub struct Bare {
    /// Its peer id.
    pub id: PeerId,
    /// Opens raw streams on its connection.
    pub control: libp2p_stream::Control,
    driver: tokio::task::JoinHandle<()>,
}

impl Bare {
    /// A fresh identity dialing `address`; returns once the connection is up.
    pub async fn connect(address: Multiaddr, limit: Duration) -> Bare {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("bare transport")
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .expect("bare behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let id = *swarm.local_peer_id();
        let control = swarm.behaviour().new_control();
        swarm.dial(address).expect("bare dial");
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let driver = tokio::spawn(async move {
            let mut connected_tx = Some(connected_tx);
            loop {
                let event = swarm.select_next_some().await;
                if matches!(event, SwarmEvent::ConnectionEstablished { .. })
                    && let Some(tx) = connected_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        tokio::time::timeout(limit, connected)
            .await
            .expect("the bare peer connects in time")
            .expect("the bare peer's swarm runs");
        Bare {
            id,
            control,
            driver,
        }
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
