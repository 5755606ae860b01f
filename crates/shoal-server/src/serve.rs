//! The serving loop: start a node over a store, serve the router on an HTTP
//! listener until a stop signal, then let open requests finish for a
//! moment, close what is left and stop the node.
//!
//! This module owns that order and its errors ([`ServeError`]); it must not
//! choose ports, write files or watch signals — the caller (`shoal serve`,
//! an app) binds the listener, says when to stop and announces the
//! [`Started`] facts where it likes.

use crate::options::{MetricsAccess, ServeOptions};
use axum::Router;
use shoal::{Multiaddr, NetError, Node, PeerId, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `/metrics` without the token was asked for on a listener other
    /// machines can reach.
    #[error(
        "public metrics are allowed only on a loopback HTTP listener, not on {0}: \
         other machines could read them without the token"
    )]
    PublicMetricsOffLoopback(SocketAddr),
    /// The listener's address cannot be read.
    #[error("cannot read the HTTP listener's address: {0}")]
    Address(std::io::Error),
    /// The node did not start.
    #[error("cannot start the node")]
    Start(#[source] shoal::Error),
    /// The node started but reported no listen address in time.
    #[error("the node is not listening")]
    NotListening(#[source] NetError),
    /// The HTTP server failed.
    #[error("the HTTP API failed: {0}")]
    Http(std::io::Error),
    /// The HTTP server's task panicked.
    #[error("the HTTP API panicked: {0}")]
    Panicked(String),
}

/// What a started server is: where its HTTP API and its node listen.
#[derive(Debug, Clone)]
pub struct Started {
    /// The HTTP API's address.
    pub http: SocketAddr,
    /// The node's peer id.
    pub peer_id: PeerId,
    /// Where the node listens, each ending in `/p2p/<peer id>`.
    pub listen: Vec<Multiaddr>,
}

/// A node started and its router built, not serving yet.
pub struct Server {
    node: Arc<Node>,
    listener: TcpListener,
    router: Router,
    started: Started,
    drain: Duration,
    /// The tombstone collection schedule, stopped with the node.
    gc: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Starts the node over `store` and builds the router; serving starts
    /// with [`Server::run_until`].
    pub async fn start(
        store: Store,
        listener: TcpListener,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let http = listener.local_addr().map_err(ServeError::Address)?;
        if options.api.metrics == MetricsAccess::Public && !http.ip().is_loopback() {
            return Err(ServeError::PublicMetricsOffLoopback(http));
        }
        let node = store
            .start_node(options.node)
            .await
            .map_err(ServeError::Start)?;
        let first = node
            .listen_addrs(options.listen_wait)
            .await
            .map_err(ServeError::NotListening)?;
        // The other listeners (QUIC, other interfaces) report within moments.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listen = node.listen_addrs(Duration::ZERO).await.unwrap_or(first);
        let node = Arc::new(node);
        let gc = options
            .gc
            .map(|schedule| crate::gc_schedule::spawn(store.clone(), schedule));
        let router = crate::router(node.clone(), store, options.api);
        let started = Started {
            http,
            peer_id: node.peer_id(),
            listen,
        };
        Ok(Server {
            node,
            listener,
            router,
            started,
            drain: options.drain,
            gc,
        })
    }

    /// Where it listens.
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The running node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serves until `stop` completes, then stops the node.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), ServeError> {
        let served = serve_until(self.listener, self.router, stop, self.drain).await;
        if let Some(gc) = &self.gc {
            gc.abort();
        }
        self.node.shutdown().await;
        served
    }
}

/// Starts a node over `store`, serves its HTTP API and dashboard on
/// `listener` until `stop` completes, then stops it: [`Server::start`]
/// then [`Server::run_until`].
pub async fn serve(
    store: Store,
    listener: TcpListener,
    options: ServeOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    Server::start(store, listener, options)
        .await?
        .run_until(stop)
        .await
}

/// Serves `router` on `listener` until `stop` completes, then lets open
/// requests finish for up to `drain` and closes what is left: an open change
/// feed never ends by itself, nor may an idle keep-alive client hold the stop
/// up.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()>,
    drain: Duration,
) -> Result<(), ServeError> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    let served = tokio::select! {
        () = stop => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(drain, &mut server).await {
                Ok(done) => done,
                Err(_) => {
                    server.abort();
                    let _ = (&mut server).await;
                    Ok(Ok(()))
                }
            }
        }
        done = &mut server => done,
    };
    served
        .map_err(|e| ServeError::Panicked(e.to_string()))?
        .map_err(ServeError::Http)
}
