//! The transport's own ceiling, for the `blob` scenario: N MiB memory to
//! memory over one libp2p stream on the stack a Shoal node uses for TCP
//! (TCP with nodelay, Noise, Yamux), between two bare swarms — no Shoal
//! protocol, no disk, no verification. Whatever the blob transfer does on
//! top of this, it cannot go faster than this.
//!
//! It owns only that measurement; the blob transfer itself is `blob.rs`'s.

use anyhow::{Context, Result, ensure};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use std::time::{Duration, Instant};

const PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal-bench/transport/1");
const MIB: usize = 1024 * 1024;

/// A swarm with the TCP stack of `shoal-net`'s `behaviour.rs` and nothing
/// but raw streams.
fn swarm() -> Result<Swarm<libp2p_stream::Behaviour>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Seconds to carry `size` bytes from memory to memory over one stream,
/// from the connection being up until the receiver has read them all.
pub async fn memory_round(size: u64) -> Result<f64> {
    let (mut a, mut b) = (swarm()?, swarm()?);
    b.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = b.select_next_some().await {
            break address;
        }
    };
    let b_id = *b.local_peer_id();
    let mut incoming = b
        .behaviour()
        .new_control()
        .accept(PROTOCOL)
        .context("cannot accept the bench protocol")?;
    let mut control = a.behaviour().new_control();
    a.dial(address.with(Protocol::P2p(b_id)))?;
    let drive_b = tokio::spawn(async move {
        loop {
            b.select_next_some().await;
        }
    });
    loop {
        match a.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => break,
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                anyhow::bail!("cannot connect the bare swarms: {error}")
            }
            _ => {}
        }
    }
    let drive_a = tokio::spawn(async move {
        loop {
            a.select_next_some().await;
        }
    });
    let receiver = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.context("no incoming stream")?;
        let mut buffer = vec![0u8; MIB];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok::<_, anyhow::Error>(total)
    });
    let start = Instant::now();
    let mut stream = control
        .open_stream(b_id, PROTOCOL)
        .await
        .context("cannot open the bench stream")?;
    let buffer = vec![7u8; MIB];
    let mut sent = 0u64;
    while sent < size {
        let n = (size - sent).min(MIB as u64) as usize;
        stream.write_all(&buffer[..n]).await?;
        sent += n as u64;
    }
    stream.close().await?;
    let received = receiver.await??;
    let seconds = start.elapsed().as_secs_f64();
    drive_a.abort();
    drive_b.abort();
    ensure!(received == size, "the libp2p stream lost bytes");
    Ok(seconds)
}
