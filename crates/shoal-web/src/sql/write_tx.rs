//! Local writes as one SQLite transaction: take the node metadata
//! (head.rs) and read the rows of the records written, decide the writes
//! in memory (write_batch.rs), store the new rows, commit — and answer
//! only after the commit. As `idb/write_tx.rs`: a write the core refuses
//! leaves nothing and the others stand; a failed commit (a full disk, the
//! storage) fails every write of the transaction, none of them stored.

use crate::error::WebError;
use crate::row::StoredRecord;
use crate::sql::head::Head;
use crate::sql::open::put_row;
use crate::sql::read;
use crate::sql::txn::Txn;
use crate::write_batch::{self, WriteOutcome, WriteRequest};
use rusqlite::Connection;

/// Applies `writes` in order in one durable transaction, each its own
/// local write; one outcome per write. `Err`: none of them is stored.
pub fn write_all(
    conn: &mut Connection,
    head: &Head,
    writes: &[WriteRequest],
    now_ms: u64,
) -> Result<Vec<WriteOutcome>, WebError> {
    let tx = Txn::begin(conn)?;
    let node = head.get(&tx)?;
    let needed = write_batch::needed(writes);
    let stored = needed
        .keys
        .iter()
        .map(|key| match read::row(&tx, key) {
            Ok(Some((version, state))) => Ok(StoredRecord::decode(&state, version)),
            Ok(None) => Ok(Ok(StoredRecord::default())),
            // A row that does not read refuses the writes of its record
            // only, as on IndexedDB; a failure of SQLite fails them all.
            Err(error @ WebError::Corrupt(_)) => Ok(Err(error)),
            Err(error) => Err(error),
        })
        .collect::<Result<Vec<_>, WebError>>()?;
    let decided = write_batch::decide(node, stored, &needed, writes, now_ms);
    let Some(meta) = decided.meta else {
        // Nothing to store: the transaction ends without a commit.
        return Ok(decided.outcomes);
    };
    for row in &decided.rows {
        let key = &needed.keys[needed.of_write[row.write]];
        put_row(&tx, key, row.version, &row.encoded)?;
    }
    // No metadata stored: the rows carry the log head and the clock (head.rs).
    tx.commit()?;
    head.committed(meta);
    Ok(decided.outcomes)
}
