//! The address book: for every group member, the addresses this node last
//! reached it at and the addresses it announced (its listen addresses and
//! relayed `…/p2p-circuit` addresses, from identify), so the node redials
//! them on start and after disconnects — a peer that moved to another
//! network is found again at its new addresses, through a relay it
//! reserved on, without anyone re-inviting.
//!
//! Only members are written in: addresses wait in [`AddressBook::hear`]
//! until the peer's sync session proved membership (the PAKE of
//! `shoal-core`), then [`AddressBook::admit`] moves them in. A stranger's
//! identify announcement therefore never lands in the book. Bounded: at
//! most [`MAX_ADDRESSES`] per peer (the most recent kept) and
//! [`MAX_BOOK_PEERS`] peers.
//!
//! The file form is one `PEER ADDRESS` pair per line (`#` comments
//! allowed), most recent last. This module parses and renders it and keeps
//! the bookkeeping; reading and writing the file is `load` and `save`, the
//! only IO here.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The address book's file name in a data directory (`shoal serve` keeps
/// it there).
pub const ADDRESS_BOOK_FILE: &str = "addresses.txt";
/// Most addresses kept per peer.
pub(crate) const MAX_ADDRESSES: usize = 8;
/// Most peers kept.
pub(crate) const MAX_BOOK_PEERS: usize = 256;
/// Most addresses heard from a peer not yet proven a member.
const MAX_HEARD: usize = 16;

/// Learned addresses of members, and addresses heard from peers not yet
/// proven members.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct AddressBook {
    known: BTreeMap<PeerId, Vec<Multiaddr>>,
    heard: HashMap<PeerId, Vec<Multiaddr>>,
}

/// `address` as a dialable address of `peer` (ending in `/p2p/<peer>`), or
/// `None` if it cannot be dialed from elsewhere (an unspecified IP, a
/// circuit without its relay's id, or naming another peer).
pub(crate) fn dialable(peer: PeerId, address: &Multiaddr) -> Option<Multiaddr> {
    let (mut relay_named, mut circuit) = (false, false);
    let mut out = Multiaddr::empty();
    for part in address.iter() {
        match &part {
            Protocol::Ip4(ip) if ip.is_unspecified() => return None,
            Protocol::Ip6(ip) if ip.is_unspecified() => return None,
            Protocol::P2p(id) if *id == peer => break,
            Protocol::P2p(_) if circuit || relay_named => return None,
            Protocol::P2p(_) => relay_named = true,
            Protocol::P2pCircuit if !relay_named => return None,
            Protocol::P2pCircuit => circuit = true,
            _ => {}
        }
        out.push(part);
    }
    if relay_named && !circuit {
        return None;
    }
    out.iter().next()?;
    Some(out.with(Protocol::P2p(peer)))
}

impl AddressBook {
    /// Remembers that `peer` was reached at (or announced) `address`, to be
    /// written in once the peer is proven a member.
    pub(crate) fn hear(&mut self, peer: PeerId, address: &Multiaddr) {
        let Some(address) = dialable(peer, address) else {
            return;
        };
        if !self.heard.contains_key(&peer) && self.heard.len() >= MAX_BOOK_PEERS {
            return;
        }
        let heard = self.heard.entry(peer).or_default();
        heard.retain(|a| *a != address);
        heard.push(address);
        if heard.len() > MAX_HEARD {
            heard.remove(0);
        }
    }

    /// `peer` proved membership: what was heard from it goes into the book.
    /// Returns whether the book changed.
    pub(crate) fn admit(&mut self, peer: PeerId) -> bool {
        let Some(heard) = self.heard.remove(&peer) else {
            return false;
        };
        if !self.known.contains_key(&peer) && self.known.len() >= MAX_BOOK_PEERS {
            return false;
        }
        let known = self.known.entry(peer).or_default();
        let before = known.clone();
        for address in heard {
            known.retain(|a| *a != address);
            known.push(address);
        }
        while known.len() > MAX_ADDRESSES {
            known.remove(0);
        }
        *known != before
    }

    /// Peers with something heard, waiting for their proof.
    pub(crate) fn waiting(&self) -> Vec<PeerId> {
        self.heard.keys().copied().collect()
    }

    /// Forgets `peer` entirely; returns whether the book changed.
    pub(crate) fn forget(&mut self, peer: &PeerId) -> bool {
        self.heard.remove(peer);
        self.known.remove(peer).is_some()
    }

    /// Drops what was heard from `peer` (it disconnected unproven).
    pub(crate) fn unheard(&mut self, peer: &PeerId) {
        self.heard.remove(peer);
    }

