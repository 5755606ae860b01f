//! Telling a concurrent overwrite from a sequential one: [`Conflict`].
//!
//! Every slot version carries `pred`, the clock of the version its writer
//! replaced (its own stored version of the slot, in the same life, when it
//! wrote). A replica keeps, per slot, the greatest version it has received,
//! so a writer that had seen a version `u` wrote with a `pred` at least as
//! great as `u`'s clock. Hence, when two versions of one slot in one life
//! meet in a merge, the lower one `lo` and the greater one `hi`:
//!
//! - `hi.pred` ≥ `lo.clock`: `hi`'s writer had seen `lo` (or something that
//!   replaced it) — sequential, or already settled where it happened; not a
//!   conflict here. In particular a replica that missed intermediate
//!   versions (a catch-up carries only the newest) sees no conflict;
//! - `hi.pred` < `lo.clock` (or `hi` replaced nothing): `hi`'s writer had
//!   not seen `lo` — the two were concurrent, and `lo`'s value is lost.
//!   Equal values lose nothing and are no conflict.
//!
//! A version whose predecessor is unknown — received from a peer that does
//! not send predecessors (a protocol-2 build, or one without the feature;
//! `sync/layout.rs`) — carries [`UNKNOWN_PRED`], which is greater than every
//! clock: as `hi` it counts as having seen `lo`, so no conflict is reported
//! (conservative: a concurrent overwrite that crossed such a peer may go
//! unjournalled, a sequential one is never journalled). It is kept and
//! forwarded with the version, so every replica treats it alike.
//!
//! Both replicas where the two versions meet see the same pair, so each
//! journals it once, whichever side's value lost (when one of them learnt
//! `hi` through a peer without predecessors, only the other may). This module decides that
//! and nothing else: it never changes the merge (the order is `(life,
//! clock)`, `merge.rs`) and knows nothing of storage or time.

use crate::change::Slot;
use crate::clock::{Clock, Hlc};
use crate::ids::SiteId;
use crate::slot_version::SlotVersion;

/// The `pred` of a version whose predecessor is unknown (it reached this
/// replica without one): the greatest clock, so its writer counts as having
/// seen every version it meets and no conflict is reported against it.
pub const UNKNOWN_PRED: Clock = Clock {
    hlc: Hlc::MAX,
    site: SiteId(u64::MAX),
};

/// A value lost to a concurrent one in one slot of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The field or map entry (never [`Slot::Life`]).
    pub slot: Slot,
    /// The version that won and is stored.
    pub kept: SlotVersion,
    /// The concurrent version that lost.
    pub lost: SlotVersion,
}

impl Conflict {
    /// The conflict between two versions of `slot` meeting in a merge, in
    /// either order, if they were concurrent and their values differ; `None`
    /// for the same version twice, versions of different lives (the life
    /// rule settles those) or a sequential pair.
    pub fn between(slot: &Slot, a: &SlotVersion, b: &SlotVersion) -> Option<Conflict> {
        if matches!(slot, Slot::Life) || a.life != b.life || a.clock == b.clock {
            return None;
        }
        let (lo, hi) = if a.clock < b.clock { (a, b) } else { (b, a) };
        let seen = hi.pred.is_some_and(|pred| pred >= lo.clock);
        (!seen && lo.value != hi.value).then(|| Conflict {
            slot: slot.clone(),
            kept: hi.clone(),
            lost: lo.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, Hlc, Life};
    use crate::ids::{FieldName, SiteId};
    use crate::value::CanonicalJson;

    fn clock(t: u64, site: u64) -> Clock {
        Clock {
            hlc: Hlc::new(t, 0),
            site: SiteId(site),
        }
    }
    fn version(v: &str, at: Clock, pred: Option<Clock>) -> SlotVersion {
        SlotVersion {
            value: Some(CanonicalJson::parse(v, 100).unwrap()),
            clock: at,
            life: Life(1),
            pred,
        }
    }
    fn title() -> Slot {
        Slot::Field(FieldName::new("title").unwrap())
    }

    #[test]
    fn concurrent_versions_conflict_in_either_order() {
        let base = clock(1, 1);
        let a = version("\"a\"", clock(5, 1), Some(base));
        let b = version("\"b\"", clock(6, 2), Some(base));
        let one = Conflict::between(&title(), &a, &b).unwrap();
        let other = Conflict::between(&title(), &b, &a).unwrap();
        assert_eq!(one, other);
        assert_eq!((one.kept, one.lost), (b, a));
    }

    #[test]
    fn a_writer_that_saw_the_value_is_sequential() {
        let a = version("\"a\"", clock(5, 1), None);
        let b = version("\"b\"", clock(6, 2), Some(a.clock));
        assert_eq!(Conflict::between(&title(), &a, &b), None);
        // Having seen something newer than `a` counts too (a replica that
        // missed the versions in between).
        let c = version("\"c\"", clock(9, 1), Some(clock(7, 3)));
        assert_eq!(Conflict::between(&title(), &a, &c), None);
    }

    #[test]
    fn an_unknown_predecessor_reports_nothing() {
        // `b` reached us from a peer without predecessors: whether its
        // writer had seen `a` is unknown, so nothing is journalled, in
        // either order; `a`'s unknown predecessor does not matter as `lo`.
        let a = version("\"a\"", clock(5, 1), Some(UNKNOWN_PRED));
        let b = version("\"b\"", clock(6, 2), Some(UNKNOWN_PRED));
        assert_eq!(Conflict::between(&title(), &a, &b), None);
        assert_eq!(Conflict::between(&title(), &b, &a), None);
        let known = version("\"c\"", clock(7, 3), None);
        assert!(Conflict::between(&title(), &a, &known).is_some());
    }

    #[test]
    fn no_conflict_without_a_loss() {
        let a = version("\"same\"", clock(5, 1), None);
        let b = version("\"same\"", clock(6, 2), None);
        assert_eq!(Conflict::between(&title(), &a, &b), None);
        assert_eq!(Conflict::between(&title(), &a, &a.clone()), None);
        let mut other_life = version("\"x\"", clock(7, 2), None);
        other_life.life = Life(3);
        assert_eq!(Conflict::between(&title(), &a, &other_life), None);
        assert_eq!(Conflict::between(&Slot::Life, &a, &b), None);
    }

    #[test]
    fn two_first_writes_of_a_field_conflict() {
        let a = version("1", clock(5, 1), None);
        let b = version("2", clock(5, 2), None);
        let c = Conflict::between(&title(), &a, &b).unwrap();
        assert_eq!(c.lost.clock.site, SiteId(1));
    }
}
