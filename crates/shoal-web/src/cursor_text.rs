//! The stored text of a peer's catch-up cursor, as both storages keep it
//! (`idb/cursors.rs`, `sql/cursors.rs`, and a store moved between them):
//! the cursor's durable part as JSON. It owns this encoding only.

use crate::error::WebError;
use shoal_core::SyncCursor;

/// The text stored for `cursor`: its durable part.
pub fn encode(cursor: SyncCursor) -> String {
    serde_json::to_string(&cursor.durable()).expect("a cursor always encodes")
}

/// The cursor stored as `text` for `peer` (named in the error when it does
/// not decode).
pub fn decode(peer: &str, text: &str) -> Result<SyncCursor, WebError> {
    serde_json::from_str(text).map_err(|e| WebError::Corrupt(format!("cursor of {peer}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{DbVersion, LogPosition};

    #[test]
    fn a_cursor_round_trips_as_its_durable_part_and_damage_is_named() {
        let cursor = SyncCursor::complete(DbVersion(4)).advance(
            LogPosition {
                version: DbVersion(9),
                seq: 2,
            },
            true,
        );
        assert_eq!(decode("p", &encode(cursor)).unwrap(), cursor.durable());
        let damaged = decode("peer-a", "{").unwrap_err();
        assert!(
            matches!(&damaged, WebError::Corrupt(why) if why.contains("peer-a")),
            "{damaged:?}"
        );
    }
}
