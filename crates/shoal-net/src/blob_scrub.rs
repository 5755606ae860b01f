//! The slow background scrub of held blobs: every `scrub_interval` the node
//! walks the blobs it holds, in hash order, and has the replica re-hash each
//! one, reading at most `scrub_bytes_per_sec`. A bad blob is set aside by the
//! replica (no longer held), so the fetcher finds it missing at its next scan
//! and fetches it again; the integrity report shows its records as
//! `assets-missing` meanwhile.
//!
//! This file only paces and walks; hashing, moving aside and the index are
//! the replica's. It never touches a file or a socket itself.

use crate::config::BlobConfig;
use crate::replica::Replica;
use shoal_core::blob::BlobHash;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Held blobs listed per step of a pass.
const PAGE: usize = 64;

/// Runs scrub passes forever (until the node stops); does nothing when the
/// scrub is off.
pub(crate) async fn run(replica: Arc<dyn Replica>, config: BlobConfig) {
    let Some(interval) = config.scrub_interval else {
        return;
    };
    let rate = config.scrub_bytes_per_sec.max(1);
    loop {
        tokio::time::sleep(interval).await;
        let mut after: Option<BlobHash> = None;
        loop {
            let lister = replica.clone();
            let from = after;
            let page =
                match tokio::task::spawn_blocking(move || lister.held_blobs(from.as_ref(), PAGE))
                    .await
                {
                    Ok(Ok(page)) => page,
                    Ok(Err(e)) => {
                        tracing::warn!("blob scrub cannot list held blobs: {e}");
                        break;
                    }
                    Err(_) => return,
                };
            let Some(last) = page.last() else { break };
            after = Some(*last);
            for hash in page {
                let checker = replica.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    let mut pace = Pace::new(rate);
                    checker.verify_blob(&hash, &mut |n| pace.read(n))
                })
                .await;
                match checked {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => {
                        tracing::warn!(%hash, "blob scrub set a bad blob aside; it is fetched again")
                    }
                    Ok(Err(e)) => tracing::warn!(%hash, "blob scrub cannot check a blob: {e}"),
                    Err(_) => return,
                }
            }
        }
    }
}

/// Keeps reads at or under `rate` bytes per second by sleeping the blocking
/// thread that reads.
struct Pace {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Pace {
    fn new(rate: u64) -> Self {
        Self {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// Called after each read of `n` bytes.
    fn read(&mut self, n: u64) {
        self.bytes += n;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_holds_reads_to_the_rate() {
        let mut pace = Pace::new(4 << 20);
        let start = Instant::now();
        for _ in 0..4 {
            pace.read(256 << 10);
        }
        // 1 MiB at 4 MiB/s: about a quarter of a second.
        assert!(start.elapsed() >= Duration::from_millis(240));
    }
}
