//! Consistent copies of a database file and of its blobs, the parts `shoal
//! backup` and `shoal restore` are made of: the database through SQLite's
//! online backup API inside one read snapshot (so a running daemon keeps
//! writing meanwhile and the copy is one committed state), the held blobs
//! the copy indexes, a check of a copy (every page, every record, every
//! blob re-hashed), and removing the node key from a copy so it can never
//! be started as a second node with the same identity.
//!
//! It does not decide where backups go, which other files of a data
//! directory they carry (secrets, peers), or what a restore's identity is;
//! the CLI does. It never reaches the network.

use crate::blob_files::{BlobFiles, io_error};
use crate::error::StoreError;
use crate::identity::NodeIdentity;
use crate::{Store, StoreConfig};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use shoal_core::DbVersion;
use shoal_core::blob::BlobHash;
use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

/// Pages copied per step of the online backup (4 MiB at 4 KiB pages).
const PAGES_PER_STEP: i32 = 1024;

/// What a database copy holds, read from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseCopy {
    /// Pages of the copy.
    pub pages: u64,
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// Live records.
    pub records: u64,
    /// Deleted records (tombstones).
    pub tombstones: u64,
    /// The version of the last transaction in the copy.
    pub db_version: DbVersion,
    /// The held blobs the copy indexes: hash and size.
    pub blobs: Vec<(BlobHash, u64)>,
    /// The peer id of the node key in the copy (`None` once removed).
    pub peer_id: Option<String>,
    /// The site id of that key (`None` once removed).
    pub site_id: Option<String>,
}

/// What copying blobs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobsCopied {
    /// Blobs copied.
    pub copied: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Blobs the copy indexed whose file had gone from the source by the
    /// time it was copied (collected or set aside meanwhile): the copy no
    /// longer counts them as held, so a restored node fetches them again.
    pub vanished: Vec<BlobHash>,
}

/// What checking a copy found (it is an error if anything is wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyChecked {
    /// Pages checked.
    pub pages: u64,
    /// Records whose invariants were checked.
    pub records: u64,
    /// Blobs re-hashed.
    pub blobs: u64,
    /// Bytes of blobs re-hashed.
    pub blob_bytes: u64,
}

/// Copies the Shoal database at `source` to the new file `dest` as one
/// consistent state, while other connections (a running daemon) keep
/// writing: the copy is taken inside one read transaction of `source`, so
/// it holds exactly the transactions committed when it began. `progress`
/// is told pages done and the total after each step. `dest` must not exist.
pub fn copy_database(
    source: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<DatabaseCopy, StoreError> {
    if dest.exists() {
        return Err(io_error(
            dest,
            "cannot copy the database",
            io::Error::new(io::ErrorKind::AlreadyExists, "the file exists"),
        ));
    }
    let sqlite = |e| StoreError::from_sqlite(source, e);
    if !source.is_file() {
        return Err(StoreError::Missing {
            path: source.to_path_buf(),
        });
    }
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    src.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
    refuse_foreign(&src, source)?;
    // One read snapshot for the whole copy: steps never see a later commit,
    // so the backup never restarts however busy the writer is.
    src.execute_batch("BEGIN; SELECT count(*) FROM meta;")
        .map_err(sqlite)?;
    let to = |e| StoreError::from_sqlite(dest, e);
    let mut dst = Connection::open(dest).map_err(to)?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(to)?;
        loop {
            match backup.step(PAGES_PER_STEP).map_err(to)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                // The enum is non-exhaustive; any other answer is retried.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total.saturating_sub(p.remaining.max(0) as u64), total);
        }
        let p = backup.progress();
        progress(p.pagecount.max(0) as u64, p.pagecount.max(0) as u64);
    }
    src.execute_batch("COMMIT").map_err(sqlite)?;
    drop(src);
    // A backup is one self-contained file: no write-ahead log beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(to)?;
    let copy = describe(&dst, dest)?;
    drop(dst);
    Ok(copy)
}

