//! The clock mark: the highest clock this store used or observed, kept in
//! `meta` under `hlc` by the transactions after which the clocks of the
//! log's last transaction may be lower than that — a merge of a peer's
//! changes (its clocks may be older than ours), tombstone collection and a
//! partial replica's drop (both remove rows, maybe the newest). Opening
//! restores the clock from the higher of the mark and the last
//! transaction's clocks (`Store::restored_head`), so a clock once issued or
//! seen is never issued again after a restart. A store that notices
//! another connection's commits (`HeadMemo::refresh`) raises its clock to
//! the mark as well, and the mark only ever rises.
//!
//! It owns the mark's key and encoding; when to write it is the callers'.

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension};
use shoal_core::Hlc;

/// Raises the mark to `hlc` (inside the caller's transaction); a lower
/// `hlc` leaves it as it is. Another process on the file (`shoal gc` beside
/// the daemon) may hold a clock older than the mark the daemon saved: its
/// save must not take the mark back. The mark's big-endian bytes compare
/// as the clocks do.
pub(crate) fn save(conn: &Connection, hlc: Hlc) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('hlc', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([hlc.packed().to_be_bytes().to_vec()])?;
    Ok(())
}

/// The stored mark (the zero clock when none was stored).
pub(crate) fn load(conn: &Connection) -> Result<Hlc, StoreError> {
    let mark: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'hlc'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(Hlc::from_packed(
        mark.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreConfig, WriteOp};
    use serde_json::json;
    use shoal_core::{Change, CollectionName, DbVersion, Intent, RecordId, SyncCursor};

    fn put(store: &mut Store, rid: &str, i: i64) {
        store
            .write(vec![WriteOp {
                collection: CollectionName::new("c").unwrap(),
                id: RecordId::new(rid).unwrap(),
                intent: Intent::Put(json!({ "i": i }).as_object().unwrap().clone()),
            }])
            .unwrap();
    }

    fn changes(store: &Store) -> Vec<Change> {
        store
            .changes_since(DbVersion(0))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The mark stored in the file at `path`, and the clock a store opened
    /// on it restores.
    fn reopened(path: &std::path::Path) -> (Hlc, Hlc) {
        let mark = load(&Connection::open(path).unwrap()).unwrap();
        let store = Store::open(path, StoreConfig::default()).unwrap();
        (mark, store.last_hlc())
    }

    fn pause() {
        // Clocks a millisecond apart at least, so "later" is "higher".
        std::thread::sleep(std::time::Duration::from_millis(3));
    }

    #[test]
    fn a_lower_clock_saved_leaves_the_mark_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), StoreConfig::default()).unwrap();
        let conn = Connection::open(store.path()).unwrap();
        save(&conn, Hlc::from_packed(600 << 16)).unwrap();
        save(&conn, Hlc::from_packed(550 << 16)).unwrap();
        assert_eq!(load(&conn).unwrap(), Hlc::from_packed(600 << 16));
        save(&conn, Hlc::from_packed(700 << 16)).unwrap();
        assert_eq!(load(&conn).unwrap(), Hlc::from_packed(700 << 16));
    }

    #[test]
    fn a_merged_change_newer_than_anything_here_needs_no_mark_and_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let open = |f: &str| Store::open(dir.path().join(f), StoreConfig::default()).unwrap();
        let (mut a, mut b) = (open("a.db"), open("b.db"));
        put(&mut b, "old", 1);
        pause();
        put(&mut a, "new", 2);
        let newest = a.last_hlc();
        let batch = changes(&a);
        b.apply_from("a", &batch, SyncCursor::complete(a.db_version()))
            .unwrap();
        let path = b.path().to_path_buf();
        drop(b);
        let (mark, restored) = reopened(&path);
        assert_eq!(mark, Hlc::default(), "no mark was written");
        assert!(
            restored >= newest,
            "restored {restored:?} < merged {newest:?}"
        );
    }

    #[test]
    fn a_merge_of_older_changes_keeps_the_higher_local_clock_through_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let open = |f: &str| Store::open(dir.path().join(f), StoreConfig::default()).unwrap();
        let (mut a, mut b) = (open("a.db"), open("b.db"));
        put(&mut a, "theirs", 1);
        pause();
        put(&mut b, "mine", 2);
        let local = b.last_hlc();
        let batch = changes(&a);
        assert!(batch.iter().all(|c| c.clock.hlc < local));
        // The merge is the log's last transaction, and its clocks are older
        // than b's own write before it.
        b.apply_from("a", &batch, SyncCursor::complete(a.db_version()))
            .unwrap();
        let path = b.path().to_path_buf();
        drop(b);
        let (mark, restored) = reopened(&path);
        assert!(mark >= local, "mark {mark:?} < local clock {local:?}");
        assert!(
            restored >= local,
            "restored {restored:?} < local clock {local:?}"
        );
    }
}
