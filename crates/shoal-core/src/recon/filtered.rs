//! The integrity report of a filtered collection (a partial replica's,
//! `docs/partial.md`): instead of the tree walk — whose fingerprints
//! would cover records outside the filter — the full peer lists, in id
//! order and in bounded pages, the (id, digest, flags) of the records its
//! filter for this node admits, and this side compares each page with its
//! own records of the same id range.
//!
//! [`FilteredWalk`] is the requesting side's state machine: which `after`
//! to ask next, checking every page (ids in order and in range, bounded,
//! progress made) and comparing it. The local side is a [`FilteredView`];
//! nothing here touches storage or the network.

use super::initiator::compare_into;
use super::step::{Item, Outcome, ReconLimits};
use crate::ids::RecordId;
use crate::sync::federation::{MAX_FILTERED_ITEMS, MAX_FILTERED_SCAN};

/// The local replica's side of one filtered collection.
pub trait FilteredView {
    /// What reading the replica can fail with.
    type Error;

    /// The records held here with ids in `(after, upto]` (to the end when
    /// `upto` is `None`) that this node's filter admits, in id order, at
    /// most `limit` of them.
    fn admitted(
        &mut self,
        after: Option<&RecordId>,
        upto: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<Item>, Self::Error>;

    /// The records held here among `ids`, whatever their state (admitted
    /// by the filter here or not, deleted included).
    fn held(&mut self, ids: &[RecordId]) -> Result<Vec<Item>, Self::Error>;
}

/// Why a filtered report was abandoned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilteredError<E> {
    /// Reading the local replica failed.
    #[error("reading the local replica failed: {0}")]
    Local(E),
    /// The listing did not end within the round-trip bound.
    #[error("the filtered listing did not finish within {0} round trips")]
    TooManyRounds(u32),
    /// The peer's page broke the protocol.
    #[error("the peer's filtered listing is out of protocol: {0}")]
    BadAnswer(&'static str),
}

/// What the two sides held of the records the filter covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilteredCounts {
    /// Records the peer listed (its records the filter admits).
    pub peer_admitted: u64,
    /// Records held here that the filter admits here.
    pub local_admitted: u64,
}

/// The requesting side of a filtered report. See the module docs.
#[derive(Debug)]
pub struct FilteredWalk {
    limits: ReconLimits,
    /// The page to ask next starts after this id.
    after: Option<RecordId>,
    asked: bool,
    done: bool,
    outcome: Outcome,
    counts: FilteredCounts,
}

impl FilteredWalk {
    /// Starts a report; differences are kept up to
    /// [`ReconLimits::max_differences`] (counted past it), and the listing
    /// is abandoned past [`ReconLimits::max_round_trips`].
    pub fn new(limits: ReconLimits) -> Self {
        Self {
            limits,
            after: None,
            asked: false,
            done: false,
            outcome: Outcome::default(),
            counts: FilteredCounts::default(),
        }
    }

    /// The `after` of the next page to ask for, or `None` once the listing
    /// is complete (or a page is still unanswered).
    pub fn next_request(&mut self) -> Option<Option<RecordId>> {
        if self.done || self.asked {
            return None;
        }
        self.asked = true;
        self.outcome.round_trips += 1;
        Some(self.after.clone())
    }