/// Refuses a file that is not a Shoal database.
fn refuse_foreign(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, e);
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sqlite)?;
    if application_id != crate::migrations::APPLICATION_ID {
        let tables = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(sqlite)?;
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            application_id,
            tables,
        });
    }
    Ok(())
}

/// What the database at `path` holds (see [`DatabaseCopy`]); it is only read.
pub fn describe_database(path: &Path) -> Result<DatabaseCopy, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::from_sqlite(path, e))?;
    refuse_foreign(&conn, path)?;
    describe(&conn, path)
}

fn describe(conn: &Connection, path: &Path) -> Result<DatabaseCopy, StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, e);
    let count = |sql: &str| -> Result<u64, StoreError> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(sqlite)
    };
    let pages = count("PRAGMA page_count")?;
    let page_size = count("PRAGMA page_size")?;
    let records = count("SELECT count(*) FROM records WHERE data IS NOT NULL")?;
    let tombstones = count("SELECT count(*) FROM records WHERE data IS NULL")?;
    // A copy made before schema step 13 has no `pos` (and an index on `dbv`).
    let db_version = match crate::migrations::has_column(conn, "records", "pos")
        .map_err(|e| e.with_path(path))?
    {
        true => {
            crate::log_pos::version_of(count("SELECT coalesce(max(pos), 0) FROM records")? as i64)
        }
        false => DbVersion(count("SELECT coalesce(max(dbv), 0) FROM records")?),
    };
    let blobs = conn
        .prepare("SELECT hash, size FROM blobs ORDER BY hash")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sqlite)?
        .into_iter()
        .map(|(hash, size)| {
            let hash = <[u8; 32]>::try_from(hash.as_slice())
                .map(BlobHash::from_bytes)
                .map_err(|_| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "a blob index row has a hash that is not 32 bytes".into(),
                })?;
            Ok((hash, size.max(0) as u64))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let identity = NodeIdentity::stored(conn).map_err(|e| e.with_path(path))?;
    Ok(DatabaseCopy {
        pages,
        bytes: pages * page_size,
        records,
        tombstones,
        db_version,
        blobs,
        peer_id: identity.as_ref().map(|i| i.peer_id().to_string()),
        site_id: identity.as_ref().map(|i| i.site().to_string()),
    })
}

/// Copies the held blobs `blobs` of the database at `source_db` into the
/// blob directory of the database copy at `dest_db` (each file with its
/// outline, written to a temporary name and renamed). A blob whose file has
/// gone from the source meanwhile is set aside in the copy (see
/// [`BlobsCopied::vanished`]). `progress` is told bytes done and the total.
pub fn copy_blobs(
    source_db: &Path,
    dest_db: &Path,
    blobs: &[(BlobHash, u64)],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BlobsCopied, StoreError> {
    let from = BlobFiles::for_database(source_db);
    let to = BlobFiles::for_database(dest_db);
    let total: u64 = blobs.iter().map(|(_, size)| size).sum();
    let mut done = BlobsCopied::default();
    for (hash, _) in blobs {
        let source = from.final_path(hash);
        let target = to.final_path(hash);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(|e| io_error(dir, "cannot create directory", e))?;
        }
        let outline = from.outline_path(hash);
        if outline.is_file() {
            match copy_file(&outline, &to.outline_path(hash)) {
                Ok(_) | Err(CopyError::Vanished) => {}
                Err(CopyError::Failed(e)) => return Err(e),
            }
        }
        match copy_file(&source, &target) {
            Ok(bytes) => {
                done.copied += 1;
                done.bytes += bytes;
            }
            Err(CopyError::Vanished) => done.vanished.push(*hash),
            Err(CopyError::Failed(e)) => return Err(e),
        }
        progress(done.bytes.min(total), total);
    }
    if !done.vanished.is_empty() {
        let mut copy = open_copy(dest_db)?;
        for hash in &done.vanished {
            copy.set_blob_aside(hash)?;
        }
    }
    Ok(done)
}

/// Why one file was not copied.
enum CopyError {
    /// The source file was gone.
    Vanished,
    /// Reading or writing failed.
    Failed(StoreError),
}

