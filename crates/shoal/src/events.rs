//! Change notifications: after each commit, one [`ChangeEvent`] per changed
//! record goes to every [`Subscription`], for local writes and applied remote
//! batches alike.
//!
//! Delivery is bounded: a subscriber that falls more than the channel capacity
//! behind gets [`SubscriptionError::Lagged`] with the version to resume from via
//! [`Store::changes_since`](crate::Store::changes_since) — never a silent gap.

use shoal_core::{CollectionName, DbVersion, RecordId};
use tokio::sync::broadcast;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A write through this store.
    Local,
    /// A change merged from another replica.
    Remote,
}

/// One record changed at one db_version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The record's collection.
    pub collection: CollectionName,
    /// The record's id.
    pub id: RecordId,
    /// The db_version of the commit that changed it (its last, for a commit
    /// of more than 1,048,575 changes).
    pub version: DbVersion,
    /// Local write or remote merge.
    pub origin: Origin,
}

/// Why [`Subscription::next`] returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// The subscriber fell behind and `missed` events were dropped for it;
    /// read [`Store::changes_since`](crate::Store::changes_since)`(resume_from)` to catch up.
    #[error("subscriber lagged: {missed} events missed; resume from version {resume_from}")]
    Lagged {
        /// How many events were missed.
        missed: u64,
        /// The last version this subscriber saw.
        resume_from: DbVersion,
    },
    /// The store was dropped.
    #[error("store closed")]
    Closed,
}

/// A stream of [`ChangeEvent`]s; see [`Store::subscribe`](crate::Store::subscribe).
pub struct Subscription {
    receiver: broadcast::Receiver<ChangeEvent>,
    collection: Option<CollectionName>,
    last_seen: DbVersion,
}

impl Subscription {
    pub(crate) fn new(
        receiver: broadcast::Receiver<ChangeEvent>,
        collection: Option<CollectionName>,
        last_seen: DbVersion,
    ) -> Self {
        Self {
            receiver,
            collection,
            last_seen,
        }
    }

    /// Waits for the next change (of the subscribed collection, if any).
    pub async fn next(&mut self) -> Result<ChangeEvent, SubscriptionError> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => {
                    self.last_seen = event.version;
                    if self
                        .collection
                        .as_ref()
                        .is_none_or(|c| *c == event.collection)
                    {
                        return Ok(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Err(SubscriptionError::Lagged {
                        missed,
                        resume_from: self.last_seen,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return Err(SubscriptionError::Closed),
            }
        }
    }
}
