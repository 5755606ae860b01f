//! Checkpoints the write-ahead log on a thread of its own, so that a write
//! does not pay for copying the log into the database file.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold: that write copies every page the log holds into the database
//! file and syncs both files, which was 9 % of a single put's time (and
//! every few thousand puts, one put many times slower than the others).
//! Here the store's connection gets a commit hook instead: past
//! [`Thresholds::background`] frames it wakes a thread, started the first
//! time it is needed, that runs the same passive checkpoint on its own
//! connection. The thread waits for a pause in the commits
//! ([`Thresholds::quiet`]) unless the log is past [`Thresholds::urgent`]:
//! a checkpoint's syncs slow the log appends of writes running beside it
//! (on ext4 here, a 0.3 ms write stalled for 1–16 ms while a sync ran), so
//! it runs between bursts of writes rather than in them, and a long burst
//! checkpoints less often, in bigger steps. Should the log still reach
//! [`Thresholds::inline`] frames (the thread cannot keep up, or could not
//! open the file), the committing write waits for a checkpoint the thread
//! is running, then checkpoints itself, as SQLite would have, so the log
//! stays bounded either way (by the limit plus one transaction, unless
//! another process checkpoints the same file at that moment).
//!
//! It owns the hook, the thread and the thread's connection. It must not run
//! anything but a passive checkpoint (which never waits for, nor blocks,
//! readers or writers), and the hook must never report an error: it runs
//! after the commit, and an error from it would make a committed write look
//! failed. It does not change durability: a commit is as durable before a
//! checkpoint copies it as after.

use crate::Durability;
use crate::commit_count::CommitCount;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When the log's length, in frames (one changed page each), calls for a
/// checkpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    /// Wake the checkpoint thread each time the log has grown by this many
    /// frames since it was last woken (SQLite's own default threshold is
    /// 1,000; a longer step means fewer checkpoints of pages written many
    /// times over, and fewer syncs).
    pub(crate) background: c_int,
    /// The thread checkpoints at once, writes or not, past this many frames.
    pub(crate) urgent: c_int,
    /// Below [`Self::urgent`], the thread waits until no commit has come
    /// for this long.
    pub(crate) quiet: Duration,
    /// Checkpoint in the committing write itself: the thread is behind.
    pub(crate) inline: c_int,
}

impl Default for Thresholds {
    /// The thread is asked every 2,000 frames (8 MiB of 4 KiB pages) and
    /// runs after 2 ms without a commit, or at once past 4,000 frames; the
    /// log reaches 64 MiB at most. (At once past 8,000 frames instead,
    /// single puts in a steady stream ran 16 % slower.)
    fn default() -> Self {
        Self {
            background: 2_000,
            urgent: 4_000,
            quiet: Duration::from_millis(2),
            inline: 16_000,
        }
    }
}

/// Checkpoints counted by where they ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Runs {
    /// On the checkpoint thread.
    pub(crate) background: u64,
    /// In a committing write.
    pub(crate) inline: u64,
}

/// The background checkpointer of one store connection; dropping it stops
/// and joins the thread (closing its connection).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    durability: Durability,
    thresholds: Thresholds,
    /// The log's length after the last commit.
    frames: AtomicI32,
    /// When the last commit ended, in microseconds since `epoch`.
    last_commit_us: AtomicU64,
    /// What `last_commit_us` counts from: the hook's installation.
    epoch: Instant,
    state: Mutex<State>,
    wake: Condvar,
    /// Signalled when the thread ends a checkpoint.
    idle: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// A checkpoint was asked for and has not started yet.
    requested: bool,
    /// The thread is running a checkpoint now.
    checkpointing: bool,
    /// The log's length when the thread was last woken (0 after the log
    /// restarted from its beginning).
    woken_at: c_int,
    /// The store is closing: the thread ends and none is started.
    stopping: bool,
    /// The thread, once started.
    thread: Option<JoinHandle<()>>,
    /// The thread could not open the database: checkpoints run inline.
    unavailable: bool,
    runs: Runs,
}

