//! Noticing at once the commits other processes make on the database file
//! (e.g. `shoal put` next to a running daemon), so a node pushes them to its
//! peers within milliseconds rather than on its next 1 s check.
//!
//! A commit in WAL mode appends to `FILE-wal`: the process's watcher
//! (`wal_watcher.rs`: inotify on Linux), on the file's directory, wakes this
//! store's thread on any event on that file, and the thread looks at the
//! log as [`Store::refresh_head`](crate::Store::refresh_head) does — one
//! `PRAGMA data_version` when nothing changed, so the store's own commits,
//! which wake it too, cost next to nothing. A commit's frames reach the file before
//! SQLite's WAL index says they are committed, so a wake-up that finds
//! nothing new looks again a few times over the next ~0.13 s ([`SETTLE_MS`])
//! — unless the store itself committed since the last look ([`Look::Own`]:
//! its own commits wake the thread too, and looking again after each of
//! them kept seventeen stores of one process busy waking threads for
//! nothing). A commit of another process that lands in the same moment as
//! one of the store's own and is not yet in the WAL index at that look is
//! then seen at the next wake-up or the node's 1 s check.
//! Wake-ups are coalesced (a burst of events is one refresh, and refreshes
//! are at least [`MIN_GAP`] apart), and an idle store costs no CPU at all.
//! A look does not wait for the store: when another thread holds it, it is
//! made again [`BUSY_RETRY`] later ([`Look::Busy`]), and waits only after
//! [`MAX_BUSY_LOOKS`] such tries in a row.
//! Where no watcher can be set up (inotify limits, a file system without
//! events), the thread checks `data_version` every [`FALLBACK_POLL`] instead.
//! Correctness never rests on the watcher: the refresh reads the committed
//! log head, and the node's own 1 s check remains.
//!
//! It owns only the waking; what a refresh does is the store's (a callback
//! it is given), and pushing is the node's.

use crate::wal_watcher::{self, FALLBACK_POLL, Registration};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Shortest time between two refreshes while events keep coming (the
/// store's own write bursts): bounds the refresh rate at 500/s. The
/// watcher's pause between batches, so it delays no look.
pub(crate) const MIN_GAP: Duration = wal_watcher::BATCH_PAUSE;

/// The looks after a wake-up that found nothing new, in milliseconds from
/// the one before (about 0.13 s in all; the node's 1 s check remains).
const SETTLE_MS: [u64; 6] = [2, 4, 8, 16, 32, 64];

/// The pause before looking again when another thread held the store. A
/// wake-up by the store's own commit comes while that commit still holds
/// the store; a look that waited for it would take the store as the commit
/// let go — from the session about to push the commit, which would then
/// have to read on tokio's blocking pool (`shoal-bench latency`: half the
/// pushes' reads that still found the store held, once the head moved
/// after the lock).
const BUSY_RETRY: Duration = MIN_GAP;

/// Tries in a row that found the store held before a look waits for it
/// (about 0.1 s): a store held nearly all the time still has its file
/// looked at.
const MAX_BUSY_LOOKS: u32 = 50;

/// What one look at the log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// The head moved (another process committed, or the store's own
    /// commit, which this look caught before the commit moved the head
    /// itself).
    Moved,
    /// Nothing new, but the store committed since the last look: the
    /// wake-up was its own write.
    Own,
    /// Nothing new, and nothing of the store's own to explain the wake-up.
    Nothing,
    /// Another thread held the store: nothing was looked at
    /// ([`BUSY_RETRY`]).
    Busy,
}

/// A running watch; dropping it unregisters the file and, with it, ends
/// the thread.
#[derive(Debug)]
pub(crate) struct CommitWatch {
    /// `None` when no watcher could be set up (the thread polls).
    _registration: Option<Registration>,
}

impl CommitWatch {
    /// Starts watching the database at `db_path`; each look runs `refresh`
    /// (the store's [`Store::refresh_head`](crate::Store::refresh_head),
    /// waiting for the store only when given `true`, else [`Look::Busy`]
    /// if it is held: what it found, `None` once the store is gone, which
    /// ends the thread).
    pub(crate) fn start(
        db_path: &Path,
        refresh: impl FnMut(bool) -> Option<Look> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (wake, woken) = mpsc::sync_channel(1);
        // The sender lives only in the registration: dropping it closes the
        // channel and ends the thread.
        let registration = match wal_watcher::register(db_path, wake) {
            Ok(registration) => Some(registration),
            Err(e) => {
                tracing::warn!(
                    "cannot watch {} for other processes' commits ({e}); checking every {:?}",
                    db_path.display(),
                    FALLBACK_POLL
                );
                None
            }
        };
        let poll = registration.is_none().then_some(FALLBACK_POLL);
        std::thread::Builder::new()
            .name("shoal-commit-watch".into())
            .spawn(move || run(refresh, woken, poll))?;
        Ok(Self {
            _registration: registration,
        })
    }
}

