//! One file watcher for the whole process, shared by every store's commit
//! watch (`commit_watch.rs`): an inotify instance is a scarce resource (128
//! per user by default, shared by all of that user's processes) while
//! watches are plentiful, so a process opening many stores takes one
//! instance and one watch per directory.
//!
//! It owns registering WAL files, watching their directories (counted, so
//! a directory is unwatched when its last registration goes) and routing
//! each event to the registrations of the file it names; what a wake-up
//! does is `commit_watch.rs`'s. Its callback never takes the registry's
//! outer lock, and `watch`/`unwatch` are never called holding the inner
//! one, so the watcher's thread and a registering thread cannot deadlock.

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Who to wake for each WAL file: (registration id, channel).
type Wakers = Arc<Mutex<HashMap<PathBuf, Vec<(u64, SyncSender<()>)>>>>;

/// The process's watcher and what it watches.
struct Shared {
    watcher: RecommendedWatcher,
    /// Directories watched, with how many registrations use each.
    dirs: HashMap<PathBuf, usize>,
    wakers: Wakers,
    next_id: u64,
}

/// The watcher, or why it could not be made (then every store polls).
static SHARED: OnceLock<Mutex<Result<Shared, String>>> = OnceLock::new();

/// A lock that a panic elsewhere does not poison for good (the maps stay
/// consistent: each update is one insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn shared() -> &'static Mutex<Result<Shared, String>> {
    SHARED.get_or_init(|| {
        let wakers = Wakers::default();
        let routes = wakers.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Full channel: a wake-up is already pending and covers this
            // one. Disconnected: that store is going away.
            let routes = lock(&routes);
            match event {
                Ok(event) => {
                    for wake in event.paths.iter().filter_map(|p| routes.get(p)).flatten() {
                        let _ = wake.1.try_send(());
                    }
                }
                // Events may have been lost: every store looks.
                Err(_) => {
                    for wake in routes.values().flatten() {
                        let _ = wake.1.try_send(());
                    }
                }
            }
        });
        Mutex::new(
            watcher
                .map(|watcher| Shared {
                    watcher,
                    dirs: HashMap::new(),
                    wakers,
                    next_id: 0,
                })
                .map_err(|e| e.to_string()),
        )
    })
}

/// The WAL file of the database at `db_path`.
pub(crate) fn wal_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// A WAL file registered with the process's watcher; unregistered on drop
/// (which drops its channel's sender, ending the thread waiting on it).
#[derive(Debug)]
pub(crate) struct Registration {
    wal: PathBuf,
    dir: PathBuf,
    id: u64,
}

/// Wakes `wake` on every event on the WAL file of the database at
/// `db_path` (its writes, and its closing by a process), or says why it
/// cannot.
pub(crate) fn register(db_path: &Path, wake: SyncSender<()>) -> Result<Registration, String> {
    let db_path = std::path::absolute(db_path).map_err(|e| e.to_string())?;
    let wal = wal_path(&db_path);
    let dir = db_path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut guard = lock(shared());
    let shared = guard.as_mut().map_err(|e| e.clone())?;
    if !shared.dirs.contains_key(&dir) {
        shared
            .watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())?;
    }
    *shared.dirs.entry(dir.clone()).or_default() += 1;
    let id = shared.next_id;
    shared.next_id += 1;
    lock(&shared.wakers)
        .entry(wal.clone())
        .or_default()
        .push((id, wake));
    Ok(Registration { wal, dir, id })
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut guard = lock(shared());
        let Ok(shared) = guard.as_mut() else { return };
        {
            let mut wakers = lock(&shared.wakers);
            if let Some(list) = wakers.get_mut(&self.wal) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    wakers.remove(&self.wal);
                }
            }
        }
        if let Some(count) = shared.dirs.get_mut(&self.dir) {
            *count -= 1;
            if *count == 0 {
                shared.dirs.remove(&self.dir);
                let _ = shared.watcher.unwatch(&self.dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wal_path;
    use std::path::Path;

    #[test]
    fn the_wal_is_the_file_name_plus_wal() {
        assert_eq!(
            wal_path(Path::new("/d/shoal.db")),
            Path::new("/d/shoal.db-wal")
        );
    }
}
