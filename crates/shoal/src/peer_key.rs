//! A peer's id as the store keys it: its base58 text. Encoding base58 is
//! quadratic in the id's length, and the seam asks for the text on every
//! log read and apply for a peer — twice per live change pushed, both on
//! the write's way to the peer — so each thread keeps the texts it made.
//!
//! It owns only that cache; what the text keys is the store's.

use shoal_net::PeerId;
use std::cell::RefCell;
use std::collections::HashMap;

/// Texts a thread keeps at most; past that the cache starts afresh (a
/// node talks to a handful of peers; this bounds a long-lived thread that
/// met many).
const KEPT: usize = 256;

thread_local! {
    static TEXTS: RefCell<HashMap<PeerId, String>> = RefCell::new(HashMap::new());
}

/// `peer`'s base58 text (what `peer.to_string()` gives). Made afresh on a
/// thread whose cache is already gone (called while it exits).
pub(crate) fn peer_key(peer: &PeerId) -> String {
    TEXTS
        .try_with(|texts| {
            let mut texts = texts.borrow_mut();
            if let Some(text) = texts.get(peer) {
                return text.clone();
            }
            if texts.len() >= KEPT {
                texts.clear();
            }
            let text = peer.to_string();
            texts.insert(*peer, text.clone());
            text
        })
        .unwrap_or_else(|_| peer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_ids_base58_and_stays_so_past_the_bound() {
        let peers: Vec<PeerId> = (0..KEPT + 10).map(|_| PeerId::random()).collect();
        for _ in 0..2 {
            for peer in &peers {
                assert_eq!(peer_key(peer), peer.to_string());
            }
        }
        TEXTS.with(|texts| assert!(texts.borrow().len() <= KEPT));
    }
}
