//! Opening a store's SQLite database on OPFS ([`SqlDb`]): installing the
//! store's own `sahpool` VFS (one OPFS directory per store name, so two
//! stores of an origin hold separate access handles) once per worker and
//! taking it back after a close, the pragmas, the
//! schema, the node metadata on first open; closing (which gives the
//! access handles back so another tab may open the store) and deleting.
//!
//! The layout, schema version 1 (`PRAGMA user_version`):
//!
//! - `records (k TEXT PRIMARY KEY, v INTEGER, s TEXT)`: `k` is
//!   `collection/id` (keys.rs), `v` the record's change-log position, `s`
//!   its state (row.rs); index `records_by_version` on `v`, the log in
//!   order, as IndexedDB's `by_version`;
//! - `meta (k TEXT PRIMARY KEY, v TEXT)`: the node metadata under `node`;
//! - `cursors (peer TEXT PRIMARY KEY, cursor TEXT)`: each peer's catch-up
//!   cursor.
//!
//! The metadata's log head and clock are those of the last merge, or of
//! the creation; a local write leaves them in its rows (head.rs).
//!
//! WAL in exclusive locking mode (the VFS has no shared memory, and one
//! owner holds the store: its Web Lock) with `synchronous=NORMAL`, native
//! Shoal's default: a commit is written through to the file before it is
//! acknowledged, so a killed tab or browser loses nothing acknowledged; an
//! operating-system crash or power loss may lose the last commits (no
//! flush per commit), as on native nodes. It owns the layout and the
//! connection's life, and how a record row is stored (`put_row`; the
//! transactions that call it decide what; the `meta` table's rows are
//! meta_rows.rs's).

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::sql::head::Head;
use crate::sql::host::TabOs;
use crate::sql::meta_rows::{NODE_KEY, meta_text, put_meta};
use crate::sql::sql_error;
use rusqlite::{Connection, OpenFlags};
use shoal_core::DbVersion;
use sqlite_wasm_vfs::sahpool::{OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil, install};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 1;
/// The database file in the store's pool.
const FILE: &str = "/shoal.db";