impl Checkpointer {
    /// Replaces `conn`'s automatic checkpoint by this checkpointer's hook,
    /// which also counts each commit in `commits`. `path` and `durability`
    /// are those `conn` was opened with.
    pub(crate) fn install(
        conn: &mut Connection,
        path: &Path,
        durability: Durability,
        thresholds: Thresholds,
        commits: CommitCount,
    ) -> rusqlite::Result<Self> {
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            durability,
            thresholds,
            frames: AtomicI32::new(0),
            last_commit_us: AtomicU64::new(0),
            epoch: Instant::now(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            idle: Condvar::new(),
        });
        let hook = Arc::clone(&shared);
        conn.wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            commits.bump();
            hook.committed(wal, frames);
            Ok(())
        }))?;
        Ok(Self { shared })
    }

    /// Whether the next commit may checkpoint in the write itself: the log
    /// is past the inline threshold, or there is no thread to ask (closing,
    /// or it could not start).
    pub(crate) fn checkpoints_in_next_write(&self) -> bool {
        let frames = self.shared.frames.load(Ordering::Relaxed);
        if frames.saturating_add(1) >= self.shared.thresholds.inline {
            return true;
        }
        let state = self.shared.lock();
        state.stopping || state.unavailable
    }

    /// How many checkpoints ran so far, and where.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> Runs {
        self.shared.lock().runs
    }

    /// Stops the thread, waiting for a checkpoint under way to end.
    pub(crate) fn stop(&self) {
        let thread = {
            let mut state = self.shared.lock();
            state.stopping = true;
            state.thread.take()
        };
        self.shared.wake.notify_all();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::warn!(
                "the checkpoint thread of {} panicked",
                self.shared.path.display()
            );
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: flags only.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The commit hook: `frames` is the log's length after a commit.
    fn committed(self: &Arc<Self>, wal: &mut Wal, frames: c_int) {
        self.frames.store(frames, Ordering::Relaxed);
        self.last_commit_us
            .store(self.micros_since_epoch(), Ordering::Relaxed);
        let past_limit = frames >= self.thresholds.inline;
        if past_limit || !self.wake_thread(frames) {
            // The thread's checkpoint under way would make this one busy,
            // and the log would grow by every commit until the thread is
            // done — past the inline limit by far when syncs are slow (a
            // disk busy writing back: 19,100 frames seen against a limit of
            // 16,000). Past the limit the write waits for it, as SQLite's
            // own automatic checkpoint makes a write wait for its copy.
            if past_limit {
                self.wait_idle();
            }
            // Busy (another process is checkpointing) or failed: the next
            // commit tries again; the write itself has succeeded either way.
            match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                Ok(_) => self.lock().runs.inline += 1,
                Err(e) => tracing::debug!("checkpoint in a write did not run: {e}"),
            }
        }
    }

    fn micros_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// How long until the commits have paused for [`Thresholds::quiet`]
    /// (zero: they have, or the log is past [`Thresholds::urgent`]).
    fn until_quiet(&self) -> Duration {
        if self.frames.load(Ordering::Relaxed) >= self.thresholds.urgent {
            return Duration::ZERO;
        }
        let since = Duration::from_micros(
            self.micros_since_epoch()
                .saturating_sub(self.last_commit_us.load(Ordering::Relaxed)),
        );
        self.thresholds.quiet.saturating_sub(since)
    }

    /// Waits while the thread runs a checkpoint.
    fn wait_idle(&self) {
        let mut state = self.lock();
        while state.checkpointing {
            state = self.idle.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Asks the thread for a checkpoint if the log has grown by a step
    /// since it was last asked, starting it the first time; false if a
    /// checkpoint is due but there is no thread to ask (closing, or it could
    /// not start).
    fn wake_thread(self: &Arc<Self>, frames: c_int) -> bool {
        let mut state = self.lock();
        if frames < state.woken_at {
            // A write restarted the log after a complete checkpoint.
            state.woken_at = 0;
        }
        if frames < state.woken_at + self.thresholds.background {
            return true;
        }
        if state.stopping || state.unavailable {
            return false;
        }
        state.woken_at = frames;
        if state.thread.is_none() {
            let shared = Arc::clone(self);
            match std::thread::Builder::new()
                .name("shoal-checkpoint".into())
                .spawn(move || shared.run())
            {
                Ok(thread) => state.thread = Some(thread),
                Err(e) => {
                    tracing::warn!("cannot start the checkpoint thread: {e}");
                    state.unavailable = true;
                    return false;
                }
            }
        }
        state.requested = true;
        drop(state);
        self.wake.notify_one();
        true
    }

    /// The thread: one passive checkpoint per request until stopped.
    fn run(&self) {
        let conn = match self.open() {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(
                    "the checkpoint thread cannot open {} (writes checkpoint themselves): {e}",
                    self.path.display()
                );
                self.lock().unavailable = true;
                return;
            }
        };
        loop {
            let mut state = self.lock();
            while !state.requested && !state.stopping {
                state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            // A pause in the commits, or a log past the urgent length.
            loop {
                let wait = self.until_quiet();
                if state.stopping {
                    return;
                }
                if wait.is_zero() {
                    break;
                }
                state = self
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.requested = false;
            state.checkpointing = true;
            drop(state);
            let done = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
            let mut state = self.lock();
            state.checkpointing = false;
            match done {
                Ok(_) => state.runs.background += 1,
                Err(e) => tracing::debug!("background checkpoint did not run: {e}"),
            }
            drop(state);
            self.idle.notify_all();
        }
    }

    /// The thread's own connection, syncing as the store's does.
    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", self.durability.synchronous())?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with a table of 1 KiB rows and a checkpointer
    /// installed on its connection.
    struct Lab {
        checkpointer: Checkpointer,
        conn: Connection,
        path: PathBuf,
        _dir: tempfile::TempDir,
    }

    /// A lab whose thread checkpoints as soon as it is asked.
    fn lab(background: c_int, inline: c_int) -> Lab {
        lab_with(Thresholds {
            background,
            urgent: 0,
            quiet: Duration::ZERO,
            inline,
        })
    }

    fn lab_with(thresholds: Thresholds) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // As the store syncs: a commit writes its frames, no sync of its own.
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let checkpointer = Checkpointer::install(
            &mut conn,
            &path,
            Durability::Normal,
            thresholds,
            CommitCount::default(),
        )
        .unwrap();
        Lab {
            checkpointer,
            conn,
            path,
            _dir: dir,
        }
    }

    fn insert(conn: &Connection, rows: usize) {
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..rows {
            conn.execute("INSERT INTO t VALUES (zeroblob(1024))", [])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }

    fn wal_len(path: &Path) -> u64 {
        std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Waits (up to 10 s) until the thread has checkpointed at least once.
    fn until_checkpointed(checkpointer: &Checkpointer) -> Runs {
        let deadline = Instant::now() + Duration::from_secs(10);
        while checkpointer.runs().background == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        checkpointer.runs()
    }

    #[test]
    fn the_log_is_checkpointed_by_the_thread_and_stays_bounded() {
        let Lab {
            checkpointer,
            conn,
            path,
            ..
        } = &lab(50, 400);
        // 3,000 one-row commits: about 3,000 frames without checkpoints.
        for _ in 0..3_000 {
            insert(conn, 1);
        }
        let runs = until_checkpointed(checkpointer);
        assert!(runs.background > 0, "the thread never checkpointed");
        // Checkpointed logs are reused from the start: the file stays near
        // the inline limit, far below the 3,000 frames (12 MiB) written.
        let len = wal_len(path);
        assert!(len < 500 * 4_120, "the log grew to {len} bytes");
        checkpointer.stop();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3_000);
    }

    #[test]
    fn an_asked_for_checkpoint_waits_for_a_pause_in_the_commits() {
        let Lab {
            checkpointer, conn, ..
        } = &lab_with(Thresholds {
            background: 10,
            urgent: 100_000,
            quiet: Duration::from_secs(2),
            inline: 100_000,
        });
        // A commit every 10 ms for a second: ~100 frames, the thread asked
        // every 10, and never 2 s without a commit.
        for _ in 0..100 {
            insert(conn, 1);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(checkpointer.shared.lock().requested, "never asked");
        assert_eq!(checkpointer.runs().background, 0, "ran amid the commits");
        // Then the pause: it runs.
        let runs = until_checkpointed(checkpointer);
        assert_eq!(runs.background, 1);
        assert_eq!(runs.inline, 0);
    }

    #[test]
    fn past_the_urgent_length_the_thread_checkpoints_amid_the_commits() {
        let Lab {
            checkpointer, conn, ..
        } = &lab_with(Thresholds {
            background: 10,
            urgent: 100,
            quiet: Duration::from_secs(600),
            inline: 100_000,
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut commits = 0;
        while checkpointer.runs().background == 0 && Instant::now() < deadline {
            insert(conn, 1);
            commits += 1;
        }
        assert!(checkpointer.runs().background >= 1, "{commits} commits");
        assert_eq!(checkpointer.runs().inline, 0);
    }

    #[test]
    fn the_thread_is_woken_once_per_step_of_log_not_per_commit() {
        let Lab {
            checkpointer, conn, ..
        } = &lab(100, 100_000);
        // ~1,300 frames in 1,000 commits: at most one wake-up per 100
        // frames written, counted again from 0 when the log restarts. Each
        // checkpoint syncs both files; one per commit was thousands of
        // syncs a second.
        for _ in 0..1_000 {
            insert(conn, 1);
        }
        until_checkpointed(checkpointer);
        checkpointer.stop();
        let runs = checkpointer.runs();
        assert!(
            (1..=30).contains(&runs.background),
            "{} checkpoints for ~1,000 frames",
            runs.background
        );
        assert_eq!(runs.inline, 0, "a write checkpointed by itself");
    }

    #[test]
    fn a_write_past_the_inline_limit_waits_for_the_threads_checkpoint() {
        let Lab {
            checkpointer,
            conn,
            path,
            _dir,
        } = lab(10, 20);
        // The thread is in the middle of a checkpoint (its own would make
        // the write's busy, and the log grow with every commit until the
        // thread is done: 19,100 frames against a limit of 16,000 seen
        // while the disk was writing back).
        checkpointer.shared.lock().checkpointing = true;
        let writer = std::thread::spawn(move || {
            insert(&conn, 100);
            conn
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!writer.is_finished(), "the write did not wait");
        assert_eq!(checkpointer.runs().inline, 0);
        checkpointer.shared.lock().checkpointing = false;
        checkpointer.shared.idle.notify_all();
        let conn = writer.join().unwrap();
        assert_eq!(
            checkpointer.runs().inline,
            1,
            "the write did not checkpoint"
        );
        // Checkpointed whole: the next write starts the log again.
        insert(&conn, 1);
        assert!(wal_len(&path) >= 100 * 1_024, "a log was written");
        let frames = checkpointer.shared.frames.load(Ordering::Relaxed);
        assert!(frames < 10, "the log was not restarted: {frames} frames");
    }

    #[test]
    fn a_log_past_the_inline_limit_is_checkpointed_by_the_committing_write() {
        let Lab {
            checkpointer, conn, ..
        } = &lab(10, 20);
        // One commit of ~100 pages is past the inline limit at once: the
        // write checkpoints before it returns.
        insert(conn, 100);
        assert_eq!(checkpointer.runs().inline, 1);
        let (log, done): (i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(log, done, "frames were left in the log");
    }

    #[test]
    fn the_next_write_checkpoints_past_the_inline_limit_or_without_a_thread() {
        let Lab {
            checkpointer, conn, ..
        } = &lab(100_000, 20);
        insert(conn, 1);
        assert!(!checkpointer.checkpoints_in_next_write());
        insert(conn, 100);
        assert!(checkpointer.checkpoints_in_next_write(), "past the limit");
        let Lab {
            checkpointer, conn, ..
        } = &lab(100_000, 100_000);
        insert(conn, 1);
        assert!(!checkpointer.checkpoints_in_next_write());
        checkpointer.stop();
        assert!(checkpointer.checkpoints_in_next_write(), "no thread");
    }

    #[test]
    fn a_stopped_checkpointer_leaves_checkpoints_to_the_writes() {
        let Lab {
            checkpointer, conn, ..
        } = &lab(10, 100_000);
        checkpointer.stop();
        insert(conn, 30);
        let runs = checkpointer.runs();
        assert_eq!(runs.background, 0);
        assert_eq!(runs.inline, 1, "the write did not checkpoint");
    }
}
