//! The directory watcher where inotify is not available: the `notify`
//! crate's watcher for the platform, each event passed on as it comes.
//!
//! It owns translating `notify`'s events; which store to wake is
//! `wal_watcher.rs`'s.

use super::DirEvent;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;

/// Watches directories; events go to the callback given at creation.
#[derive(Debug)]
pub(super) struct DirWatcher {
    watcher: RecommendedWatcher,
}

impl DirWatcher {
    /// Starts the platform's watcher, which calls `on_event` for each event
    /// (from its own thread).
    pub(super) fn new(on_event: impl Fn(DirEvent) + Send + 'static) -> Result<Self, String> {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event {
                // The platform dropped events and asks for a rescan.
                Ok(event) if event.need_rescan() => on_event(DirEvent::Lost),
                Ok(event) => event
                    .paths
                    .into_iter()
                    .for_each(|path| on_event(DirEvent::File(path))),
                // Events may have been lost.
                Err(_) => on_event(DirEvent::Lost),
            }
        })
        .map_err(|e| e.to_string())?;
        Ok(Self { watcher })
    }

    /// Starts watching `dir`.
    pub(super) fn watch(&mut self, dir: &Path) -> Result<(), String> {
        self.watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())
    }

    /// Stops watching `dir`.
    pub(super) fn unwatch(&mut self, dir: &Path) {
        let _ = self.watcher.unwatch(dir);
    }
}
