//! The `records` table's integer key: a record's log position — the
//! db_version of the transaction that last changed it and the change's
//! place in it — packed into one SQLite integer, `pos = version << 20 | seq`.
//!
//! The table is keyed by this integer (its rowid) so that a write appends
//! its rows at the table's end, where SQLite splits a full page by starting
//! a new one; the earlier layout, keyed by (collection, id) `WITHOUT
//! ROWID` plus an index on the log position, rewrote up to three sibling
//! pages at each split (2.93 pages written to the write-ahead log per
//! single put against 2.26 in a raw-SQLite probe). The log is read in the
//! key's order, and a position is looked up by it, with no index.
//!
//! A transaction's changes past [`MAX_SEQ`] take the next version (see
//! `rows::TxnStamp`); versions past [`MAX_VERSION`] cannot be written, and
//! a write that would need one is refused with [`StoreError::LogFull`].
//!
//! This module owns the packing only; what is read or written at a key is
//! its callers'.

use crate::error::StoreError;
use shoal_core::{DbVersion, LogPosition};

/// Bits of the key that hold the change's place in its transaction.
const SEQ_BITS: u32 = 20;

/// The last change a version holds: 1,048,575.
pub(crate) const MAX_SEQ: u32 = (1 << SEQ_BITS) - 1;

/// The last version a key can hold: 2^43 − 1, eight trillion transactions.
pub(crate) const MAX_VERSION: u64 = (1 << (63 - SEQ_BITS)) - 1;

/// The key of a row written at `at`, or [`StoreError::LogFull`] for a
/// version past [`MAX_VERSION`]. `at.seq` is in `1..=MAX_SEQ` (as
/// `TxnStamp` hands them out).
pub(crate) fn key_of_row(at: LogPosition) -> Result<i64, StoreError> {
    debug_assert!(
        (1..=MAX_SEQ).contains(&at.seq),
        "seq {} out of range",
        at.seq
    );
    if at.version.0 > MAX_VERSION {
        return Err(StoreError::LogFull {
            version: at.version.0,
        });
    }
    Ok(pack(at.version.0, at.seq))
}

/// The key of the row at `at`, if a key can hold that position.
pub(crate) fn key_at(at: LogPosition) -> Option<i64> {
    ((1..=MAX_SEQ).contains(&at.seq) && at.version.0 <= MAX_VERSION)
        .then(|| pack(at.version.0, at.seq))
}

/// The key such that the rows after a cursor at `after` are exactly those
/// with a greater key. A seq past what a key holds (a cursor
/// [`LogPosition::after_version`], or one a peer kept from the layout
/// before this one) is the end of its version; a version past the last
/// has no row after it.
pub(crate) fn key_after(after: LogPosition) -> i64 {
    match after.version.0 > MAX_VERSION {
        true => i64::MAX,
        false => pack(after.version.0, after.seq.min(MAX_SEQ)),
    }
}

/// The first key of `version`'s rows: the rows at or after it are those
/// of `version` and later (none, for a version past the last).
pub(crate) fn first_key_of(version: DbVersion) -> i64 {
    match version.0 > MAX_VERSION {
        true => i64::MAX,
        false => pack(version.0, 0),
    }
}

/// The log position a stored key stands for.
pub(crate) fn position_of(key: i64) -> LogPosition {
    LogPosition {
        version: DbVersion((key as u64) >> SEQ_BITS),
        seq: (key as u64 & u64::from(MAX_SEQ)) as u32,
    }
}

/// The version of a stored key.
pub(crate) fn version_of(key: i64) -> DbVersion {
    position_of(key).version
}

fn pack(version: u64, seq: u32) -> i64 {
    ((version << SEQ_BITS) | u64::from(seq)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(version: u64, seq: u32) -> LogPosition {
        LogPosition {
            version: DbVersion(version),
            seq,
        }
    }

    #[test]
    fn the_extremes_pack_into_a_positive_key_and_back() {
        for p in [at(0, 1), at(1, MAX_SEQ), at(MAX_VERSION, MAX_SEQ)] {
            let key = key_of_row(p).unwrap();
            assert!(key > 0, "{p} packed to {key}");
            assert_eq!(position_of(key), p);
        }
        assert_eq!(key_of_row(at(MAX_VERSION, MAX_SEQ)).unwrap(), i64::MAX);
    }

    #[test]
    fn no_key_holds_a_position_out_of_range() {
        for p in [at(1, 0), at(1, MAX_SEQ + 1), at(MAX_VERSION + 1, 1)] {
            assert_eq!(key_at(p), None, "{p}");
        }
    }

    #[test]
    fn a_version_past_the_last_is_refused() {
        let err = key_of_row(at(MAX_VERSION + 1, 1)).unwrap_err();
        assert!(matches!(err, StoreError::LogFull { version } if version == MAX_VERSION + 1));
    }

    #[test]
    fn after_a_whole_version_comes_the_next_version_first_row() {
        let after = key_after(LogPosition::after_version(DbVersion(7)));
        assert!(key_of_row(at(7, MAX_SEQ)).unwrap() <= after);
        assert!(key_of_row(at(8, 1)).unwrap() > after);
        assert!(first_key_of(DbVersion(8)) > after);
        assert!(first_key_of(DbVersion(8)) < key_of_row(at(8, 1)).unwrap());
    }

    proptest! {
        /// Keys order rows as positions do, and a row is after a cursor
        /// exactly when its key is greater than the cursor's.
        #[test]
        fn keys_order_as_positions(
            a in (0..=MAX_VERSION, 1..=MAX_SEQ),
            b in (0..=MAX_VERSION, 1..=MAX_SEQ),
            cursor in (0..=MAX_VERSION + 2, any::<u32>()),
        ) {
            let (a, b) = (at(a.0, a.1), at(b.0, b.1));
            let (ka, kb) = (key_of_row(a).unwrap(), key_of_row(b).unwrap());
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            let cursor = at(cursor.0, cursor.1);
            prop_assert_eq!(a > cursor, ka > key_after(cursor));
            prop_assert_eq!(version_of(ka), a.version);
            prop_assert_eq!(key_at(a), Some(ka));
        }
    }
}
