//! The peer list the daemon keeps of the peers added over the API: the
//! trait the HTTP handlers call and the embedding program implements
//! (`shoal serve` keeps `DATA/peers.txt`). It owns the trait alone, so the
//! options and the router both name it without naming each other.

use shoal::{Multiaddr, PeerId};

/// Where the daemon remembers the peers added over the API (`POST
/// /api/peers`) and forgets them (`DELETE /api/peers/{peer}`): `DATA/peers.txt`
/// in `shoal serve`. Errors are messages for a `500 internal` answer.
pub trait PeerBook: Send + Sync {
    /// Remembers `address`; whether it was new.
    fn add(&self, address: &Multiaddr) -> Result<bool, String>;
    /// Forgets every address of `peer`; how many there were.
    fn remove(&self, peer: &PeerId) -> Result<usize, String>;
}
