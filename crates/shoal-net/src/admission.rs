//! Device admission in the network shell (issue 19): what the replica says
//! of a peer that proved the group secret ([`DeviceCheck`], `replica.rs`), asked as its
//! session authenticates and again on every session tick, so a revocation
//! ends a running session within half a second.
//!
//! The decision is the core registry's (`shoal_core::devices`), read by the
//! replica; this file only carries its verdict to the session, which
//! refuses the peer by name ([`Rejection::NotAdmitted`] or
//! [`Rejection::Revoked`]).

use crate::replica::DeviceCheck;
use shoal_core::sync::Rejection;

/// How long a peer refused for want of an admission waits before the next
/// try (its request may be approved any moment), at most.
pub(crate) const NOT_ADMITTED_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks the replica about `peer` (off the async executor); `Some(reason)`
/// when it must be refused. A replica that cannot answer refuses nothing
/// (logged): the sharing rules, which read the same registry, still hold
/// back every record from a peer not admitted.
pub(crate) async fn refusal(
    replica: &std::sync::Arc<dyn crate::Replica>,
    peer: libp2p::PeerId,
) -> Option<Rejection> {
    let replica = replica.clone();
    match tokio::task::spawn_blocking(move || replica.device_check(&peer)).await {
        Ok(Ok(DeviceCheck::Allowed)) => None,
        Ok(Ok(DeviceCheck::Refused(reason))) => Some(reason),
        Ok(Err(e)) => {
            tracing::warn!(%peer, "cannot check the peer's device admission: {e}");
            None
        }
        Err(e) => {
            tracing::warn!(%peer, "device admission check panicked: {e}");
            None
        }
    }
}

/// Refuses the peer at once: writes the session's `Rejected` frame (and
/// nothing it had queued before it) and reports how the session ended.
pub(crate) async fn refuse_now(
    session: &mut shoal_core::sync::Session,
    writer: &mut futures::io::WriteHalf<libp2p::Stream>,
    timeout: std::time::Duration,
    reason: Rejection,
) -> crate::session_link::SessionEnd {
    use futures::AsyncWriteExt;
    for action in session.refuse(reason) {
        match action {
            shoal_core::sync::Action::Send(frame) => {
                let _ = tokio::time::timeout(timeout, async {
                    writer.write_all(&frame).await?;
                    writer.flush().await
                })
                .await;
            }
            shoal_core::sync::Action::Close { reason, by_peer } => {
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(1), writer.close()).await;
                return crate::session_link::SessionEnd::Closed { reason, by_peer };
            }
            _ => {}
        }
    }
    crate::session_link::SessionEnd::Closed {
        reason,
        by_peer: false,
    }
}