/// Copies `from` to `to` through a temporary name, fsynced.
fn copy_file(from: &Path, to: &Path) -> Result<u64, CopyError> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp-copy");
    let tmp = std::path::PathBuf::from(tmp);
    let bytes = match fs::copy(from, &tmp) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !from.exists() => {
            let _ = fs::remove_file(&tmp);
            return Err(CopyError::Vanished);
        }
        Err(e) => return Err(CopyError::Failed(io_error(from, "cannot copy", e))),
    };
    let synced = fs::File::open(&tmp).and_then(|f| f.sync_all());
    synced.map_err(|e| CopyError::Failed(io_error(&tmp, "cannot sync", e)))?;
    fs::rename(&tmp, to).map_err(|e| CopyError::Failed(io_error(to, "cannot place", e)))?;
    Ok(bytes)
}

/// Opens a copy as a store, never creating one.
fn open_copy(db: &Path) -> Result<Store, StoreError> {
    Store::open(
        db,
        StoreConfig {
            create_if_missing: false,
            ..StoreConfig::default()
        },
    )
}

/// Checks the copy at `db` completely: every page and index and every
/// record's invariants ([`Store::check`]), then every blob it holds
/// re-hashed from the copy's own files. Any damage is
/// [`StoreError::Corrupt`] naming it; nothing is repaired. `progress` is
/// told the stage (`"pages"`, `"records"`, `"blobs"`), done and total.
pub fn check_copy(
    db: &Path,
    progress: &mut (dyn FnMut(&'static str, u64, u64) + Send),
) -> Result<CopyChecked, StoreError> {
    let had_identity = NodeIdentity::stored_at(db)?.is_some();
    let mut store = open_copy(db)?;
    let report = store.check(|p| {
        let stage = match p.stage {
            crate::CheckStage::Pages => "pages",
            crate::CheckStage::Records => "records",
        };
        progress(stage, p.done, p.total);
    })?;
    let files = store.blob_files();
    let blobs = store_blobs(&store)?;
    drop(store);
    if !had_identity {
        // Opening made a key; a copy without one stays without one.
        forget_identity(db)?;
    }
    let total: u64 = blobs.iter().map(|(_, size)| size).sum();
    let mut done = 0;
    for (hash, _) in &blobs {
        let verdict = files.check_blob(hash, &mut |n| {
            done += n;
            progress("blobs", done.min(total), total);
        })?;
        if let crate::BlobCheck::Bad { detail } = verdict {
            return Err(StoreError::Corrupt {
                path: files.final_path(hash),
                detail: format!("blob {hash} is damaged: {detail}"),
            });
        }
    }
    Ok(CopyChecked {
        pages: report.pages,
        records: report.records,
        blobs: blobs.len() as u64,
        blob_bytes: total,
    })
}

fn store_blobs(store: &Store) -> Result<Vec<(BlobHash, u64)>, StoreError> {
    Ok(describe(&store.db.conn, &store.path)?.blobs)
}

/// Removes the node key from the database at `db` (no daemon may have it
/// open): opened again, it makes a new key, so a new peer id and a new site
/// id, and writes under that site id from then on. Everything else — the
/// records with their clocks, the log, the cursors this node holds about
/// its peers, the sharing rules — is kept. Returns the peer id removed.
pub fn forget_identity(db: &Path) -> Result<Option<String>, StoreError> {
    let sqlite = |e| StoreError::from_sqlite(db, e);
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    refuse_foreign(&conn, db)?;
    let old = NodeIdentity::stored(&conn)
        .map_err(|e| e.with_path(db))?
        .map(|identity| identity.peer_id().to_string());
    conn.execute("DELETE FROM meta WHERE key = 'node_key'", [])
        .map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sqlite)?;
    Ok(old)
}

/// How far [`skip_log`] moves the log on: more transactions than a node
/// commits in its life (four billion), fewer than JSON numbers hold exactly.
pub const LOG_SKIP: u64 = 1 << 32;

/// Moves the log of the database at `db` (no daemon may have it open) on by
/// [`LOG_SKIP`] versions, for a restore that keeps the node's identity. The
/// node it was copied from may have committed past the copy before it was
/// lost, and its peers keep a cursor for this peer id at that later
/// version: writes the restored node logged at versions they consider seen
/// would never be sent to them. After the skip, every new write is logged
/// past any version the old node reached. Returns the new head.
pub fn skip_log(db: &Path) -> Result<DbVersion, StoreError> {
    let sqlite = |e| StoreError::from_sqlite(db, e);
    let mut conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    refuse_foreign(&conn, db)?;
    // A copy made by an older build is brought to this build's schema
    // first: the log head is read through it.
    crate::schema::prepare(&mut conn, db)?;
    let (head, _) = crate::rows::log_head(&conn).map_err(|e| e.with_path(db))?;
    let floor = head.0.saturating_add(LOG_SKIP);
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('log_floor', ?1)",
        [floor.to_be_bytes().to_vec()],
    )
    .map_err(sqlite)?;
    Ok(DbVersion(floor))
}

