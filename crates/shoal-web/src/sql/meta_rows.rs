//! The `meta` table's rows: the node metadata under [`NODE_KEY`] (read,
//! stored) and any other text a key names (the move's note, `import.rs`).
//! It owns these statements only; when the metadata is read or stored is
//! the transactions' (head.rs keeps it between them).

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::sql::sql_error;
use rusqlite::{Connection, OptionalExtension};

/// The key of the node metadata in `meta`.
pub const NODE_KEY: &str = "node";

/// The text stored under `key` in the metadata table, if any.
pub fn meta_text(conn: &Connection, key: &str) -> Result<Option<String>, WebError> {
    conn.prepare_cached("SELECT v FROM meta WHERE k = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(sql_error)
}

/// The node metadata.
pub fn node_meta(conn: &Connection) -> Result<NodeMeta, WebError> {
    let text = meta_text(conn, NODE_KEY)?
        .ok_or_else(|| WebError::Corrupt("node metadata missing".into()))?;
    NodeMeta::decode(&text)
}

/// Stores the node metadata (in the caller's transaction, if any).
pub fn put_meta(conn: &Connection, meta: &NodeMeta) -> Result<(), WebError> {
    put_meta_text(conn, NODE_KEY, &meta.encode())
}

/// Stores `text` under `key` in the metadata table (in the caller's
/// transaction, if any).
pub fn put_meta_text(conn: &Connection, key: &str, text: &str) -> Result<(), WebError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute((key, text)))
        .map(drop)
        .map_err(sql_error)
}
