//! Fetching one blob because someone opens it (blobs on demand): the blob is
//! claimed in the node's blob table (a fetch of it already running is
//! waited for instead), fetched through the same fetcher — and so the same
//! peers, piece verification and resume — as background fetches, and waited
//! for up to a bound. A wait that runs out leaves the fetch going and says
//! so ("still fetching"); a blob no connected peer would send is an error
//! that says that, never a hang.
//!
//! It keeps no books of what was fetched on demand or opened when, and
//! evicts nothing: it tells the replica (`Replica::fetched_on_demand`),
//! whose job that is.

use crate::blob_fetch::Fetcher;
use crate::blob_table::BlobState;
use libp2p::PeerId;
use shoal_core::blob::BlobHash;
use std::time::Duration;
use tokio::time::Instant;

/// How often a wait for a fetch another task runs looks again.
const POLL: Duration = Duration::from_millis(50);

/// Why a blob could not be fetched on demand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemandError {
    /// No connected peer sent it: none may send a collection referencing
    /// it, or every one asked failed or does not have it.
    #[error("blob {hash} is not available from any connected peer ({detail})")]
    Unavailable {
        /// The blob.
        hash: BlobHash,
        /// What each peer asked said, or why none was asked.
        detail: String,
    },
    /// The wait ran out while it is being fetched; the fetch goes on.
    #[error("blob {hash} is still fetching ({verified_bytes} of {size} bytes verified); try again")]
    StillFetching {
        /// The blob.
        hash: BlobHash,
        /// Verified bytes held so far.
        verified_bytes: u64,
        /// Its size, as referenced.
        size: u64,
    },
    /// The replica could not be read.
    #[error("cannot look the blob up: {0}")]
    Replica(String),
    /// The node stopped.
    #[error("the node stopped")]
    Stopped,
}

impl Fetcher {
    /// Fetches `hash` now, waiting at most `wait`: `Ok(Some(peer))` once it
    /// is here (fetched from `peer`), `Ok(None)` if there is nothing to
    /// fetch (it is here already, or no live record references it).
    pub(crate) async fn fetch_now(
        &self,
        hash: &BlobHash,
        wait: Duration,
    ) -> Result<Option<PeerId>, DemandError> {
        let deadline = Instant::now() + wait;
        // The peer a fetch of it that another task runs was last seen using.
        let mut seen = None;
        loop {
            let replica = self.replica.clone();
            let h = *hash;
            let missing = tokio::task::spawn_blocking(move || replica.missing_blob(&h))
                .await
                .map_err(|_| DemandError::Stopped)?
                .map_err(|e| DemandError::Replica(e.to_string()))?;
            let Some(blob) = missing else {
                return Ok(seen);
            };
            if self.blobs.claim_now(&blob) {
                let size = blob.size;
                let fetcher = self.clone();
                // Booked by the replica when it arrives, even if this wait
                // has run out by then.
                let task = tokio::spawn(async move {
                    let hash = blob.hash;
                    let replica = fetcher.replica.clone();
                    let peer = fetcher.fetch(blob).await?;
                    let booked = tokio::task::spawn_blocking(move || {
                        replica.fetched_on_demand(&hash, size, &peer)
                    })
                    .await;
                    if let Ok(Err(e)) = booked {
                        tracing::warn!(%hash, "cannot book a blob fetched on demand: {e}");
                    }
                    Ok(peer)
                });
                return match tokio::time::timeout_at(deadline, task).await {
                    Ok(Ok(Ok(peer))) => Ok(Some(peer)),
                    Ok(Ok(Err(detail))) => Err(DemandError::Unavailable {
                        hash: *hash,
                        detail,
                    }),
                    Ok(Err(_)) => Err(DemandError::Stopped),
                    Err(_) => Err(self.still_fetching(hash, size)),
                };
            }
            // Another fetch of it runs: wait for it to end, then look again.
            if let Some(BlobState::Fetching { peer }) = self.blobs.get(hash).map(|t| t.state) {
                seen = Some(peer);
            }
            if Instant::now() + POLL > deadline {
                return Err(self.still_fetching(hash, blob.size));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn still_fetching(&self, hash: &BlobHash, size: u64) -> DemandError {
        let transfer = self.blobs.get(hash);
        let verified_bytes = transfer.as_ref().map_or(0, |t| t.verified_bytes);
        // A task that has not asked its first peer yet still shows the
        // placeholder "no peer" failure: while it runs, it is fetching.
        let running = self.blobs.is_claimed(hash);
        match transfer.map(|t| t.state).filter(|_| !running) {
            Some(BlobState::Fetching { .. }) | None => DemandError::StillFetching {
                hash: *hash,
                verified_bytes,
                size,
            },
            Some(BlobState::AwaitingDirect { relay_max }) => DemandError::Unavailable {
                hash: *hash,
                detail: format!(
                    "larger than the {relay_max} bytes a relay carries; waiting for a direct connection"
                ),
            },
            Some(BlobState::Failed { error }) => DemandError::Unavailable {
                hash: *hash,
                detail: error,
            },
        }
    }
}