    /// Takes the peer's page — `items` in `(after, next]`, `next` `None`
    /// at the end — and compares it with this replica's records of the
    /// same range.
    pub fn receive<V: FilteredView>(
        &mut self,
        view: &mut V,
        mut items: Vec<Item>,
        next: Option<RecordId>,
    ) -> Result<(), FilteredError<V::Error>> {
        if !self.asked {
            return Err(FilteredError::BadAnswer("a page that was not asked for"));
        }
        self.asked = false;
        if items.len() > MAX_FILTERED_ITEMS {
            return Err(FilteredError::BadAnswer("more records than one page holds"));
        }
        let after = self.after.clone();
        if let (Some(next), Some(after)) = (&next, &after)
            && next <= after
        {
            return Err(FilteredError::BadAnswer("a page that does not move on"));
        }
        let mut last = after.as_ref();
        for item in &items {
            if last.is_some_and(|l| &item.id <= l) {
                return Err(FilteredError::BadAnswer("ids out of order or out of range"));
            }
            last = Some(&item.id);
        }
        if let (Some(next), Some(last)) = (&next, last)
            && last > next
        {
            return Err(FilteredError::BadAnswer("a record past the page's end"));
        }
        // Our records of the range, bounded: if we hold more than one
        // page's worth there, compare only up to the last we read and
        // ask the peer again from there.
        let mut upto = next;
        let mut local = view
            .admitted(after.as_ref(), upto.as_ref(), MAX_FILTERED_SCAN)
            .map_err(FilteredError::Local)?;
        if local.len() >= MAX_FILTERED_SCAN
            && let Some(cut) = local.last().map(|i| i.id.clone())
        {
            items.retain(|i| i.id <= cut);
            upto = Some(cut);
        }
        self.counts.peer_admitted += items.len() as u64;
        self.counts.local_admitted += local.len() as u64;
        // What we hold of the records the peer listed, whether or not our
        // filter admits our state of them.
        let unlisted: Vec<RecordId> = items
            .iter()
            .filter(|i| local.binary_search_by(|l| l.id.cmp(&i.id)).is_err())
            .map(|i| i.id.clone())
            .collect();
        if !unlisted.is_empty() {
            local.extend(view.held(&unlisted).map_err(FilteredError::Local)?);
        }
        compare_into(
            &mut self.outcome,
            local,
            items,
            self.limits.max_differences,
            false,
        );
        match upto {
            Some(upto) => self.after = Some(upto),
            None => self.done = true,
        }
        if !self.done && self.outcome.round_trips >= self.limits.max_round_trips {
            return Err(FilteredError::TooManyRounds(self.outcome.round_trips));
        }
        Ok(())
    }

    /// Takes the differences found so far out of the outcome (counts
    /// stay): a report that repairs pulls them after every page, so memory
    /// stays bounded by one page.
    pub fn take_differences(&mut self) -> Vec<super::step::Difference> {
        std::mem::take(&mut self.outcome.differences)
    }

    /// Whether the listing is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Ends the report: the differences found and what each side holds.
    pub fn finish(self) -> (Outcome, FilteredCounts) {
        (self.outcome, self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::{ItemFlags, ShortDigest, Status};
    use std::collections::BTreeMap;

    /// One side's records: id → (digest byte, alive, admitted by the filter).
    #[derive(Default, Clone)]
    struct Side(BTreeMap<RecordId, (u8, bool, bool)>);

    fn item(id: &RecordId, (d, alive, _): (u8, bool, bool)) -> Item {
        Item {
            id: id.clone(),
            digest: ShortDigest([d; 8]),
            flags: ItemFlags {
                alive,
                assets_missing: false,
            },
        }
    }

    impl FilteredView for Side {
        type Error = ();
        fn admitted(
            &mut self,
            after: Option<&RecordId>,
            upto: Option<&RecordId>,
            limit: usize,
        ) -> Result<Vec<Item>, ()> {
            Ok(self
                .0
                .iter()
                .filter(|(id, _)| after.is_none_or(|a| *id > a) && upto.is_none_or(|u| *id <= u))
                .filter(|(_, r)| r.2)
                .take(limit)
                .map(|(id, r)| item(id, *r))
                .collect())
        }
        fn held(&mut self, ids: &[RecordId]) -> Result<Vec<Item>, ()> {
            Ok(ids
                .iter()
                .filter_map(|id| self.0.get(id).map(|r| item(id, *r)))
                .collect())
        }
    }

    /// The full side's answer, as the store gives it: a bounded scan.
    fn serve(full: &Side, after: Option<&RecordId>) -> (Vec<Item>, Option<RecordId>) {
        let scanned: Vec<_> = full
            .0
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| *id > a))
            .take(MAX_FILTERED_SCAN)
            .collect();
        let mut items = Vec::new();
        let mut next = None;
        for (n, (id, r)) in scanned.iter().enumerate() {
            if r.2 {
                items.push(item(id, **r));
            }
            if items.len() == MAX_FILTERED_ITEMS || n + 1 == MAX_FILTERED_SCAN {
                next = Some((*id).clone());
                break;
            }
        }
        (items, next)
    }

