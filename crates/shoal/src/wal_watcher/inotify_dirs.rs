//! The directory watcher on Linux: one inotify instance and one thread that
//! reads its events in batches, pausing [`PAUSE`] after each batch.
//!
//! The pause is what makes the watch cheap for the process's own writes.
//! Every frame a store appends to its WAL is an event; a reader blocked in
//! `read` is woken by each of them (and wakes the commit watch), so a
//! store that commits a thousand times a second kept two more threads
//! busy. While the reader pauses, the kernel folds a file's repeated
//! modifications into the one event already queued and wakes no one: a
//! burst of commits costs one batch per pause, and another process's
//! commit is seen at most one pause later.
//!
//! It owns reading and naming events; which store to wake is
//! `wal_watcher.rs`'s.

use super::{DirEvent, lock};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The reader's pause after each batch of events.
pub(super) const PAUSE: Duration = crate::commit_watch::MIN_GAP;

/// What a commit of another process does to the files of a directory: its
/// frames written to the WAL, the WAL created or renamed into place, and a
/// process closing it after writing.
const MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::CREATE)
    .union(WatchMask::MOVED_TO);

/// The directories watched, by watch descriptor: the reader names an
/// event's file from it.
type Dirs = Arc<Mutex<HashMap<WatchDescriptor, PathBuf>>>;

/// Watches directories; events go to the callback given at creation.
pub(super) struct DirWatcher {
    watches: Watches,
    dirs: Dirs,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher").finish_non_exhaustive()
    }
}

impl DirWatcher {
    /// Starts the instance and its reader thread, which calls `on_event`
    /// for each event (from the thread) for the life of the process.
    pub(super) fn new(on_event: impl Fn(DirEvent) + Send + 'static) -> Result<Self, String> {
        let inotify = Inotify::init().map_err(|e| format!("inotify: {e}"))?;
        let watches = inotify.watches();
        let dirs = Dirs::default();
        let named = dirs.clone();
        std::thread::Builder::new()
            .name("shoal-wal-watch".into())
            .spawn(move || read(inotify, &named, on_event))
            .map_err(|e| format!("cannot start the WAL watch thread: {e}"))?;
        Ok(Self { watches, dirs })
    }

    /// Starts watching `dir`.
    pub(super) fn watch(&mut self, dir: &Path) -> Result<(), String> {
        let wd = self
            .watches
            .add(dir, MASK)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        lock(&self.dirs).insert(wd, dir.to_path_buf());
        Ok(())
    }

    /// Stops watching `dir` (nothing if it was not watched).
    pub(super) fn unwatch(&mut self, dir: &Path) {
        let wd = {
            let mut dirs = lock(&self.dirs);
            let wd = dirs
                .iter()
                .find(|(_, d)| d.as_path() == dir)
                .map(|(wd, _)| wd.clone());
            if let Some(wd) = &wd {
                dirs.remove(wd);
            }
            wd
        };
        if let Some(wd) = wd {
            // Fails only if the directory is gone, which ended the watch.
            let _ = self.watches.remove(wd);
        }
    }
}

/// The reader thread: a batch of events, then a pause, until reading fails.
fn read(mut inotify: Inotify, dirs: &Dirs, on_event: impl Fn(DirEvent)) {
    let mut buffer = [0u8; 4096];
    loop {
        let events = match inotify.read_events_blocking(&mut buffer) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(
                    "the WAL watch stopped reading ({e}); other processes' commits are \
                     seen at a node's 1 s check"
                );
                on_event(DirEvent::Lost);
                return;
            }
        };
        for event in events {
            if event.mask.contains(EventMask::Q_OVERFLOW) {
                on_event(DirEvent::Lost);
                continue;
            }
            let Some(name) = event.name else { continue };
            let dir = lock(dirs).get(&event.wd).cloned();
            if let Some(dir) = dir {
                on_event(DirEvent::File(dir.join(name)));
            }
        }
        std::thread::sleep(PAUSE);
    }
}
