//! Native tests of the driver with the pure parts: two in-memory replicas
//! syncing through two real `Session`s over an in-memory pipe.

use crate::sync::driver::{
    Control, DEFAULT_TICK_MS, SessionEnd, SessionSpec, run_session, tab_sync_config,
};
use crate::sync::memory::{MemoryReplica, NativeTimer};
use crate::sync::pipe::{PipeEnd, duplex};
use crate::sync::replica::Timer;
use crate::sync::status::{PeerState, StatusCell};
use futures::executor::block_on;
use serde_json::json;
use shoal_core::Intent;
use shoal_core::sync::{GroupKey, Rejection, Role};
use std::future::Future;

fn put(value: serde_json::Value) -> Intent {
    Intent::Put(value.as_object().unwrap().clone())
}

fn spec(role: Role, local: &str, remote: &str, key: &GroupKey, seed: u8) -> SessionSpec {
    SessionSpec {
        role,
        local_peer: local.as_bytes().to_vec(),
        remote_peer: remote.as_bytes().to_vec(),
        peer: remote.to_string(),
        key: key.clone(),
        seed: [seed; 32],
        config: tab_sync_config(),
        tick_ms: DEFAULT_TICK_MS,
    }
}

/// One side of a pair of sessions.
struct Side<'a> {
    replica: &'a MemoryReplica,
    status: StatusCell,
    control: Control,
}

impl<'a> Side<'a> {
    fn new(replica: &'a MemoryReplica, peer: &str) -> Self {
        Side {
            replica,
            status: StatusCell::new(peer),
            control: Control::default(),
        }
    }
}

/// Runs sessions between `a` (dialer, peer id "a") and `b` (listener,
/// "b") over a fresh pipe while `test` runs; then stops both. Returns how
/// each ended and the bytes each wrote.
async fn pair<F: Future<Output = ()>>(
    a: &Side<'_>,
    b: &Side<'_>,
    keys: (&GroupKey, &GroupKey),
    test: F,
) -> ((SessionEnd, u64), (SessionEnd, u64)) {
    let (left, right): (PipeEnd, PipeEnd) = duplex();
    let (left_out, right_out) = (left.tap(), right.tap());
    let run_a = run_session(
        a.replica,
        &NativeTimer,
        spec(Role::Dialer, "a", "b", keys.0, 1),
        &a.status,
        &a.control,
        left,
    );
    let run_b = run_session(
        b.replica,
        &NativeTimer,
        spec(Role::Listener, "b", "a", keys.1, 2),
        &b.status,
        &b.control,
        right,
    );
    let stop = async {
        test.await;
        a.control.stop();
        b.control.stop();
    };
    let (end_a, end_b, ()) = futures::join!(run_a, run_b, stop);
    ((end_a, left_out()), (end_b, right_out()))
}

/// Waits (up to 10 s) until `done` holds.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        NativeTimer.sleep(10).await;
    }
    panic!("timed out waiting until {what}");
}

fn key() -> GroupKey {
    GroupKey::from_random([7; 32])
}

#[test]
fn writes_on_either_side_reach_the_other_and_edits_merge_field_by_field() {
    let (ra, rb) = (MemoryReplica::new(1), MemoryReplica::new(2));
    ra.write("notes", "n1", put(json!({"title": "a", "body": "x"})));
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let key = key();
    block_on(pair(&a, &b, (&key, &key), async {
        until("b has n1", || rb.get("notes", "n1").is_some()).await;
        assert!(a.status.get().caught_up || b.status.get().caught_up);
        // Live, both ways: a write on b reaches a.
        rb.write("notes", "n2", put(json!({"title": "from b"})));
        until("a has n2", || ra.get("notes", "n2").is_some()).await;
        assert_eq!(a.status.get().state, PeerState::Connected);
    }));
    assert_eq!(
        a.status.get().state,
        PeerState::Disconnected { error: None }
    );
    // Offline, each edits another field of n1; the next session merges both.
    ra.write(
        "notes",
        "n1",
        Intent::Patch(json!({"title": "A"}).as_object().unwrap().clone()),
    );
    rb.write(
        "notes",
        "n1",
        Intent::Patch(json!({"body": "Y"}).as_object().unwrap().clone()),
    );
    let expected = r#"{"body":"Y","title":"A"}"#;
    // (A stopped Control stays stopped: new ones for the next session.)
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    block_on(pair(&a, &b, (&key, &key), async {
        let merged = || {
            ra.get("notes", "n1").as_deref() == Some(expected)
                && rb.get("notes", "n1").as_deref() == Some(expected)
        };
        for _ in 0..300 {
            if merged() {
                break;
            }
            NativeTimer.sleep(10).await;
        }
        assert!(
            merged(),
            "a: {:?} b: {:?} status a {:?} b {:?}",
            ra.get("notes", "n1"),
            rb.get("notes", "n1"),
            a.status.get(),
            b.status.get()
        );
    }));
}

