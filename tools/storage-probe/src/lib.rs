//! SQLite on the origin private file system, for `www/worker.js`: opens one
//! database through the `sahpool` VFS (which needs a dedicated Worker) and
//! runs single-row write transactions shaped like a Shoal put (read the
//! record, replace it, update a metadata row). It measures the storage only;
//! nothing of Shoal is in it.

use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static DB: RefCell<Option<rusqlite::Connection>> = const { RefCell::new(None) };
}

fn js(error: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&error.to_string())
}

/// Installs the VFS and opens `probe.db` with `synchronous` = `sync` and
/// `journal_mode` = `journal` (WAL needs the exclusive locking mode set
/// here: the VFS has no shared memory). Returns the journal mode in force.
#[wasm_bindgen]
pub async fn open(sync: String, journal: String) -> Result<String, JsValue> {
    use sqlite_wasm_vfs::sahpool::{OpfsSAHPoolCfg, install};
    install::<sqlite_wasm_rs::WasmOsCallback>(&OpfsSAHPoolCfg::default(), true)
        .await
        .map_err(|e| js(format!("{e:?}")))?;
    let conn = rusqlite::Connection::open("probe.db").map_err(js)?;
    conn.execute_batch(&format!(
        "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode={journal}; PRAGMA synchronous={sync};
         CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER, s BLOB);
         CREATE INDEX IF NOT EXISTS t_v ON t (v);"
    ))
    .map_err(js)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(js)?;
    DB.with(|db| *db.borrow_mut() = Some(conn));
    Ok(mode)
}

/// One committed transaction: reads record `i`, writes it (250 bytes) and
/// a 60-byte metadata row.
#[wasm_bindgen]
pub fn put(i: u32) -> Result<(), JsValue> {
    DB.with(|db| {
        let mut db = db.borrow_mut();
        let conn = db.as_mut().ok_or_else(|| js("not open"))?;
        let tx = conn.transaction().map_err(js)?;
        let key = format!("notes/{i}");
        let old: Option<Vec<u8>> = tx
            .query_row("SELECT s FROM t WHERE k = ?1", [&key], |r| r.get(0))
            .ok();
        let state = vec![7u8; 250 + old.map_or(0, |o| o.len() % 2)];
        tx.execute(
            "INSERT OR REPLACE INTO t (k, v, s) VALUES (?1, ?2, ?3)",
            rusqlite::params![key, i, state],
        )
        .map_err(js)?;
        tx.execute(
            "INSERT OR REPLACE INTO t (k, v, s) VALUES ('meta', 0, ?1)",
            rusqlite::params![vec![1u8; 60]],
        )
        .map_err(js)?;
        tx.commit().map_err(js)
    })
}
