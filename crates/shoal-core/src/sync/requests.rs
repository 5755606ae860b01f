//! Federation requests within a [`Session`]: sending ours with fresh ids and
//! a timeout, handing the peer's to the driver to serve, matching answers to
//! what was asked — and holding the first catch-up while the driver
//! reconciles a replica that lost its cursor.
//!
//! The session only carries requests; what they mean is the store's and the
//! node's business.

use super::action::Action;
use super::federation::{Request, RequestId, Response};
use super::message::{Message, Rejection};
use super::session::Session;
use super::version::Feature;
use crate::change::SyncCursor;

/// Most of our requests unanswered at once.
pub const MAX_OUTSTANDING: usize = 64;

/// Why a request could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The session is not (or no longer) authenticated.
    #[error("the peer is not connected")]
    NotReady,
    /// Too many requests are already waiting for answers.
    #[error("too many requests in flight")]
    Busy,
    /// The request belongs to a feature the peer did not offer (an older
    /// build): it is never sent.
    #[error("the peer's build does not have the {} feature", .0.name())]
    Unsupported(Feature),
}

/// The features a request needs agreed, beyond the base protocol.
fn needs(request: &Request) -> &'static [Feature] {
    match request {
        Request::Filtered { .. } => &[Feature::PartialReplica, Feature::FilteredReport],
        Request::Collections
        | Request::Reconcile { .. }
        | Request::Fetch { .. }
        | Request::Offer { .. }
        | Request::Level { .. } => &[],
    }
}

impl Session {
    /// Sends a federation request; its answer comes back as
    /// [`Action::Answer`] (or [`Action::Unanswered`] after the request timeout).
    pub fn request(
        &mut self,
        body: Request,
        now_ms: u64,
    ) -> Result<(RequestId, Vec<Action>), RequestError> {
        if !self.is_authenticated() {
            return Err(RequestError::NotReady);
        }
        if let Some(missing) = needs(&body).iter().find(|f| !self.uses(**f)) {
            return Err(RequestError::Unsupported(*missing));
        }
        if self.outstanding.len() >= MAX_OUTSTANDING {
            return Err(RequestError::Busy);
        }
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        self.outstanding.insert(id, now_ms);
        let mut out = Vec::new();
        self.send(Message::Request { id, body }, &mut out);
        Ok((id, out))
    }

    /// Whether this session can carry `request` (every feature it needs
    /// was agreed).
    pub fn can_request(&self, request: &Request) -> bool {
        needs(request).iter().all(|f| self.uses(*f))
    }

    /// A request from the peer: handed to the driver to serve, unless it
    /// belongs to a feature not agreed (a protocol violation).
    pub(super) fn on_request(&mut self, id: RequestId, body: Request, out: &mut Vec<Action>) {
        if !self.can_request(&body) {
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        out.push(Action::Serve { id, request: body });
    }

    /// The driver served the peer's request `id` ([`Action::Serve`]).
    pub fn respond(&mut self, id: RequestId, body: Response) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_authenticated() {
            self.send(Message::Response { id, body }, &mut out);
        }
        out
    }

    pub(super) fn on_response(&mut self, id: RequestId, body: Response, out: &mut Vec<Action>) {
        if self.outstanding.remove(&id).is_some() {
            out.push(Action::Answer { id, response: body });
        } else if id.0 >= self.next_request {
            // Never asked: the peer is not following the protocol.
            self.close(Rejection::ProtocolViolation, true, out);
        }
        // Otherwise a late answer to a request that already timed out.
    }

    pub(super) fn expire_requests(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let timeout = self.config.request_timeout_ms;
        let expired: Vec<RequestId> = self
            .outstanding
            .iter()
            .filter(|(_, since)| now_ms.saturating_sub(**since) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.outstanding.remove(&id);
            out.push(Action::Unanswered { id });
        }
    }

    /// Holds the catch-up a session starts once authenticated, until
    /// [`Session::fast_forward`]: for a replica that lost its cursor for this
    /// peer and reconciles first. Call before [`Session::start`].
    pub fn hold_catch_up(&mut self) {
        self.catch_up_held = true;
    }

    /// Ends the hold: the driver has made this replica hold everything the
    /// peer had at `cursor` (and persisted it); catch-up resumes from there.
    pub fn fast_forward(&mut self, cursor: SyncCursor, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.catch_up_held || self.is_closed() {
            return out;
        }
        self.catch_up_held = false;
        if cursor.reach() > self.cursor.reach() {
            self.cursor = cursor;
            self.expected = cursor;
            self.remote_head = self.remote_head.max(cursor.position);
        }
        if self.is_authenticated() {
            self.request_catch_up(now_ms, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CollectionName;
    use crate::sync::{FeatureSet, GroupKey, Offer, Role, SyncConfig};

    fn session(role: Role, local: u8, remote: u8, offer: Offer) -> Session {
        Session::new(
            role,
            vec![local],
            vec![remote],
            GroupKey::from_random([9; 32]),
            [local; 32],
            SyncCursor::default(),
            SyncConfig {
                offer,
                ..SyncConfig::default()
            },
        )
    }

    /// A authenticated with a peer offering `theirs`.
    fn authenticated(theirs: Offer) -> Session {
        let mut a = session(Role::Dialer, 1, 2, Offer::current());
        let mut b = session(Role::Listener, 2, 1, theirs);
        let (mut to_b, mut to_a) = (a.start(0), b.start(0));
        for _ in 0..6 {
            let mut back = Vec::new();
            for action in std::mem::take(&mut to_b) {
                if let Action::Send(frame) = action {
                    back.extend(b.handle_payload(&frame[4..], 0));
                }
            }
            let mut forth = Vec::new();
            for action in std::mem::take(&mut to_a) {
                if let Action::Send(frame) = action {
                    forth.extend(a.handle_payload(&frame[4..], 0));
                }
            }
            to_a = back;
            to_b = forth;
        }
        assert!(a.is_authenticated());
        a
    }

    fn listing() -> Request {
        Request::Filtered {
            collection: CollectionName::new("notes").unwrap(),
            after: None,
        }
    }

    #[test]
    fn a_request_of_a_feature_not_agreed_ends_the_session() {
        let without = Feature::ALL
            .iter()
            .filter(|f| **f != Feature::FilteredReport)
            .fold(FeatureSet::NONE, |s, f| s.with(*f));
        let mut a = authenticated(Offer {
            features: without,
            ..Offer::current()
        });
        let mut out = Vec::new();
        a.on_request(RequestId(1), listing(), &mut out);
        assert!(
            out.contains(&Action::Close {
                reason: Rejection::ProtocolViolation,
                by_peer: false
            }),
            "{out:?}"
        );
        // Agreed, it is served.
        let mut a = authenticated(Offer::current());
        let mut out = Vec::new();
        a.on_request(RequestId(1), listing(), &mut out);
        assert_eq!(
            out,
            vec![Action::Serve {
                id: RequestId(1),
                request: listing()
            }]
        );
    }
}
