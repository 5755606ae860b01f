//! A loopback TCP forwarder put between two nodes, for tests whose path must
//! misbehave: it can hold each new connection a while before joining it to
//! the node behind it, and it can freeze — stop forwarding in both
//! directions without closing anything, as a peer that vanished (asleep,
//! network gone) looks from the other end.

use shoal::{Multiaddr, PeerId};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The forwarder; it runs until the test's runtime ends.
pub struct Door {
    port: u16,
    frozen: Arc<AtomicBool>,
    joined: Arc<AtomicUsize>,
}

impl Door {
    /// Opens a door to `target` (a TCP port on loopback), holding each new
    /// connection for `hold` before joining it.
    pub async fn open(target: u16, hold: Duration) -> Door {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind door");
        let port = listener.local_addr().expect("door address").port();
        let frozen = Arc::new(AtomicBool::new(false));
        let joined = Arc::new(AtomicUsize::new(0));
        let (f, j) = (frozen.clone(), joined.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (frozen, joined) = (f.clone(), j.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(hold).await;
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    joined.fetch_add(1, Ordering::SeqCst);
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::join!(
                        pump(in_read, out_write, frozen.clone()),
                        pump(out_read, in_write, frozen)
                    );
                });
            }
        });
        Door {
            port,
            frozen,
            joined,
        }
    }

    /// The door's address, naming the node behind it.
    pub fn address(&self, peer: PeerId) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", self.port)
            .parse()
            .expect("door multiaddr")
    }

    /// Stops (`true`) or resumes (`false`) forwarding on every connection.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Connections joined to the node behind the door so far.
    pub fn joined(&self) -> usize {
        self.joined.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to`, holding what it read while the door is frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