#[test]
fn a_new_session_resumes_from_the_cursor_and_resends_nothing() {
    let (ra, rb) = (MemoryReplica::new(1), MemoryReplica::new(2));
    for i in 0..5 {
        ra.write("notes", &format!("n{i}"), put(json!({"i": i})));
    }
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let key = key();
    block_on(pair(&a, &b, (&key, &key), async {
        until("b caught up", || b.status.get().caught_up).await;
        // a's cursor in b's log reaches its end too (b's merges of a's
        // changes are not sent back; the quiet push moves the cursor).
        until("a's cursor at b's head", || {
            ra.cursors.borrow().get("b").map(|c| c.base) == Some(rb.version())
        })
        .await;
    }));
    // Five records of two changes each (life and field).
    assert_eq!(b.status.get().stats.changes_in, 10);
    assert_eq!(rb.cursors.borrow().get("a").unwrap().base, ra.version());
    ra.write("notes", "n9", put(json!({"i": 9})));
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    block_on(pair(&a, &b, (&key, &key), async {
        until("b has n9", || rb.get("notes", "n9").is_some()).await;
        until("b caught up", || b.status.get().caught_up).await;
    }));
    assert_eq!(b.status.get().stats.changes_in, 2, "only the new record");
    // What b merged from a is not sent back to a (echoes).
    assert_eq!(a.status.get().stats.changes_in, 0);
}

#[test]
fn a_wrong_group_key_is_rejected_and_nothing_is_applied() {
    let (ra, rb) = (MemoryReplica::new(1), MemoryReplica::new(2));
    ra.write("notes", "n1", put(json!({"secret": true})));
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let other = GroupKey::from_random([8; 32]);
    let ((end_a, _), (end_b, _)) = block_on(pair(&a, &b, (&key(), &other), async {
        until("both ended", || {
            a.status.get().ended() && b.status.get().ended()
        })
        .await;
    }));
    assert!(rb.get("notes", "n1").is_none());
    assert_eq!(rb.version(), shoal_core::DbVersion(0));
    // The listener checks the dialer's proof and refuses it.
    assert_eq!(
        end_b,
        SessionEnd::Closed {
            reason: Rejection::WrongSecret,
            by_peer: false
        }
    );
    assert_eq!(
        end_a,
        SessionEnd::Closed {
            reason: Rejection::WrongSecret,
            by_peer: true
        }
    );
    assert_eq!(
        a.status.get().state,
        PeerState::Rejected {
            reason: Rejection::WrongSecret,
            by_peer: true
        }
    );
}

