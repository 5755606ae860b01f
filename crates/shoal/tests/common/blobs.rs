//! Helpers for the blob tests: deterministic content, nodes whose blob
//! scheduler runs fast, and stores opened by name in a test's directory.

use super::{Peer, group_key, start_with};
use shoal::Store;
use std::path::Path;
use std::time::Duration;

/// Deterministic pseudo-random bytes (xorshift), `len` of them (seeds `2k`
/// and `2k + 1` give the same bytes).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Fast blob scheduling for tests.
pub fn quick(c: &mut shoal::NodeConfig) {
    c.blobs.scan_interval = Duration::from_millis(100);
    c.blobs.retry_after = Duration::from_millis(200);
}

/// A node on `store` in the test group, with fast blob scheduling.
pub async fn node(store: Store, peers: Vec<shoal::Multiaddr>) -> Peer {
    start_with(store, group_key(), peers, quick).await
}

/// The store `name`.db in `dir`.
pub fn open(dir: &Path, name: &str) -> Store {
    Store::open(dir.join(format!("{name}.db"))).expect("open store")
}
