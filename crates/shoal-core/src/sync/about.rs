//! The session's side of version negotiation: what the hellos settled
//! (readable by the driver for the peer table) and the messages that
//! belong to a feature — handled only when the feature was agreed, a
//! protocol violation otherwise.
//!
//! Deciding compatibility is `version.rs`'s; this file only keeps and
//! acts on its outcome.

use super::action::Action;
use super::message::Rejection;
use super::session::Session;
use super::version::{Agreed, Feature, Incompatible, MAX_SOFTWARE_LEN};

impl Session {
    /// The version and features agreed with the peer (once its hello arrived).
    pub fn agreed(&self) -> Option<Agreed> {
        self.negotiation.agreed
    }

    /// Why this node and the peer cannot talk, if their hellos said so
    /// (the session then closed with `UnsupportedVersion`).
    pub fn incompatible(&self) -> Option<Incompatible> {
        self.negotiation.incompatible
    }

    /// The Shoal build the peer said it runs ([`Feature::About`]).
    pub fn peer_software(&self) -> Option<&str> {
        self.negotiation.peer_software.as_deref()
    }

    /// Whether `feature` may be used with this peer.
    pub(super) fn uses(&self, feature: Feature) -> bool {
        self.negotiation.agreed.is_some_and(|a| a.has(feature))
    }

    pub(super) fn on_about(&mut self, software: String, out: &mut Vec<Action>) {
        if !self.uses(Feature::About) || self.negotiation.peer_software.is_some() {
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        let mut software = software;
        if software.len() > MAX_SOFTWARE_LEN {
            let mut end = MAX_SOFTWARE_LEN;
            while !software.is_char_boundary(end) {
                end -= 1;
            }
            software.truncate(end);
        }
        self.negotiation.peer_software = Some(software);
    }
}
