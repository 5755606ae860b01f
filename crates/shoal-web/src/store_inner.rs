//! What every JavaScript handle of one open store shares ([`Inner`]): the
//! storage (IndexedDB or SQLite on OPFS), the change feed, the log head
//! sync sessions watch, the tab's identity and network, and whether the
//! store is closed.
//!
//! The handles themselves are `api_store.rs`'s (`Store`), `api_collection.rs`'s
//! and `api_net.rs`'s; they and the sync code reach the store through this,
//! so none of them imports another for it. It holds state, no behaviour
//! beyond refusing a closed store and telling the feed and the sync
//! sessions of each committed local write (as the write queue's target).

use crate::error::WebError;
use crate::feed::Feed;
use crate::lock::Ownership;
use crate::storage::Storage;
use crate::sync::echo::EchoLog;
use crate::sync::head::HeadWatch;
use crate::write_batch::{Committed, WriteRequest};
use crate::write_queue::{WriteQueue, WriteTarget};
use shoal_core::SiteId;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What every handle of one open store shares.
pub(crate) struct Inner {
    pub(crate) db: Storage,
    pub(crate) feed: Feed,
    /// Local writes waiting for their transaction (write_queue.rs).
    pub(crate) writes: WriteQueue,
    /// The end of the log, watched by sync sessions (sync/head.rs).
    pub(crate) head: HeadWatch,
    /// What each sync peer sent in its current session (sync/echo.rs).
    pub(crate) echoes: RefCell<EchoLog>,
    pub(crate) site: SiteId,
    pub(crate) lock: RefCell<Option<Ownership>>,
    pub(crate) closed: Cell<bool>,
    /// The tab's libp2p identity (from the seed in its metadata).
    pub(crate) keypair: libp2p::identity::Keypair,
    /// The network, once `connect` started it (api_net.rs).
    pub(crate) net: RefCell<Option<Rc<crate::net::Network>>>,
}

impl Inner {
    /// The storage, or [`WebError::Closed`] after `close()`.
    pub(crate) fn db(&self) -> Result<&Storage, WebError> {
        if self.closed.get() {
            return Err(WebError::Closed);
        }
        Ok(&self.db)
    }
}

impl WriteTarget for Inner {
    fn queue(&self) -> &WriteQueue {
        &self.writes
    }

    fn db(&self) -> Result<&Storage, WebError> {
        Inner::db(self)
    }

    fn committed(&self, write: &WriteRequest, committed: &Committed) {
        self.feed.publish(&crate::feed::change_object(
            &write.collection,
            &write.id,
            committed.version,
            committed.value.as_deref(),
        ));
        // Running sync sessions push it to their peers.
        self.head.advance(committed.version);
    }
}
