//! Partial-replica messages in the sans-IO session: each side's filters
//! reach the other before its catch-up request (so the sender knows them
//! before it serves a read), a `Leave` the store names goes just before the
//! chunk it was read with, and a peer without the negotiated feature is
//! never sent filters.

use shoal_core::partial::PartialFilters;
use shoal_core::sync::version::Feature;
use shoal_core::sync::{
    Action, FeatureSet, GroupKey, Offer, ReadPurpose, Role, Session, SyncConfig,
};
use shoal_core::{CollectionName, LogPosition, LogRead, RecordId, SyncCursor};

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

fn notes() -> CollectionName {
    CollectionName::new("notes").unwrap()
}

/// Runs the handshake; returns every non-frame action each side produced,
/// in order, and the frames still in flight.
fn shake(a: &mut Session, b: &mut Session) -> (Vec<Action>, Vec<Action>) {
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let (mut to_b, mut to_a) = (a.start(0), b.start(0));
    for _ in 0..6 {
        let mut back = Vec::new();
        for action in std::mem::take(&mut to_b) {
            if let Action::Send(frame) = action {
                for out in b.handle_payload(&frame[4..], 0) {
                    match out {
                        Action::Send(_) => back.push(out),
                        other => seen_b.push(other),
                    }
                }
            }
        }
        let mut forth = Vec::new();
        for action in std::mem::take(&mut to_a) {
            if let Action::Send(frame) = action {
                for out in a.handle_payload(&frame[4..], 0) {
                    match out {
                        Action::Send(_) => forth.push(out),
                        other => seen_a.push(other),
                    }
                }
            }
        }
        to_a = back;
        to_b = forth;
    }
    (seen_a, seen_b)
}

#[test]
fn filters_arrive_before_the_catch_up_they_govern() {
    let (mut a, mut b) = (
        session(Role::Dialer, 1, 2, Offer::current()),
        session(Role::Listener, 2, 1, Offer::current()),
    );
    let mut filters = PartialFilters::default();
    filters.set(notes(), r#"owner = "bo""#).unwrap();
    a.set_own_filters(&filters);
    let (_, seen_b) = shake(&mut a, &mut b);
    let got = seen_b
        .iter()
        .position(|x| matches!(x, Action::PeerFilters { filters: f } if *f == filters))
        .expect("B got A's filters");
    let served = seen_b
        .iter()
        .position(|x| {
            matches!(
                x,
                Action::ReadChanges {
                    purpose: ReadPurpose::Serve,
                    ..
                }
            )
        })
        .expect("B serves A's catch-up");
    assert!(
        got < served,
        "filters must be known before the first read: {seen_b:?}"
    );
}

#[test]
fn a_leave_goes_just_before_its_chunk() {
    let (mut a, mut b) = (
        session(Role::Dialer, 1, 2, Offer::current()),
        session(Role::Listener, 2, 1, Offer::current()),
    );
    let (seen_a, seen_b) = shake(&mut a, &mut b);
    assert!(
        seen_a
            .iter()
            .any(|x| matches!(x, Action::PeerFilters { filters } if filters.is_empty()))
    );
    let after = seen_b
        .iter()
        .find_map(|x| match x {
            Action::ReadChanges { after, .. } => Some(*after),
            _ => None,
        })
        .expect("a read to answer");
    let gone = (notes(), RecordId::new("n1").unwrap());
    let read = LogRead {
        changes: Vec::new(),
        upto: LogPosition::default(),
        partial: None,
        more: false,
        leaves: vec![gone.clone()],
        held_back: Default::default(),
    };
    let out = b.changes_read(ReadPurpose::Serve, after, read, 0);
    let frames: Vec<_> = out
        .iter()
        .filter_map(|x| match x {
            Action::Send(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 2, "{out:?}");
    let mut got = Vec::new();
    for frame in frames {
        got.extend(a.handle_payload(&frame[4..], 0));
    }
    let leave = got
        .iter()
        .position(|x| matches!(x, Action::Leave { records } if records == &vec![gone.clone()]));
    let apply = got
        .iter()
        .position(|x| matches!(x, Action::CaughtUp { .. } | Action::Apply { .. }));
    assert!(leave.is_some() && leave < apply, "{got:?}");
}

#[test]
fn a_peer_without_the_feature_is_never_sent_filters() {
    let without = Feature::ALL
        .iter()
        .filter(|f| **f != Feature::PartialReplica)
        .fold(FeatureSet::NONE, |s, f| s.with(*f));
    let old = Offer {
        features: without,
        ..Offer::current()
    };
    let (mut a, mut b) = (
        session(Role::Dialer, 1, 2, old),
        session(Role::Listener, 2, 1, Offer::current()),
    );
    let mut filters = PartialFilters::default();
    filters.set(notes(), r#"owner = "bo""#).unwrap();
    a.set_own_filters(&filters);
    let (seen_a, seen_b) = shake(&mut a, &mut b);
    assert!(a.is_authenticated() && b.is_authenticated());
    assert!(!a.filters_sent() && !b.filters_sent());
    assert!(
        !seen_b
            .iter()
            .any(|x| matches!(x, Action::PeerFilters { .. }))
    );
    assert!(
        !seen_a
            .iter()
            .any(|x| matches!(x, Action::PeerFilters { .. }))
    );
}

#[test]
fn a_filtered_listing_is_asked_only_of_a_peer_with_the_feature() {
    use shoal_core::sync::RequestError;
    use shoal_core::sync::federation::Request;
    let listing = || Request::Filtered {
        collection: notes(),
        after: None,
    };
    // Both current: the request goes and the peer is asked to serve it.
    let (mut a, mut b) = (
        session(Role::Dialer, 1, 2, Offer::current()),
        session(Role::Listener, 2, 1, Offer::current()),
    );
    shake(&mut a, &mut b);
    assert!(a.can_request(&listing()));
    let (_, out) = a.request(listing(), 0).expect("sent");
    let mut served = Vec::new();
    for action in out {
        if let Action::Send(frame) = action {
            served.extend(b.handle_payload(&frame[4..], 0));
        }
    }
    assert!(
        served
            .iter()
            .any(|x| matches!(x, Action::Serve { request, .. } if *request == listing())),
        "{served:?}"
    );
    assert!(!b.is_closed());
    // A peer without filtered-report (an older build): never sent, and
    // the caller is told why.
    let without = Feature::ALL
        .iter()
        .filter(|f| **f != Feature::FilteredReport)
        .fold(FeatureSet::NONE, |s, f| s.with(*f));
    let old = Offer {
        features: without,
        ..Offer::current()
    };
    let (mut a, mut b) = (
        session(Role::Dialer, 1, 2, Offer::current()),
        session(Role::Listener, 2, 1, old),
    );
    shake(&mut a, &mut b);
    assert!(a.is_authenticated());
    assert!(!a.can_request(&listing()));
    assert_eq!(
        a.request(listing(), 0).map(|_| ()),
        Err(RequestError::Unsupported(Feature::FilteredReport))
    );
    assert_eq!(
        RequestError::Unsupported(Feature::FilteredReport).to_string(),
        "the peer's build does not have the filtered-report feature"
    );
}
