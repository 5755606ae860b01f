//! What other tasks ask a running sync session, and how they learn it
//! ended: the session's commands ([`SessionCmd`]), its end
//! ([`SessionEnd`]), and federation requests carried on it — the
//! [`Requester`] that sends them and counts their bytes, and [`FedError`],
//! how one fails — plus running a replica call off the async executor.
//!
//! It holds the types the session task, the driver and the federation
//! walks share, so that none of them imports another for them. It does not
//! run sessions (`session_task.rs`) nor decide anything about a request.

use crate::replica::{Replica, ReplicaError};
use crate::rule_watch::Flow;
use shoal_core::CollectionName;
use shoal_core::SyncCursor;
use shoal_core::sync::Rejection;
use shoal_core::sync::federation::{Refusal, Request, Response, encoded_len};
use shoal_core::sync::version::Feature;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// What a running session can be asked to do.
#[derive(Debug)]
pub(crate) enum SessionCmd {
    /// Ask the peer for its changes now.
    Resync,
    /// Send a federation request; the answer goes to `reply`.
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Response, FedError>>,
    },
    /// Reconciliation brought this replica level with the peer at `cursor`
    /// (persisted): start catch-up from there.
    FastForward(SyncCursor),
    /// The levelling of flows a widened rule opened ended (`ok`: it
    /// succeeded, so the peer's baseline may forget them).
    RulesLevelled { flows: Vec<Flow>, ok: bool },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The protocol closed it, with a named reason.
    Closed { reason: Rejection, by_peer: bool },
    /// The stream broke or could not be written.
    Broken(String),
    /// This node's store could not merge the peer's batch (busy, full,
    /// failing); the peer was not told it did wrong. The driver pauses
    /// sessions with it briefly before asking again.
    LocalFailure(String),
}

/// Why a federation request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FedError {
    /// No authenticated session with the peer (or it ended mid-request).
    #[error("peer unreachable")]
    Unreachable,
    /// The peer did not answer within the request timeout.
    #[error("timed out")]
    TimedOut,
    /// The peer refused the request.
    #[error("{0}")]
    Refused(Refusal),
    /// This node's own sharing rules forbid it.
    #[error("collection {0} is not shared with that peer in that direction (local rule)")]
    NotSharedHere(CollectionName),
    /// The peer answered something other than what was asked.
    #[error("the peer answered out of protocol: {0}")]
    BadAnswer(String),
    /// The local replica failed.
    #[error("local store: {0}")]
    Local(String),
    /// The peer's build lacks a feature the request needs (it predates
    /// it): the collection is not covered, rather than claimed in sync.
    #[error("not covered: the peer's build is too old (no {} feature)", .0.name())]
    PeerTooOld(Feature),
}

impl From<ReplicaError> for FedError {
    fn from(e: ReplicaError) -> Self {
        FedError::Local(e.to_string())
    }
}

/// Sends requests on one peer's session, counting payload bytes both ways.
#[derive(Debug, Clone)]
pub(crate) struct Requester {
    commands: mpsc::Sender<SessionCmd>,
    bytes: Arc<AtomicU64>,
}

impl Requester {
    pub(crate) fn new(commands: mpsc::Sender<SessionCmd>) -> Self {
        Self {
            commands,
            bytes: Arc::default(),
        }
    }

    pub(crate) async fn ask(&self, request: Request) -> Result<Response, FedError> {
        self.bytes
            .fetch_add(encoded_len(&request), Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(SessionCmd::Request { request, reply })
            .await
            .map_err(|_| FedError::Unreachable)?;
        let response = answer.await.map_err(|_| FedError::Unreachable)??;
        self.bytes
            .fetch_add(encoded_len(&response), Ordering::Relaxed);
        match response {
            Response::Refused(refusal) => Err(FedError::Refused(refusal)),
            response => Ok(response),
        }
    }

    /// Passes a command to the session itself.
    pub(crate) async fn send(&self, command: SessionCmd) -> Result<(), FedError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| FedError::Unreachable)
    }

    /// Payload bytes sent and received so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Runs a blocking replica call off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    replica: &Arc<dyn Replica>,
    f: impl FnOnce(&dyn Replica) -> Result<T, ReplicaError> + Send + 'static,
) -> Result<T, FedError> {
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || f(replica.as_ref()))
        .await
        .map_err(|e| FedError::Local(format!("replica call panicked: {e}")))?
        .map_err(FedError::from)
}
