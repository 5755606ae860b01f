//! The time sweep of a partial replica: records of a collection whose own
//! filter compares with `now` (`date >= now-30d`) can stop matching by time
//! passing alone, with no change a sending peer would name in a `Leave`.
//! The device re-evaluates those filters locally and drops what no longer
//! matches, by the rule narrowing a filter uses (`partial.rs`
//! [`Store::drop_outside`]: no delete, no tombstone, no log entry; a record
//! with a write of its own no peer may have yet is kept).
//!
//! A pass is paged (at most [`AGE_OUT_PAGE`] records read per step) so a
//! caller can release the store between steps; this file only walks the
//! collections and pages. Pacing (how often) is the node's
//! (`shoal-net`'s `age_out.rs`). Records that *start* matching by time
//! passing (`date <= now`) are not fetched by it: see `docs/partial.md`.

use crate::Store;
use crate::error::StoreError;
use crate::partial::OUTSIDE_PAGE;
use shoal_core::{CollectionName, RecordId};

/// Most records one [`Store::age_out_step`] reads.
pub const AGE_OUT_PAGE: usize = OUTSIDE_PAGE;

/// One sweep of this node's time-relative filters, at one `now`, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeOutPass {
    now_ms: u64,
    collections: Vec<CollectionName>,
    at: usize,
    after: Option<RecordId>,
    dropped: usize,
}

impl AgeOutPass {
    /// Records dropped so far by this pass.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The collections this pass sweeps: those whose own filter uses `now`
    /// when it started.
    pub fn collections(&self) -> &[CollectionName] {
        &self.collections
    }
}

impl Store {
    /// Starts a sweep at `now_ms` (Unix milliseconds, what `now` in the
    /// filters reads) of the collections whose own filter mentions `now`.
    pub fn age_out_pass(&self, now_ms: u64) -> Result<AgeOutPass, StoreError> {
        let filters = self.own_filters()?;
        let collections = filters
            .to_texts()
            .into_iter()
            .map(|(collection, _)| collection)
            .filter(|c| filters.get(c).is_some_and(|f| f.uses_now()))
            .collect();
        Ok(AgeOutPass {
            now_ms,
            collections,
            at: 0,
            after: None,
            dropped: 0,
        })
    }

    /// One step of `pass`: reads at most [`AGE_OUT_PAGE`] records of the
    /// collection it is at and drops those its filter (as set now: a filter
    /// changed or removed since the pass started is honoured) no longer
    /// admits. Returns whether there is more to do.
    pub fn age_out_step(&mut self, pass: &mut AgeOutPass) -> Result<bool, StoreError> {
        let Some(collection) = pass.collections.get(pass.at).cloned() else {
            return Ok(false);
        };
        let filters = self.own_filters()?;
        let next = match filters.get(&collection) {
            Some(filter) if filter.uses_now() => {
                let page = self.drop_outside(
                    &filters,
                    &collection,
                    pass.after.as_ref(),
                    pass.now_ms,
                    AGE_OUT_PAGE,
                )?;
                pass.dropped += page.dropped;
                page.next
            }
            // No longer filtered by time: nothing to sweep.
            _ => None,
        };
        match next {
            Some(after) => pass.after = Some(after),
            None => {
                pass.at += 1;
                pass.after = None;
            }
        }
        Ok(pass.at < pass.collections.len())
    }

    /// A whole sweep at `now_ms` in one call (see [`Store::age_out_step`]):
    /// drops, locally, the held records of collections filtered with `now`
    /// that no longer match. Returns how many were dropped.
    pub fn age_out(&mut self, now_ms: u64) -> Result<usize, StoreError> {
        let mut pass = self.age_out_pass(now_ms)?;
        while self.age_out_step(&mut pass)? {}
        Ok(pass.dropped)
    }
}

#[cfg(test)]
mod tests;
