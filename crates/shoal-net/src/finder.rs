//! Finding members again: the swarm loop's side of the address book
//! (`address_book.rs`) and of reachability (`reachability.rs`). It hears
//! the addresses members are reached and announced at, writes them in
//! once their sessions proved membership (saving the book's file), redials
//! the members not connected at every address the book holds, and turns
//! the AutoNAT v2 client's probe results into this node's [`Reachability`].
//!
//! It owns no connections: the loop (`driver.rs`) calls it on swarm events
//! and on its ticks. It must not dial anyone the book does not hold.

use crate::address_book::{self, AddressBook};
use crate::reachability::{Probes, Reachability};
use crate::status::{PeerState, PeerTable};
use libp2p::core::ConnectedPoint;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, autonat};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The address book, its file, and the reachability verdict.
pub(crate) struct Finder {
    book: AddressBook,
    path: Option<PathBuf>,
    probes: Probes,
    reachability: watch::Sender<Reachability>,
    /// Saves so far, and the newest one written (saves run off the loop and
    /// may finish out of order: an older one never overwrites a newer).
    saves: u64,
    written: Arc<Mutex<u64>>,
}

impl Finder {
    /// The book kept at `path` (read now; a missing file is an empty book,
    /// an unreadable one is logged and started empty).
    pub(crate) fn load(path: Option<PathBuf>, reachability: watch::Sender<Reachability>) -> Self {
        let book = match path.as_deref().map(address_book::load) {
            None => AddressBook::default(),
            Some(Ok((book, bad))) => {
                for line in bad {
                    tracing::warn!("address book: skipping a line that does not parse: {line}");
                }
                book
            }
            Some(Err(e)) => {
                tracing::warn!("address book: {e}; starting with an empty one");
                AddressBook::default()
            }
        };
        Finder {
            book,
            path,
            probes: Probes::default(),
            reachability,
            saves: 0,
            written: Arc::default(),
        }
    }

    /// Dials every member in the book that is not connected (and that
    /// `skip` does not exclude, e.g. one in back-off), at all its addresses.
    pub(crate) fn dial_members<B: NetworkBehaviour>(
        &self,
        swarm: &mut Swarm<B>,
        skip: impl Fn(&PeerId) -> bool,
    ) {
        for (peer, addresses) in self.book.members() {
            if swarm.is_connected(peer) || skip(peer) || addresses.is_empty() {
                continue;
            }
            let opts = DialOpts::peer_id(*peer)
                .addresses(addresses.clone())
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = swarm.dial(opts) {
                tracing::debug!(%peer, "cannot redial a member from the address book: {e}");
            }
        }
    }

    /// A connection to `peer` opened: the address we dialed it at is worth
    /// keeping (an address it dialed us from is only a passing port).
    pub(crate) fn on_connected(&mut self, peer: PeerId, endpoint: &ConnectedPoint) {
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            self.book.hear(peer, address);
        }
    }

    /// `peer` announced its listen addresses (identify), its relayed ones
    /// among them.
    pub(crate) fn on_announced(&mut self, peer: PeerId, addresses: &[Multiaddr]) {
        for address in addresses {
            self.book.hear(peer, address);
        }
    }

    /// `peer`'s last connection closed: what it announced without proving
    /// membership is dropped.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId) {
        self.book.unheard(peer);
    }

    /// Writes in what was heard from peers proven members since (their
    /// state in `table` is connected), saving the book if it changed.
    pub(crate) fn admit_members(&mut self, table: &PeerTable) {
        let mut changed = false;
        for peer in self.book.waiting() {
            let proven = table
                .get(&peer)
                .is_some_and(|s| matches!(s.state, PeerState::Connected));
            if proven {
                changed |= self.book.admit(peer);
            }
        }
        if changed {
            self.save();
        }
    }

    /// Forgets `peer` (`shoal peers forget`): out of the book for good.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        if self.book.forget(peer) {
            self.save();
        }
    }

    /// A probe came back from an AutoNAT server.
    pub(crate) fn on_probe(&mut self, event: autonat::v2::client::Event) {
        let reached = event.result.is_ok();
        match &event.result {
            Ok(()) => {
                tracing::info!(address = %event.tested_addr, server = %event.server, "reachable from the internet")
            }
            Err(e) => {
                tracing::info!(address = %event.tested_addr, server = %event.server, "not reachable from the internet: {e}")
            }
        }
        let verdict = self.probes.record(&event.tested_addr, reached);
        self.reachability.send_if_modified(|now| {
            let changed = *now != verdict;
            *now = verdict;
            changed
        });
    }

    /// Writes the book's file off the loop (it is small; a failure is logged).
    fn save(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        self.saves += 1;
        let (this, written) = (self.saves, self.written.clone());
        let text = self.book.render();
        tokio::task::spawn_blocking(move || {
            let mut newest = written.lock().unwrap_or_else(|p| p.into_inner());
            if *newest > this {
                return;
            }
            *newest = this;
            if let Err(e) = address_book::save(&path, &text) {
                tracing::warn!("address book: {e}");
            }
        });
    }
}
