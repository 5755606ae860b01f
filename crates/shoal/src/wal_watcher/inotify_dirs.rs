//! The directory watcher on Linux: one inotify instance and one thread that
//! reads its events in batches, pausing [`BATCH_PAUSE`] after each batch.
//!
//! The pause is what makes the watch cheap for the process's own writes.
//! Every frame a store appends to its WAL is an event; a reader blocked in
//! `read` is woken by each of them (and wakes the commit watch), so a
//! store that commits a thousand times a second kept two more threads
//! busy. While the reader pauses, the kernel folds a file's repeated
//! modifications into the last queued event when nothing else came in
//! between, and wakes no one: a burst of one store's commits costs about
//! one batch per pause, and another process's commit is seen a pause
//! later at most (a backlog is read whole before each pause).
//!
//! If reading ever fails for good, the thread wakes every store every
//! [`FALLBACK_POLL`] instead, for the life of the process.
//!
//! It owns reading and naming events; which store to wake is
//! `wal_watcher.rs`'s.

use super::{BATCH_PAUSE, DirEvent, FALLBACK_POLL, lock};
use inotify::{EventMask, Events, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a commit of another process does to the files of a directory: its
/// frames written to the WAL, the WAL created or renamed into place, and a
/// process closing it after writing.
const MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::CREATE)
    .union(WatchMask::MOVED_TO);

/// The directories watched, by watch descriptor: the reader names an
/// event's file from them. Several paths may lead to one directory (a
/// symbolic link, a bind mount): the kernel gives them one descriptor, and
/// an event is named under each.
type Dirs = Arc<Mutex<HashMap<WatchDescriptor, Vec<PathBuf>>>>;

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
    /// (from the thread) for each event, or for every store every
    /// [`FALLBACK_POLL`] once reading has failed.
    pub(super) fn new(on_event: impl Fn(DirEvent) + Send + 'static) -> Result<Self, String> {
        let inotify = Inotify::init().map_err(|e| format!("inotify: {e}"))?;
        let watches = inotify.watches();
        let dirs = Dirs::default();
        let named = dirs.clone();
        std::thread::Builder::new()
            .name("shoal-wal-watch".into())
            .spawn(move || run(inotify, &named, &on_event))
            .map_err(|e| format!("cannot start the WAL watch thread: {e}"))?;
        Ok(Self { watches, dirs })
    }

    /// Starts watching `dir`.
    pub(super) fn watch(&mut self, dir: &Path) -> Result<(), String> {
        let wd = self
            .watches
            .add(dir, MASK)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let mut dirs = lock(&self.dirs);
        let paths = dirs.entry(wd).or_default();
        if !paths.iter().any(|p| p == dir) {
            paths.push(dir.to_path_buf());
        }
        Ok(())
    }

    /// Stops watching `dir` (nothing if it was not watched); the kernel's
    /// watch goes with the last path leading to it.
    pub(super) fn unwatch(&mut self, dir: &Path) {
        let unused = {
            let mut dirs = lock(&self.dirs);
            let Some((wd, paths)) = dirs
                .iter_mut()
                .find(|(_, paths)| paths.iter().any(|p| p == dir))
            else {
                return;
            };
            paths.retain(|p| p != dir);
            let unused = paths.is_empty().then(|| wd.clone());
            if let Some(wd) = &unused {
                dirs.remove(wd);
            }
            unused
        };
        if let Some(wd) = unused {
            // Fails only if the directory is gone, which ended the watch.
            let _ = self.watches.remove(wd);
        }
    }
}

/// The reader thread: each batch of events read whole and passed on (each
/// file once), then a pause; once reading fails for good, a wake-up for
/// everyone every [`FALLBACK_POLL`].
fn run(mut inotify: Inotify, dirs: &Dirs, on_event: &impl Fn(DirEvent)) {
    let mut buffer = [0u8; 4096];
    let error = loop {
        let mut batch = Batch::default();
        // Blocks for the first events, then takes what else is queued.
        let mut blocking = true;
        let failed = loop {
            let read = match blocking {
                true => inotify.read_events_blocking(&mut buffer),
                false => inotify.read_events(&mut buffer),
            };
            match read {
                Ok(events) => batch.add(events, dirs),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock && !blocking => break None,
                Err(e) => break Some(e),
            }
            blocking = false;
        };
        batch.pass_on(on_event);
        if let Some(e) = failed {
            break e;
        }
        std::thread::sleep(BATCH_PAUSE);
    };
    tracing::warn!(
        "the WAL watch stopped reading ({error}); every store checks for other processes' \
         commits every {FALLBACK_POLL:?} instead"
    );
    loop {
        on_event(DirEvent::Lost);
        std::thread::sleep(FALLBACK_POLL);
    }
}

/// What one batch of events named: each file once, or that events were
/// lost (the queue overflowed), which wakes everyone.
#[derive(Debug, Default)]
struct Batch {
    files: Vec<PathBuf>,
    lost: bool,
}

impl Batch {
    /// Names the files of `events`; forgets the directories whose watch the
    /// kernel ended (they went away).
    fn add(&mut self, events: Events<'_>, dirs: &Dirs) {
        for event in events {
            if event.mask.contains(EventMask::Q_OVERFLOW) {
                self.lost = true;
                continue;
            }
            if event.mask.contains(EventMask::IGNORED) {
                lock(dirs).remove(&event.wd);
                continue;
            }
            let Some(name) = event.name else { continue };
            let paths = lock(dirs).get(&event.wd).cloned().unwrap_or_default();
            for file in paths.into_iter().map(|dir| dir.join(name)) {
                if !self.files.contains(&file) {
                    self.files.push(file);
                }
            }
        }
    }

    /// Calls `on_event` for what the batch named.
    fn pass_on(self, on_event: &impl Fn(DirEvent)) {
        if self.lost {
            on_event(DirEvent::Lost);
        }
        self.files
            .into_iter()
            .for_each(|file| on_event(DirEvent::File(file)));
    }
}
