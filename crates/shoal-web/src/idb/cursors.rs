//! The catch-up cursor table: for each peer, how far this tab has received
//! its change log (`shoal_core::SyncCursor`), persisted so a reload resumes
//! catch-up where it stopped instead of starting over — the native store's
//! `peer_cursors`. It reads it; a cursor is written only with the changes
//! it covers, in the merge's transaction (`sync_apply.rs`).

use crate::cursor_text;
use crate::error::WebError;
use crate::idb::request::{classify, result};
use crate::idb::rows;
use crate::idb::schema::CURSORS;
use crate::idb::tx;
use shoal_core::SyncCursor;
use web_sys::IdbDatabase;

/// The stored cursor for `peer` (a peer id's text), or the start of its log.
pub async fn load(db: &IdbDatabase, peer: &str) -> Result<SyncCursor, WebError> {
    let tx = tx::read(db, &[CURSORS])?;
    let request = tx::store(&tx, CURSORS)?
        .get(&peer.into())
        .map_err(|e| classify(&e))?;
    match rows::text(&result(&request).await?)? {
        Some(text) => cursor_text::decode(peer, &text),
        None => Ok(SyncCursor::default()),
    }
}