    /// Every member in the book with its addresses, most recent last.
    pub(crate) fn members(&self) -> impl Iterator<Item = (&PeerId, &Vec<Multiaddr>)> {
        self.known.iter()
    }

    /// The book in its file form.
    pub(crate) fn render(&self) -> String {
        let mut text = String::from(
            "# Addresses Shoal last reached each group member at (written by the node).\n",
        );
        for (peer, addresses) in &self.known {
            for address in addresses {
                text.push_str(&format!("{peer} {address}\n"));
            }
        }
        text
    }

    /// A book from its file form; lines that do not parse are skipped and
    /// returned (to be logged): the file is the node's own cache, and a
    /// bad line must not stop the node.
    pub(crate) fn parse(text: &str) -> (AddressBook, Vec<String>) {
        let mut book = AddressBook::default();
        let mut bad = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line.split_once(' ').and_then(|(peer, address)| {
                Some((
                    peer.parse::<PeerId>().ok()?,
                    address.parse::<Multiaddr>().ok()?,
                ))
            });
            match parsed {
                Some((peer, address)) => {
                    book.hear(peer, &address);
                    book.admit(peer);
                }
                None => bad.push(line.to_string()),
            }
        }
        (book, bad)
    }
}

/// Reads the book at `path` (empty if the file does not exist).
pub(crate) fn load(path: &Path) -> Result<(AddressBook, Vec<String>), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(AddressBook::parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `text` to `path` whole (through a temporary file and a rename, so
/// a crash leaves the old book or the new one).
pub(crate) fn save(path: &Path, text: &str) -> Result<(), String> {
    let temporary = path.with_extension("txt.tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_proven_members_are_written_in() {
        let (member, stranger, relay) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut book = AddressBook::default();
        book.hear(member, &addr("/ip4/198.18.0.2/tcp/4040"));
        let circuit = format!("/ip4/198.18.0.1/tcp/4001/p2p/{relay}/p2p-circuit");
        book.hear(member, &addr(&circuit));
        book.hear(stranger, &addr("/ip4/198.18.0.9/tcp/4040"));
        assert!(book.members().next().is_none(), "nothing before a proof");
        assert!(book.admit(member));
        assert!(!book.admit(member), "nothing new");
        book.unheard(&stranger);
        assert!(!book.admit(stranger));
        let members: Vec<_> = book.members().collect();
        assert_eq!(members.len(), 1);
        assert_eq!(
            members[0].1,
            &vec![
                addr(&format!("/ip4/198.18.0.2/tcp/4040/p2p/{member}")),
                addr(&format!("{circuit}/p2p/{member}")),
            ]
        );
        // Through the file and back.
        let (again, bad) = AddressBook::parse(&book.render());
        assert!(bad.is_empty());
        assert_eq!(again, book);
        assert!(book.forget(&member));
        assert!(book.members().next().is_none());
    }

    #[test]
    fn undialable_addresses_are_not_kept_and_the_newest_win() {
        let (peer, other) = (PeerId::random(), PeerId::random());
        assert_eq!(dialable(peer, &addr("/ip4/0.0.0.0/tcp/4040")), None);
        assert_eq!(dialable(peer, &addr("/p2p-circuit")), None);
        assert_eq!(
            dialable(peer, &addr(&format!("/ip4/1.2.3.4/tcp/1/p2p/{other}"))),
            None
        );
        let named = addr(&format!("/ip4/1.2.3.4/tcp/1/p2p/{peer}"));
        assert_eq!(dialable(peer, &named), Some(named.clone()));
        let mut book = AddressBook::default();
        for port in 0..(MAX_ADDRESSES as u16 + 3) {
            book.hear(peer, &addr(&format!("/ip4/10.0.0.1/tcp/{port}")));
        }
        book.admit(peer);
        let kept = book.members().next().unwrap().1.clone();
        assert_eq!(kept.len(), MAX_ADDRESSES);
        assert!(
            kept.last()
                .unwrap()
                .to_string()
                .contains(&format!("/tcp/{}/", MAX_ADDRESSES + 2))
        );
    }

    #[test]
    fn bad_lines_are_skipped_and_named() {
        let peer = PeerId::random();
        let text = format!("# c\n{peer} /ip4/1.2.3.4/tcp/1\nnonsense\n{peer} garbage\n");
        let (book, bad) = AddressBook::parse(&text);
        assert_eq!(bad, vec!["nonsense".to_string(), format!("{peer} garbage")]);
        assert_eq!(book.members().count(), 1);
    }
}