    fn run(full: &Side, partial: &mut Side) -> (Outcome, FilteredCounts) {
        let mut walk = FilteredWalk::new(ReconLimits::default());
        while let Some(after) = walk.next_request() {
            let (items, next) = serve(full, after.as_ref());
            walk.receive(partial, items, next).expect("page");
        }
        assert!(walk.is_done());
        walk.finish()
    }

    fn id(n: usize) -> RecordId {
        RecordId::new(format!("r{n:06}")).unwrap()
    }

    #[test]
    fn equal_subsets_agree_and_are_counted() {
        let mut full = Side::default();
        for n in 0..10_000 {
            full.0.insert(id(n), (n as u8, true, n % 3 == 0));
        }
        let mut partial = Side(
            full.0
                .iter()
                .filter(|(_, r)| r.2)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        );
        let (outcome, counts) = run(&full, &mut partial);
        assert_eq!(outcome.counts.total(), 0, "{:?}", outcome.differences);
        assert_eq!(counts.peer_admitted, 3334);
        assert_eq!(counts.local_admitted, 3334);
        assert!(outcome.round_trips >= 3, "{}", outcome.round_trips);
    }

    #[test]
    fn differences_inside_the_filter_are_found_and_outside_it_never() {
        let mut full = Side::default();
        for n in 0..100 {
            full.0.insert(id(n), (1, true, n % 2 == 0));
        }
        let mut partial = Side(
            full.0
                .iter()
                .filter(|(_, r)| r.2)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        );
        partial.0.remove(&id(4)); // the partial side lacks a match
        partial.0.insert(id(6), (2, true, true)); // diverged
        partial.0.insert(id(8), (1, true, false)); // held here, outside the filter here
        partial.0.insert(id(500), (1, true, true)); // only here
        full.0.insert(id(10), (1, true, false)); // left the filter there
        let (outcome, counts) = run(&full, &mut partial);
        let found: BTreeMap<_, _> = outcome
            .differences
            .iter()
            .map(|d| (d.id.clone(), d.status()))
            .collect();
        assert_eq!(found.get(&id(4)), Some(&Some(Status::PeerOnly)));
        assert_eq!(found.get(&id(6)), Some(&Some(Status::Diverged)));
        assert_eq!(found.get(&id(10)), Some(&Some(Status::LocalOnly)));
        assert_eq!(found.get(&id(500)), Some(&Some(Status::LocalOnly)));
        // id 8 is the same state on both: listed there, looked up here.
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found
                .keys()
                .all(|k| k == &id(500) || full.0.contains_key(k))
        );
        assert_eq!(counts.peer_admitted, 49);
    }

    #[test]
    fn many_records_held_only_here_are_compared_in_bounded_steps() {
        let full = Side::default();
        let mut partial = Side::default();
        for n in 0..(MAX_FILTERED_SCAN * 2 + 5) {
            partial.0.insert(id(n), (1, true, true));
        }
        let (outcome, counts) = run(&full, &mut partial);
        assert_eq!(
            outcome.counts.local_only,
            (MAX_FILTERED_SCAN * 2 + 5) as u64
        );
        assert_eq!(counts.local_admitted, (MAX_FILTERED_SCAN * 2 + 5) as u64);
        assert_eq!(outcome.round_trips, 3);
    }

    #[test]
    fn pages_out_of_protocol_are_refused() {
        let mut partial = Side::default();
        let page = |ids: &[usize]| -> Vec<Item> {
            ids.iter().map(|n| item(&id(*n), (1, true, true))).collect()
        };
        let cases: Vec<(Vec<Item>, Option<RecordId>, &str)> = vec![
            (page(&[2, 1]), None, "ids out of order or out of range"),
            (page(&[1, 1]), None, "ids out of order or out of range"),
            (page(&[1, 5]), Some(id(3)), "a record past the page's end"),
            (
                (0..=MAX_FILTERED_ITEMS)
                    .map(|n| item(&id(n), (1, true, true)))
                    .collect(),
                None,
                "more records than one page holds",
            ),
        ];
        for (items, next, why) in cases {
            let mut walk = FilteredWalk::new(ReconLimits::default());
            walk.next_request().expect("first");
            assert_eq!(
                walk.receive(&mut partial, items, next),
                Err(FilteredError::BadAnswer(why))
            );
        }
        // No progress: a second page that ends where the first did.
        let mut walk = FilteredWalk::new(ReconLimits::default());
        walk.next_request();
        walk.receive(&mut partial, page(&[1]), Some(id(3))).unwrap();
        assert_eq!(walk.next_request(), Some(Some(id(3))));
        assert_eq!(
            walk.receive(&mut partial, vec![], Some(id(3))),
            Err(FilteredError::BadAnswer("a page that does not move on"))
        );
        // Before the page's start, and unasked.
        let mut walk = FilteredWalk::new(ReconLimits::default());
        walk.next_request();
        walk.receive(&mut partial, vec![], Some(id(3))).unwrap();
        walk.next_request();
        assert_eq!(
            walk.receive(&mut partial, page(&[2]), None),
            Err(FilteredError::BadAnswer("ids out of order or out of range"))
        );
        assert_eq!(
            walk.receive(&mut partial, vec![], None),
            Err(FilteredError::BadAnswer("a page that was not asked for"))
        );
    }

    #[test]
    fn a_peer_that_never_ends_hits_the_round_trip_bound() {
        let mut partial = Side::default();
        let limits = ReconLimits {
            max_round_trips: 5,
            ..ReconLimits::default()
        };
        let mut walk = FilteredWalk::new(limits);
        let mut n = 0;
        let err = loop {
            let Some(_) = walk.next_request() else {
                panic!("ended")
            };
            n += 1;
            if let Err(e) = walk.receive(&mut partial, vec![], Some(id(n))) {
                break e;
            }
        };
        assert_eq!(err, FilteredError::TooManyRounds(5));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever both sides hold, the report finds exactly the
            /// records whose admitted state differs, never one the filter
            /// admits on neither side.
            #[test]
            fn the_report_is_the_difference_of_the_admitted_sets(
                full in proptest::collection::btree_map(0usize..300, (0u8..3, any::<bool>(), any::<bool>()), 0..200),
                here in proptest::collection::btree_map(0usize..300, (0u8..3, any::<bool>(), any::<bool>()), 0..200),
            ) {
                // A deleted record is never admitted.
                let side = |m: BTreeMap<usize, (u8, bool, bool)>| Side(m.into_iter().map(|(k, (d, a, f))| (id(k), (d, a, f && a))).collect());
                let (full, mut partial) = (side(full), side(here));
                let (outcome, counts) = run(&full, &mut partial);
                let mut expected = BTreeMap::new();
                let listed: Vec<&RecordId> = full.0.iter().filter(|(_, r)| r.2).map(|(k, _)| k).collect();
                for k in full.0.keys().chain(partial.0.keys()) {
                    let theirs = full.0.get(k).filter(|r| r.2).map(|r| item(k, *r));
                    let in_scope = theirs.is_some() || partial.0.get(k).is_some_and(|r| r.2);
                    if !in_scope {
                        continue;
                    }
                    let mine = partial.0.get(k).map(|r| item(k, *r));
                    let (m, t) = (mine.map(|i| (i.digest, i.flags)), theirs.map(|i| (i.digest, i.flags)));
                    if m != t {
                        expected.insert(k.clone(), ());
                    }
                }
                let found: BTreeMap<RecordId, ()> = outcome.differences.iter().map(|d| (d.id.clone(), ())).collect();
                prop_assert_eq!(found, expected);
                prop_assert_eq!(counts.peer_admitted, listed.len() as u64);
                prop_assert_eq!(counts.local_admitted, partial.0.values().filter(|r| r.2).count() as u64);
            }
        }
    }
}