/// The thread: refresh on every wake-up (or every `poll`), until the
/// channel closes or the store is gone.
fn run(
    mut refresh: impl FnMut(bool) -> Option<Look>,
    woken: mpsc::Receiver<()>,
    poll: Option<Duration>,
) {
    loop {
        match poll {
            Some(every) => {
                std::thread::sleep(every);
                if refresh(true).is_none() {
                    return;
                }
            }
            None => {
                if woken.recv().is_err() || settle(&mut refresh, &woken).is_none() {
                    return;
                }
            }
        }
    }
}

/// After a wake-up: refreshes, and, while the head has not moved and the
/// store wrote nothing itself, looks again after [`SETTLE_MS`] each,
/// starting over if the file is written again. A commit's frames reach the
/// WAL file (and wake this thread) before its WAL index is updated, so the
/// first look can come too early. `None` once the store is gone or the
/// watcher stopped.
fn settle(
    refresh: &mut impl FnMut(bool) -> Option<Look>,
    woken: &mpsc::Receiver<()>,
) -> Option<()> {
    let mut delays = SETTLE_MS.iter();
    let mut busy = 0;
    loop {
        match refresh(busy >= MAX_BUSY_LOOKS)? {
            Look::Moved | Look::Own => break,
            Look::Busy => {
                busy += 1;
                std::thread::sleep(BUSY_RETRY);
            }
            Look::Nothing => {
                busy = 0;
                let Some(ms) = delays.next() else { break };
                std::thread::sleep(MIN_GAP);
                match woken.recv_timeout(Duration::from_millis(*ms).saturating_sub(MIN_GAP)) {
                    Ok(()) => delays = SETTLE_MS.iter(),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
            }
        }
    }
    std::thread::sleep(MIN_GAP);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `settle` after one wake-up whose looks find `looks` in turn
    /// (then `Nothing`); how many looks it took.
    fn looks_after_a_wake_up(looks: &[Look]) -> usize {
        let (_wake, woken) = mpsc::sync_channel::<()>(1);
        let mut taken = 0;
        let mut refresh = |_may_wait: bool| {
            taken += 1;
            Some(looks.get(taken - 1).copied().unwrap_or(Look::Nothing))
        };
        assert_eq!(settle(&mut refresh, &woken), Some(()));
        taken
    }

    #[test]
    fn a_wake_up_by_the_stores_own_commit_is_one_look() {
        assert_eq!(looks_after_a_wake_up(&[Look::Own]), 1);
    }

    #[test]
    fn a_moved_head_ends_the_looks() {
        assert_eq!(looks_after_a_wake_up(&[Look::Moved]), 1);
        assert_eq!(looks_after_a_wake_up(&[Look::Nothing, Look::Moved]), 2);
    }

    #[test]
    fn a_store_held_at_every_try_is_waited_for_after_max_busy_looks() {
        let (_wake, woken) = mpsc::sync_channel::<()>(1);
        let (mut tries, mut waited) = (0, 0);
        let mut refresh = |may_wait: bool| {
            tries += 1;
            Some(match may_wait {
                true => {
                    waited += 1;
                    Look::Moved
                }
                false => Look::Busy,
            })
        };
        assert_eq!(settle(&mut refresh, &woken), Some(()));
        assert_eq!((tries, waited), (MAX_BUSY_LOOKS + 1, 1));
    }

    #[test]
    fn a_busy_store_is_looked_at_again_without_using_up_the_settling_looks() {
        assert_eq!(
            looks_after_a_wake_up(&[Look::Busy, Look::Busy, Look::Moved]),
            3
        );
        assert_eq!(
            looks_after_a_wake_up(&[Look::Busy, Look::Nothing, Look::Busy]),
            3 + SETTLE_MS.len()
        );
    }

    #[test]
    fn a_wake_up_with_nothing_new_looks_again_until_settled() {
        // The first look and one after each delay.
        assert_eq!(looks_after_a_wake_up(&[]), 1 + SETTLE_MS.len());
        // A commit of its own found later ends it too.
        assert_eq!(looks_after_a_wake_up(&[Look::Nothing, Look::Own]), 2);
    }
}