/// The schema, created on first open.
const SCHEMA: &str = "
CREATE TABLE records (k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL, s TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX records_by_version ON records (v);
CREATE TABLE meta (k TEXT PRIMARY KEY NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE cursors (peer TEXT PRIMARY KEY NOT NULL, cursor TEXT NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;";

/// An open store database. Dropping it closes it ([`SqlDb::close`]).
pub struct SqlDb {
    /// `None` once closed.
    conn: RefCell<Option<Connection>>,
    pool: Rc<OpfsSAHPoolUtil>,
    /// The node metadata between transactions (head.rs).
    head: Head,
}

thread_local! {
    /// The pools installed in this worker, by VFS name: a closed store's
    /// pool is paused (its VFS unregistered, its handles given back) and
    /// taken back by the next open of that name, never installed twice.
    static POOLS: RefCell<HashMap<String, Rc<OpfsSAHPoolUtil>>> = RefCell::new(HashMap::new());
}

/// The VFS (and OPFS directory) name of the store `name`: a digest of the
/// name, which may hold any character.
fn pool_name(name: &str) -> String {
    let digest = blake3::hash(name.as_bytes()).to_hex();
    format!("shoal-{}", &digest[..32])
}

/// The pool of the store `name`, with its access handles: installed on
/// its first use in this worker, taken back (unpaused) after a close.
async fn pool(name: &str) -> Result<Rc<OpfsSAHPoolUtil>, WebError> {
    if js_sys::global()
        .dyn_into::<web_sys::DedicatedWorkerGlobalScope>()
        .is_err()
    {
        return Err(WebError::BadRequest(NOT_IN_A_WORKER.into()));
    }
    let pool_name = pool_name(name);
    if let Some(pool) = POOLS.with(|pools| pools.borrow().get(&pool_name).cloned()) {
        if pool.is_paused() {
            pool.unpause_vfs().await.map_err(|e| opfs_error(&e))?;
        }
        return Ok(pool);
    }
    let config = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(&pool_name)
        .directory(&format!(".{pool_name}"))
        .build();
    let pool = Rc::new(
        install::<TabOs>(&config, false)
            .await
            .map_err(|e| opfs_error(&e))?,
    );
    POOLS.with(|pools| pools.borrow_mut().insert(pool_name, pool.clone()));
    Ok(pool)
}

/// Why `{storage: "opfs"}` is refused outside a dedicated Worker.
const NOT_IN_A_WORKER: &str = "storage \"opfs\" works only in a dedicated Worker (OPFS synchronous access handles); open the store there, or with the default IndexedDB storage";

/// The pool's failure as the store's error.
fn opfs_error(error: &sqlite_wasm_vfs::sahpool::OpfsSAHError) -> WebError {
    match error {
        sqlite_wasm_vfs::sahpool::OpfsSAHError::NotSupported => {
            WebError::BadRequest(NOT_IN_A_WORKER.into())
        }
        other => WebError::Storage(format!("OPFS: {other}")),
    }
}

impl SqlDb {
    /// Opens (creating on first use) the database of the store `name`.
    pub async fn open(name: &str) -> Result<SqlDb, WebError> {
        let pool = pool(name).await?;
        let opened = Connection::open_with_flags_and_vfs(
            FILE,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            pool_name(name).as_str(),
        )
        .map_err(sql_error)
        .and_then(|conn| prepare(&conn).map(|()| conn));
        match opened {
            Ok(conn) => Ok(SqlDb {
                conn: RefCell::new(Some(conn)),
                pool,
                head: Head::default(),
            }),
            Err(error) => {
                // The connection is closed (dropped): give the handles back,
                // or the next owner could not open the store.
                let _ = pool.pause_vfs();
                Err(error)
            }
        }
    }

    /// Runs `f` on the connection; [`WebError::Closed`] after [`SqlDb::close`].
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, WebError>,
    ) -> Result<T, WebError> {
        let mut conn = self.conn.borrow_mut();
        let conn = conn.as_mut().ok_or(WebError::Closed)?;
        f(conn)
    }

    /// The node metadata as the transactions use it.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Closes the database and gives the access handles back (another
    /// worker of the origin may then open the store). Idempotent.
    pub fn close(&self) {
        if let Some(conn) = self.conn.borrow_mut().take() {
            drop(conn);
            let _ = self.pool.pause_vfs();
        }
    }

    /// Deletes the store `name`'s files — the database and its log — (it
    /// must not be open here).
    pub async fn delete(name: &str) -> Result<(), WebError> {
        let pool = pool(name).await?;
        let cleared = pool.clear_all().await.map_err(|e| opfs_error(&e));
        // The handles go back whether or not the delete worked.
        let paused = pool.pause_vfs().map_err(|e| opfs_error(&e));
        cleared.and(paused)
    }
}

impl Drop for SqlDb {
    fn drop(&mut self) {
        self.close();
    }
}

/// Sets the pragmas, creates or checks the schema, and creates the node
/// metadata (with 32 random bytes) on the first open.
fn prepare(conn: &Connection) -> Result<(), WebError> {
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; PRAGMA synchronous = NORMAL;")
        .map_err(sql_error)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(WebError::Storage(format!(
            "SQLite refused WAL mode on OPFS (journal mode {mode})"
        )));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_error)?;
    match version {
        0 => conn
            .execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))
            .map_err(sql_error)?,
        SCHEMA_VERSION => {}
        newer => {
            return Err(WebError::Storage(format!(
                "this store was written by a newer Shoal (schema {newer}, this build reads {SCHEMA_VERSION})"
            )));
        }
    }
    if meta_text(conn, NODE_KEY)?.is_none() {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| WebError::Storage(format!("no randomness: {e}")))?;
        put_meta(conn, &NodeMeta::new(seed))?;
    }
    Ok(())
}

/// Stores a record's row — its key (`keys::record_key`), log version and
/// state text — in place of any before (in the caller's transaction).
pub fn put_row(
    conn: &Connection,
    key: &str,
    version: DbVersion,
    state: &str,
) -> Result<(), WebError> {
    conn.prepare_cached("INSERT OR REPLACE INTO records (k, v, s) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute((key, version.0 as i64, state)))
        .map(drop)
        .map_err(sql_error)
}
