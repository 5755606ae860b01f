//! The daemon's tombstone collection schedule: a pass every
//! [`GcSchedule::every`], off the async executor, logging what it reclaimed.
//!
//! The rules and the pass are the library's (`shoal::Store::collect_tombstones`,
//! which takes the store's lock a page at a time); this file only paces them.

use shoal::{GcPolicy, Store};
use std::time::Duration;
use tokio::task::JoinHandle;

/// When a running daemon collects tombstones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcSchedule {
    /// Time between passes (the first runs one period after start).
    pub every: Duration,
    /// What a pass collects.
    pub policy: GcPolicy,
}

/// Starts the schedule; abort the handle to stop it.
pub(crate) fn spawn(store: Store, schedule: GcSchedule) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + schedule.every;
        let mut ticks = tokio::time::interval_at(start, schedule.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let store = store.clone();
            let pass = tokio::task::spawn_blocking(move || {
                store.collect_tombstones(schedule.policy, |_| {})
            })
            .await;
            match pass {
                Ok(Ok(report)) if report.rows_reclaimed > 0 => tracing::info!(
                    rows = report.rows_reclaimed,
                    bytes = report.bytes_reclaimed,
                    kept = report.kept,
                    "collected tombstones"
                ),
                Ok(Ok(report)) => tracing::debug!(kept = report.kept, "no tombstone to collect"),
                Ok(Err(e)) => tracing::warn!("tombstone collection failed: {e}"),
                Err(e) => tracing::warn!("tombstone collection stopped: {e}"),
            }
        }
    })
}
