//! What the node counts for monitoring, beyond the peer table: rejections by
//! reason, how long catch-ups and reconciliations take, blobs served — kept
//! as plain atomic counters and fixed-bucket duration histograms, read as a
//! [`NetMetrics`] snapshot.
//!
//! This module owns the counters and the histogram type; the events are
//! counted where they happen (the session tasks, the federation calls, the
//! blob server). It must not know any exposition format: a server turns the
//! snapshot into Prometheus families (shoal-server), so this crate does not
//! depend on a metrics library.

use shoal_core::sync::Rejection;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the duration histograms' buckets: 1 ms to
/// 5 minutes, for catch-ups and reconciliations alike.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

/// A histogram of durations with the [`DURATION_BUCKETS`] bounds, updated
/// without a lock.
#[derive(Debug, Default)]
pub struct DurationHistogram {
    /// Observations at or under each bound (not cumulative: one bucket each).
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    /// Every observation.
    count: AtomicU64,
    /// Their sum, in microseconds.
    sum_micros: AtomicU64,
}

impl DurationHistogram {
    /// Counts one duration.
    pub fn observe(&self, duration: Duration) {
        let secs = duration.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS.iter().position(|bound| secs <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// What it has counted so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = DURATION_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        // Read after the buckets: an observation in between shows in the
        // count (and +Inf) but not in a bucket, never the other way round.
        let count = self.count.load(Ordering::Relaxed).max(cumulative);
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Each bucket's upper bound (seconds) and how many observations were
    /// at or under it (cumulative, as Prometheus wants them).
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

/// How many sessions ended in one rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectionCount {
    /// Why.
    pub reason: Rejection,
    /// Whether the peer refused us (true) or we refused it (false).
    pub by_peer: bool,
    /// How many times since the node started.
    pub count: u64,
}

/// The node's counters since it started (the per-peer ones are in
/// [`crate::PeerStatus`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetMetrics {
    /// Sessions rejected, by reason and side.
    pub rejections: Vec<RejectionCount>,
    /// How long catch-ups took: from asking a peer for its changes to
    /// holding all of them.
    pub catchup: HistogramSnapshot,
    /// How long reconciliations with a peer took (integrity reports,
    /// anti-entropy and levelling walks).
    pub reconciliation: HistogramSnapshot,
    /// Blob transfers served: a peer asked for a blob this node holds and
    /// may send it (its outline was sent; the pieces follow as asked).
    pub blobs_served: u64,
    /// Blob bytes sent to peers.
    pub blob_bytes_sent: u64,
    /// Hole punches (DCUtR upgrades) that ended, with any peer.
    pub punch_attempts: u64,
    /// Those that opened a direct connection.
    pub punch_successes: u64,
}

/// The counters, shared by the node's tasks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Keyed by reason and by_peer.
    rejections: Mutex<BTreeMap<(Rejection, bool), u64>>,
    catchup: DurationHistogram,
    reconciliation: DurationHistogram,
    blobs_served: AtomicU64,
    blob_bytes_sent: AtomicU64,
    punch_attempts: AtomicU64,
    punch_successes: AtomicU64,
}

impl Counters {
    /// Counts a session ended by `reason`.
    pub(crate) fn rejected(&self, reason: Rejection, by_peer: bool) {
        let mut map = self.0.rejections.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((reason, by_peer)).or_insert(0) += 1;
    }

    /// Counts a catch-up that took `duration`.
    pub(crate) fn caught_up(&self, duration: Duration) {
        self.0.catchup.observe(duration);
    }

    /// Counts a reconciliation that took `duration`.
    pub(crate) fn reconciled(&self, duration: Duration) {
        self.0.reconciliation.observe(duration);
    }

    /// Counts a blob transfer served (its outline sent to a peer).
    pub(crate) fn blob_served(&self) {
        self.0.blobs_served.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `bytes` of blob pieces sent.
    pub(crate) fn blob_bytes_sent(&self, bytes: u64) {
        self.0.blob_bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a hole punch that ended, and whether it succeeded.
    pub(crate) fn punched(&self, success: bool) {
        self.0.punch_attempts.fetch_add(1, Ordering::Relaxed);
        if success {
            self.0.punch_successes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Everything, as of now.
    pub(crate) fn snapshot(&self) -> NetMetrics {
        let rejections = self
            .0
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((reason, by_peer), count)| RejectionCount {
                reason: *reason,
                by_peer: *by_peer,
                count: *count,
            })
            .collect();
        NetMetrics {
            rejections,
            catchup: self.0.catchup.snapshot(),
            reconciliation: self.0.reconciliation.snapshot(),
            blobs_served: self.0.blobs_served.load(Ordering::Relaxed),
            blob_bytes_sent: self.0.blob_bytes_sent.load(Ordering::Relaxed),
            punch_attempts: self.0.punch_attempts.load(Ordering::Relaxed),
            punch_successes: self.0.punch_successes.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_counts_what_exceeds_every_bound() {
        let h = DurationHistogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(1000));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.001, 1));
        let at = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.01), 1);
        assert_eq!(at(0.025), 2);
        assert_eq!(at(300.0), 2, "1000 s is only in +Inf");
        assert!(
            (s.sum_seconds - 1000.0205).abs() < 1e-6,
            "{}",
            s.sum_seconds
        );
    }

    #[test]
    fn rejections_are_counted_by_reason_and_side() {
        let c = Counters::default();
        c.rejected(Rejection::WrongSecret, false);
        c.rejected(Rejection::WrongSecret, false);
        c.rejected(Rejection::WrongSecret, true);
        c.rejected(Rejection::BadMac, false);
        let seen = c.snapshot().rejections;
        assert_eq!(seen.len(), 3);
        let wrong_by_us = seen
            .iter()
            .find(|r| r.reason == Rejection::WrongSecret && !r.by_peer)
            .unwrap();
        assert_eq!(wrong_by_us.count, 2);
    }
}