impl NodeIdentity {
    /// The identity stored in the database at `db`, if it has one (read only).
    pub fn stored_at(db: &Path) -> Result<Option<Self>, StoreError> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::from_sqlite(db, e))?;
        refuse_foreign(&conn, db)?;
        NodeIdentity::stored(&conn).map_err(|e| e.with_path(db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteOp;
    use shoal_core::{CollectionName, Intent, RecordId};

    fn put(store: &mut Store, id: &str, bytes: usize) {
        let body = serde_json::json!({ "pad": "x".repeat(bytes) });
        store
            .write(vec![WriteOp {
                collection: CollectionName::new("tasks").unwrap(),
                id: RecordId::new(id).unwrap(),
                intent: Intent::Put(body.as_object().unwrap().clone()),
            }])
            .unwrap();
    }

    #[test]
    fn a_copy_is_the_state_when_it_began_however_the_source_changes_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("shoal.db");
        let mut store = Store::open(&source, StoreConfig::default()).unwrap();
        // Enough pages for several steps of the copy.
        for i in 0..300 {
            put(&mut store, &format!("r{i}"), 30_000);
        }
        let head = store.db_version();
        let dest = dir.path().join("copy.db");
        let mut steps = 0;
        let mut writes = 0;
        let copy = copy_database(&source, &dest, &mut |_done, _total| {
            steps += 1;
            // Another connection commits between the copy's steps.
            if writes < 5 {
                put(&mut store, &format!("late{writes}"), 100);
                writes += 1;
            }
        })
        .unwrap();
        assert!(steps > 2, "the copy took {steps} steps");
        assert!(writes >= 2);
        assert_eq!(copy.records, 300);
        assert_eq!(copy.db_version, head);
        assert_eq!(copy.peer_id, Some(store.identity().peer_id().to_string()));
        let checked = check_copy(&dest, &mut |_, _, _| {}).unwrap();
        assert_eq!(checked.records, 300);
        // The source has the late writes; the copy does not.
        assert_eq!(describe_database(&source).unwrap().records, 300 + writes);

        // Without the node key, a copy opens as a new node.
        assert_eq!(
            forget_identity(&dest).unwrap(),
            Some(store.identity().peer_id().to_string())
        );
        assert_eq!(NodeIdentity::stored_at(&dest).unwrap().map(|_| ()), None);
        let reopened = open_copy(&dest).unwrap();
        assert_ne!(reopened.identity().site(), store.identity().site());
        drop(reopened);

        // A copy is never written over an existing file.
        assert!(copy_database(&source, &dest, &mut |_, _| {}).is_err());
    }

    #[test]
    fn skipping_the_log_moves_the_next_write_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shoal.db");
        let mut store = Store::open(&db, StoreConfig::default()).unwrap();
        put(&mut store, "a", 10);
        drop(store);
        let floor = skip_log(&db).unwrap();
        assert_eq!(floor, DbVersion(1 + LOG_SKIP));
        let mut store = open_copy(&db).unwrap();
        assert_eq!(store.db_version(), floor);
        put(&mut store, "b", 10);
        assert_eq!(store.db_version(), DbVersion(floor.0 + 1));
    }
}