#[test]
fn a_peer_without_an_admission_is_refused_and_a_revocation_ends_a_running_session() {
    use shoal_core::devices::{
        Admission, DEVICES_COLLECTION, DeviceRole, OWNER_RECORD, OwnerKey, Revocation, Statement,
    };
    let owner = OwnerKey::from_seed([5; 32]);
    let statement = |s: Statement| {
        let signed = s.sign(&owner);
        (
            signed.statement.record_id(),
            put(json!({ "statement": signed.to_text() })),
        )
    };
    let admit = |device: &str| {
        statement(Statement::Admit(Admission {
            device: device.into(),
            role: DeviceRole::Member,
            collections: Default::default(),
            admitted_ms: 10,
            device_key: None,
            name: String::new(),
        }))
    };
    let (ra, rb) = (MemoryReplica::new(1), MemoryReplica::new(2));
    ra.write("notes", "n1", put(json!({"x": 1})));
    ra.write(
        DEVICES_COLLECTION,
        OWNER_RECORD,
        put(json!({ "key": owner.public().to_hex() })),
    );
    let key = key();
    // An owner, and no admission for "b": a refuses it as it authenticates.
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let ((end_a, _), _) = block_on(pair(&a, &b, (&key, &key), async {
        until("both ended", || {
            a.status.get().ended() && b.status.get().ended()
        })
        .await;
    }));
    let refused = |reason, by_peer| SessionEnd::Closed { reason, by_peer };
    assert_eq!(end_a, refused(Rejection::NotAdmitted, false));
    assert_eq!(
        b.status.get().state,
        PeerState::Rejected {
            reason: Rejection::NotAdmitted,
            by_peer: true
        }
    );
    assert!(rb.get("notes", "n1").is_none(), "nothing reached b");
    // Admitted, b syncs; revoked while connected, it is refused on a tick.
    for (id, intent) in [admit("b"), admit("a")] {
        ra.write(DEVICES_COLLECTION, &id, intent);
    }
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let ((end_a, _), _) = block_on(pair(&a, &b, (&key, &key), async {
        until("b has n1", || rb.get("notes", "n1").is_some()).await;
        let (id, intent) = statement(Statement::Revoke(Revocation {
            device: "b".into(),
            revoked_ms: 20,
        }));
        ra.write(DEVICES_COLLECTION, &id, intent);
        until("a refused b", || a.status.get().ended()).await;
        ra.write("notes", "n2", put(json!({"x": 2})));
        NativeTimer.sleep(100).await;
    }));
    assert_eq!(end_a, refused(Rejection::Revoked, false));
    assert!(rb.get("notes", "n2").is_none());
}

#[test]
fn a_dropped_session_is_not_left_connected() {
    let (ra, rb) = (MemoryReplica::new(1), MemoryReplica::new(2));
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let key = key();
    let (left, right) = duplex();
    block_on(async {
        let run_a = run_session(
            a.replica,
            &NativeTimer,
            spec(Role::Dialer, "a", "b", &key, 1),
            &a.status,
            &a.control,
            left,
        );
        let run_b = run_session(
            b.replica,
            &NativeTimer,
            spec(Role::Listener, "b", "a", &key, 2),
            &b.status,
            &b.control,
            right,
        );
        let both = futures::future::join(run_a, run_b);
        let wait = until("connected", || a.status.get().state == PeerState::Connected);
        // Whichever finishes first: the connection (the sessions never end).
        futures::future::select(Box::pin(both), Box::pin(wait)).await;
    });
    assert_eq!(
        a.status.get().state,
        PeerState::Disconnected {
            error: Some("the session was dropped".into())
        }
    );
}

#[test]
fn both_sides_sending_big_chunks_at_once_over_a_full_pipe_do_not_deadlock() {
    // Each side holds about 2 MB the other lacks, and the pipe holds 64 KiB
    // each way: both serve a chunk at the same time, and each write waits
    // for the other side to read.
    let (ra, rb) = (MemoryReplica::new(1), MemoryReplica::new(2));
    let big = "x".repeat(10_000);
    for i in 0..200 {
        ra.write("a", &format!("r{i}"), put(json!({ "v": big })));
        rb.write("b", &format!("r{i}"), put(json!({ "v": big })));
    }
    let (a, b) = (Side::new(&ra, "b"), Side::new(&rb, "a"));
    let key = key();
    let (left, right) = crate::sync::pipe::duplex_bounded(64 * 1024);
    let quick = |mut spec: SessionSpec| {
        // A deadlock would show as a write timeout.
        spec.config.request_timeout_ms = 3_000;
        spec
    };
    let (end_a, end_b, ()) = block_on(async {
        futures::join!(
            run_session(
                a.replica,
                &NativeTimer,
                quick(spec(Role::Dialer, "a", "b", &key, 1)),
                &a.status,
                &a.control,
                left,
            ),
            run_session(
                b.replica,
                &NativeTimer,
                quick(spec(Role::Listener, "b", "a", &key, 2)),
                &b.status,
                &b.control,
                right,
            ),
            async {
                until("both caught up", || {
                    a.status.get().caught_up
                        && b.status.get().caught_up
                        && ra.get("b", "r199").is_some()
                        && rb.get("a", "r199").is_some()
                        || a.status.get().ended()
                })
                .await;
                a.control.stop();
                b.control.stop();
            }
        )
    });
    assert_eq!((end_a, end_b), (SessionEnd::Stopped, SessionEnd::Stopped));
    assert_eq!(a.status.get().stats.changes_in, 400);
    assert_eq!(b.status.get().stats.changes_in, 400);
}
