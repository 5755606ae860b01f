//! Partial replicas in the library API: the filters this store takes
//! records by (per collection), set before or between sessions. What a
//! filter means is `shoal_core::partial`'s; enforcing it is the sending
//! peer's store (`shoal_store`'s `partial.rs`). See `docs/partial.md`.

use crate::error::Error;
use crate::store::Store;
use shoal_core::CollectionName;
use shoal_core::partial::PartialFilters;

impl Store {
    /// Takes only the records of `collection` matching `filter` (e.g.
    /// `owner = "bo" and date >= now-30d`) from peers, from the next
    /// session on; `None` takes the whole collection again. A filter that
    /// does not parse is refused with the byte and the reason, and changes
    /// nothing. Records held here that do not match are dropped — never as
    /// deletes, so no peer loses them; one with a write of this store's own
    /// that some peer has not acknowledged stays — and every peer cursor is reset so
    /// records that now match arrive. Returns how many were dropped.
    pub fn set_partial_filter(
        &self,
        collection: &str,
        filter: Option<&str>,
    ) -> Result<usize, Error> {
        let collection = CollectionName::new(collection)?;
        self.with_db(|db| db.set_own_filter(&collection, filter))
    }

    /// Drops, locally, the held records of collections whose filter
    /// mentions `now` (`date >= now-30d`) that no longer match it now —
    /// records that aged out without changing, which no peer names in a
    /// `Leave`. Never as deletes (no peer loses them); a record with a write
    /// of this store's own that some peer has not acknowledged is kept. The
    /// store is taken a page of records at a time. A running node does this
    /// itself (`NodeConfig::age_out`). Returns how many were dropped.
    pub fn age_out_partial(&self) -> Result<usize, Error> {
        let now_ms = crate::now_ms();
        let mut pass = self.with_db(|db| db.age_out_pass(now_ms))?;
        while self.with_db(|db| db.age_out_step(&mut pass))? {}
        Ok(pass.dropped())
    }

    /// The filters this store takes records by (empty: a full replica).
    pub fn partial_filters(&self) -> Result<PartialFilters, Error> {
        self.with_db(|db| db.own_filters())
    }
}
