//! The session's side of partial replicas ([`Feature::PartialReplica`]):
//! sending this node's filters right after authentication, taking the
//! peer's (checked and bounded) for the driver to enforce, and the
//! `Leave` notices either way.
//!
//! What a filter means is `crate::partial`'s; which records a read covers
//! and which leave is the store's. This file only carries them.

use super::action::Action;
use super::message::{MAX_LEAVE, Message, Rejection};
use super::session::Session;
use super::version::Feature;
use crate::ids::{CollectionName, RecordId};
use crate::partial::PartialFilters;

impl Session {
    /// Sets the filters this node takes records by (empty: a full replica),
    /// sent to the peer once authenticated. Call before [`Session::start`];
    /// a peer without [`Feature::PartialReplica`] never gets them and sends
    /// everything (see `docs/partial.md`).
    pub fn set_own_filters(&mut self, filters: &PartialFilters) {
        self.own_filters = filters.to_texts();
    }

    /// Whether the peer was told this node's filters (both offered the feature).
    pub fn filters_sent(&self) -> bool {
        self.uses(Feature::PartialReplica)
    }

    pub(super) fn send_filters(&mut self, out: &mut Vec<Action>) {
        if self.uses(Feature::PartialReplica) {
            let filters = self.own_filters.clone();
            self.send(Message::Filters { filters }, out);
        }
    }

    pub(super) fn on_filters(
        &mut self,
        filters: Vec<(CollectionName, String)>,
        out: &mut Vec<Action>,
    ) {
        if !self.uses(Feature::PartialReplica) {
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        match PartialFilters::from_texts(&filters) {
            Ok(filters) => out.push(Action::PeerFilters { filters }),
            // A filter this build cannot read: refuse rather than send
            // records the peer did not ask for.
            Err(_) => self.close(Rejection::ProtocolViolation, true, out),
        }
    }

    pub(super) fn on_leave(
        &mut self,
        records: Vec<(CollectionName, RecordId)>,
        out: &mut Vec<Action>,
    ) {
        if !self.uses(Feature::PartialReplica) || records.len() > MAX_LEAVE {
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        out.push(Action::Leave { records });
    }

    pub(super) fn send_leaves(
        &mut self,
        leaves: Vec<(CollectionName, RecordId)>,
        out: &mut Vec<Action>,
    ) {
        if leaves.is_empty() || !self.uses(Feature::PartialReplica) {
            return;
        }
        for records in leaves.chunks(MAX_LEAVE) {
            let records = records.to_vec();
            self.send(Message::Leave { records }, out);
        }
    }
}
