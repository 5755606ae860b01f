//! What a reconciliation walk with a peer found for one collection
//! ([`Reconciliation`], the integrity report's answer) and what a walk does
//! with the differences it meets ([`OnDifference`]).
//!
//! Types only: the tree walk is `federate.rs`'s, the walk over a partial
//! replica's filter `filtered_report.rs`'s.

use shoal_core::CollectionName;
use shoal_core::recon::{FilteredCounts, Outcome};

/// What an integrity check between this node and a peer found for one collection.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    /// The collection.
    pub collection: CollectionName,
    /// Differences, counts per status, round trips.
    pub outcome: Outcome,
    /// For a collection this node or the peer takes only part of (a
    /// partial replica's filter): the report compared only what that
    /// filter covers on each side, and these are the counts of records
    /// compared. `None`: a tree walk over the whole collection.
    pub filtered: Option<FilteredCounts>,
    /// Application payload bytes, both directions.
    pub bytes: u64,
}

/// What a walk does with the differences it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDifference {
    /// Keep them in the outcome (the integrity report).
    Report,
    /// Pull, after each step, every record where the peer holds state we
    /// lack (anti-entropy); memory stays bounded by one step.
    Pull,
}
