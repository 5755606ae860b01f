//! The page size a listing or a query may ask for: at most
//! [`MAX_QUERY_LIMIT`] records, and at least one ([`check_limit`]).
//!
//! Shared by `read.rs` (listing) and `query.rs` (queries), so neither
//! imports the other for it. It reads and stores nothing.

use crate::error::StoreError;

/// Largest `limit` a query (or a listing) may ask for.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// Refuses a page size outside 1..=[`MAX_QUERY_LIMIT`].
pub(crate) fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit == 0 || limit > MAX_QUERY_LIMIT {
        return Err(StoreError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_QUERY_LIMIT}, got {limit}"
        )));
    }
    Ok(())
}
