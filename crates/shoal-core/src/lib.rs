//! Shoal's pure core: identifiers, clocks, canonical values, change types and
//! the merge rules every replica applies.
//!
//! This crate owns the *semantics* of a Shoal replica and nothing else: it never
//! touches a file, a socket or the system clock (time always comes in as an
//! argument). The store (`shoal-store`) persists what this crate decides; the
//! network layer moves [`Change`]s between stores.
//!
//! The model, in short (see `docs/merge.md` in the repository):
//! - a record lives in a [`CollectionName`] under a [`RecordId`];
//! - each field is a [`Slot`] carrying its own [`Clock`] (hybrid logical clock +
//!   [`SiteId`]); the strictly newer clock wins, equal clocks are a no-op;
//! - a record has a causal length ([`Life`]): odd is alive, even is deleted, and
//!   a change written in an older life is ignored, so deletes never resurrect;
//! - map fields keep one slot per entry, so concurrent adds both survive.
#![deny(missing_docs)]

pub mod blob;
mod change;
mod clock;
pub mod conflict;
pub mod devices;
mod error;
mod field_names;
pub mod gc;
mod ids;
mod intent;
mod merge;
pub mod partial;
pub mod recon;
mod sharing;
mod slot_map;
mod slot_version;
pub mod sync;
mod value;

pub use change::{Change, DbVersion, LogPosition, LogRead, Slot, SyncCursor};
pub use clock::{Clock, DEFAULT_MAX_DRIFT_MS, Hlc, HlcGenerator, Life};
pub use conflict::Conflict;
pub use error::CoreError;
pub use field_names::FieldNames;
pub use ids::{CollectionName, FieldName, RecordId, SiteId, derive_id};
pub use intent::{Intent, Plan, plan, plan_naming};
pub use merge::{RecordState, Verdict};
pub use sharing::{ANY_PEER, Direction, HeldFlows, ShareMode, SharingRules};
pub use slot_version::SlotVersion;
pub use value::CanonicalJson;
