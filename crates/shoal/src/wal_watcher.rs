//! One file watcher for the whole process, shared by every store's commit
//! watch (`commit_watch.rs`): an inotify instance is a scarce resource (128
//! per user by default, shared by all of that user's processes) while
//! watches are plentiful, so a process opening many stores takes one
//! instance and one watch per directory.
//!
//! It owns registering WAL files, watching their directories (counted, so
//! a directory is unwatched when its last registration goes) and routing
//! each event to the registrations of the file it names; reading events is
//! the platform's [`DirWatcher`] (inotify on Linux, paced so the process's
//! own writes cost next to nothing: `wal_watcher/inotify_dirs.rs`; the
//! `notify` crate elsewhere), and what a wake-up does is
//! `commit_watch.rs`'s. Its callback never takes the registry's outer
//! lock, and `watch`/`unwatch` are never called holding the inner one; the
//! Linux reader's own map of directories is let go before it calls back;
//! so the watcher's thread and a registering thread cannot deadlock.

#[cfg(target_os = "linux")]
mod inotify_dirs;
#[cfg(not(target_os = "linux"))]
mod notify_dirs;

#[cfg(target_os = "linux")]
use inotify_dirs::DirWatcher;
#[cfg(not(target_os = "linux"))]
use notify_dirs::DirWatcher;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The Linux watcher's pause after each batch of events it reads (see
/// `wal_watcher/inotify_dirs.rs`); the commit watch's shortest gap between
/// two looks is the same.
pub(crate) const BATCH_PAUSE: Duration = Duration::from_millis(2);

/// How often a store looks for other processes' commits when no watcher
/// could be set up (or, on Linux, once reading events has failed).
pub(crate) const FALLBACK_POLL: Duration = Duration::from_millis(50);

/// Who to wake for each WAL file: (registration id, channel).
type Wakers = Arc<Mutex<HashMap<PathBuf, Vec<(u64, SyncSender<()>)>>>>;

/// What the directory watcher reports.
#[derive(Debug)]
enum DirEvent {
    /// Something happened to this file.
    File(PathBuf),
    /// Events may have been lost: every store should look.
    Lost,
}

/// The process's watcher and what it watches.
struct Shared {
    watcher: DirWatcher,
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
        let watcher = DirWatcher::new(move |event| {
            // Full channel: a wake-up is already pending and covers this
            // one. Disconnected: that store is going away.
            let routes = lock(&routes);
            match event {
                DirEvent::File(path) => {
                    for wake in routes.get(&path).into_iter().flatten() {
                        let _ = wake.1.try_send(());
                    }
                }
                DirEvent::Lost => {
                    for wake in routes.values().flatten() {
                        let _ = wake.1.try_send(());
                    }
                }
            }
        });
        Mutex::new(watcher.map(|watcher| Shared {
            watcher,
            dirs: HashMap::new(),
            wakers,
            next_id: 0,
        }))
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

/// Wakes `wake` when the WAL file of the database at `db_path` changes
/// (written, created, renamed into place, closed after writing; on Linux
/// at most once per batch the watcher reads), or says why it cannot.
pub(crate) fn register(db_path: &Path, wake: SyncSender<()>) -> Result<Registration, String> {
    let db_path = std::path::absolute(db_path).map_err(|e| e.to_string())?;
    let wal = wal_path(&db_path);
    let dir = db_path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut guard = lock(shared());
    let shared = guard.as_mut().map_err(|e| e.clone())?;
    if !shared.dirs.contains_key(&dir) {
        shared.watcher.watch(&dir)?;
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
                shared.watcher.unwatch(&self.dir);
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

/// The inotify watcher's tests. Each takes [`WRITING`]: another test
/// writing into a watched directory beside it would interleave its events
/// with the test's, which the kernel does not fold.
#[cfg(all(test, target_os = "linux"))]
mod linux_tests {
    use super::{lock, register, wal_path};
    use std::io::Write;
    use std::sync::{Mutex, mpsc};
    use std::time::{Duration, Instant};

    /// One test at a time writes into a watched directory.
    static WRITING: Mutex<()> = Mutex::new(());

    /// The process's own writes to a WAL, as a store committing in a loop
    /// makes them, wake its registration about once per pause of the
    /// reader, not once per write; and a write after a quiet spell still
    /// wakes it.
    #[test]
    fn a_burst_of_writes_wakes_a_registration_about_once_per_pause() {
        let _writing = lock(&WRITING);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let mut wal = std::fs::File::create(wal_path(&db)).unwrap();
        let (wake, woken) = mpsc::sync_channel(100_000);
        let _registration = register(&db, wake).unwrap();
        let writes = 300;
        let start = Instant::now();
        for _ in 0..writes {
            wal.write_all(&[0u8; 64]).unwrap();
            std::thread::sleep(Duration::from_micros(50));
        }
        let elapsed = start.elapsed();
        std::thread::sleep(Duration::from_millis(50));
        let wake_ups = woken.try_iter().count();
        // One batch per pause (or per blocking read) at most, each waking
        // the file's registration once for its writes.
        let most = 2 + (elapsed.as_micros() / super::BATCH_PAUSE.as_micros()) as usize;
        assert!(wake_ups >= 1, "the writes woke nothing");
        assert!(
            wake_ups <= most,
            "{writes} writes over {elapsed:?} woke the registration {wake_ups} times (at most {most})"
        );
        wal.write_all(b"later").unwrap();
        woken
            .recv_timeout(Duration::from_secs(5))
            .expect("a write after a quiet spell wakes the registration");
    }

    /// Two paths to one directory (here a symbolic link) are one kernel
    /// watch: a write wakes the registrations made through each, and
    /// letting one go leaves the other watched.
    #[test]
    fn registrations_through_two_paths_to_one_directory_are_each_woken() {
        let _writing = lock(&WRITING);
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut wal = std::fs::File::create(wal_path(&real.join("a.db"))).unwrap();
        let (wake_real, woken_real) = mpsc::sync_channel(1);
        let (wake_link, woken_link) = mpsc::sync_channel(1);
        let through_real = register(&real.join("a.db"), wake_real).unwrap();
        let _through_link = register(&link.join("a.db"), wake_link).unwrap();
        wal.write_all(b"frame").unwrap();
        let wait = Duration::from_secs(5);
        woken_real
            .recv_timeout(wait)
            .expect("the real path's registration woken");
        woken_link
            .recv_timeout(wait)
            .expect("the link's registration woken");
        drop(through_real);
        std::thread::sleep(Duration::from_millis(20));
        while woken_link.try_recv().is_ok() {}
        wal.write_all(b"another").unwrap();
        woken_link
            .recv_timeout(wait)
            .expect("the link's registration still woken after the other went");
    }
}
