//! Clocks: the hybrid logical clock, the per-field [`Clock`] (HLC + site id)
//! whose total order decides every merge, and the record's causal length
//! ([`Life`]).
//!
//! Time only enters as an argument (`now_ms`); this module never reads the
//! system clock, so it can be driven by a simulation.

use crate::error::CoreError;
use crate::ids::SiteId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Default largest distance a remote clock may be ahead of local wall time: 5 minutes.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 5 * 60 * 1000;

const COUNTER_BITS: u32 = 16;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

/// A hybrid logical clock reading: wall milliseconds (48 bits) and a logical
/// counter (16 bits), packed so that integer order is clock order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Hlc(u64);

impl Hlc {
    /// The greatest reading (never a real clock's: its wall time is far past
    /// any drift bound).
    pub const MAX: Hlc = Hlc(u64::MAX);

    /// Builds a reading from its parts; the counter is truncated to 16 bits.
    pub fn new(wall_ms: u64, counter: u16) -> Self {
        Self((wall_ms << COUNTER_BITS) | u64::from(counter))
    }

    /// Rebuilds a reading from its packed form (as stored).
    pub fn from_packed(packed: u64) -> Self {
        Self(packed)
    }

    /// The packed form: `wall_ms << 16 | counter`.
    pub fn packed(self) -> u64 {
        self.0
    }

    /// Wall-clock milliseconds since the Unix epoch.
    pub fn wall_ms(self) -> u64 {
        self.0 >> COUNTER_BITS
    }

    /// Logical counter within the millisecond.
    pub fn counter(self) -> u16 {
        (self.0 & COUNTER_MASK) as u16
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms(), self.counter())
    }
}

/// Issues local HLC readings and absorbs remote ones (the Lamport rule).
///
/// ```
/// use shoal_core::{Hlc, HlcGenerator};
/// let mut clock = HlcGenerator::new(Hlc::default(), 60_000);
/// let a = clock.tick(1_000);
/// let b = clock.tick(1_000); // same millisecond: the counter moves
/// assert!(b > a);
/// clock.observe(Hlc::new(5_000, 3), 1_000).unwrap(); // a peer is 4 s ahead
/// assert!(clock.tick(1_001) > Hlc::new(5_000, 3));
/// assert!(clock.observe(Hlc::new(1_000_000, 0), 1_000).is_err()); // too far ahead
/// ```
#[derive(Debug, Clone)]
pub struct HlcGenerator {
    last: Hlc,
    max_drift_ms: u64,
}

impl HlcGenerator {
    /// Starts from `last` (the highest reading already used or seen) with the given drift bound.
    pub fn new(last: Hlc, max_drift_ms: u64) -> Self {
        Self { last, max_drift_ms }
    }

    /// The highest reading issued or observed so far.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// Issues a reading strictly greater than every earlier one.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        let next = if now_ms > self.last.wall_ms() {
            Hlc::new(now_ms, 0)
        } else if self.last.counter() == u16::MAX {
            Hlc::new(self.last.wall_ms() + 1, 0)
        } else {
            Hlc(self.last.0 + 1)
        };
        self.last = next;
        next
    }

    /// Changes the drift bound for later checks.
    pub fn set_max_drift_ms(&mut self, max_drift_ms: u64) {
        self.max_drift_ms = max_drift_ms;
    }

    /// The drift bound: how far ahead of local time a remote reading may be.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// Makes later readings order after `floor` (a reading already used, e.g.
    /// by another process writing the same database).
    pub fn raise_to(&mut self, floor: Hlc) {
        self.last = self.last.max(floor);
    }

    /// Checks that a remote reading is not too far ahead of `now_ms`, without absorbing it.
    pub fn check(&self, remote: Hlc, now_ms: u64) -> Result<(), CoreError> {
        let limit = now_ms.saturating_add(self.max_drift_ms);
        if remote.wall_ms() > limit {
            return Err(CoreError::ClockTooFarAhead {
                wall_ms: remote.wall_ms(),
                ahead_ms: remote.wall_ms() - now_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        Ok(())
    }

    /// Absorbs a remote reading so later local readings order after it.
    /// Readings too far ahead of `now_ms` are refused and not absorbed.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<(), CoreError> {
        self.check(remote, now_ms)?;
        self.last = self.last.max(remote);
        Ok(())
    }
}

/// The clock a field version carries: ordered by HLC, then by site id, which
/// makes the order total and the same on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Clock {
    /// When it was written.
    pub hlc: Hlc,
    /// Who wrote it.
    pub site: SiteId,
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.hlc, self.site)
    }
}

/// A record's causal length: odd means alive, even means deleted, 0 means the
/// record never existed here.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Life(pub u64);

impl Life {
    /// The highest life a change may carry. Each delete or re-create adds
    /// one, so no real record comes near it; a peer's change past it is
    /// malformed, which keeps [`deleted`](Self::deleted) and
    /// [`recreated`](Self::recreated) from overflowing.
    pub const MAX: Life = Life(1 << 62);

    /// Whether the record is alive in this life.
    pub fn is_alive(self) -> bool {
        self.0 % 2 == 1
    }

    /// The life a delete moves an alive record to.
    pub fn deleted(self) -> Life {
        if self.is_alive() {
            Life(self.0.saturating_add(1))
        } else {
            self
        }
    }

    /// The life a (re-)create moves a dead or absent record to.
    pub fn recreated(self) -> Life {
        if self.is_alive() {
            self
        } else {
            Life(self.0.saturating_add(1))
        }
    }
}

impl fmt::Display for Life {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_overflow_moves_wall() {
        let mut g = HlcGenerator::new(Hlc::new(10, u16::MAX), 1000);
        let next = g.tick(5);
        assert_eq!((next.wall_ms(), next.counter()), (11, 0));
    }

    #[test]
    fn clock_order_is_hlc_then_site() {
        let a = Clock {
            hlc: Hlc::new(1, 0),
            site: SiteId(9),
        };
        let b = Clock {
            hlc: Hlc::new(1, 1),
            site: SiteId(1),
        };
        let c = Clock {
            hlc: Hlc::new(1, 1),
            site: SiteId(2),
        };
        assert!(a < b && b < c);
    }

    #[test]
    fn life_transitions() {
        assert_eq!(Life(0).recreated(), Life(1));
        assert_eq!(Life(1).deleted(), Life(2));
        assert_eq!(Life(2).deleted(), Life(2));
        assert_eq!(Life(2).recreated(), Life(3));
        assert!(!Life(0).is_alive());
    }
}
