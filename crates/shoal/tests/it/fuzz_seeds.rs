//! Real traffic, recorded: a sans-IO sync session over a real libp2p stream
//! to a real node on loopback, its actions performed by a second real store
//! — catch-up, then every federation request (collections, a
//! reconciliation step, fetch, offer, level) — and a blob fetched over the
//! blob protocol. Every frame either way is opened with keys derived in
//! parallel from the same handshake, and must re-encode to exactly the
//! bytes that crossed the wire (encode ∘ decode is the identity on real
//! traffic); the second store ends up holding the node's records.
//!
//! With `SHOAL_WRITE_FUZZ_SEEDS=DIR` it also writes what it saw as seed
//! inputs for the fuzz targets (`DIR/TARGET/…`, in each target's input
//! format; see `fuzz/fuzz_targets/`): `scripts/fuzz.sh` starts from the
//! seeds committed in `fuzz/seeds/`, which this test wrote.

use crate::common;

use common::bare::Bare;
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use serde_json::json;
use shoal::{GroupSalt, Invite, Store};
use shoal_core::blob::{
    BlobRequest, BlobResponse, Incoming, decode_response, encode_request, response_frame_len,
};
use shoal_core::recon::{ReconLimits, Reconciler};
use shoal_core::sync::auth::{FrameKey, Pake, Role, Transcript, hello_nonce};
use shoal_core::sync::codec::{self, ChangeLayout, DEFAULT_MAX_FRAME, LEN_PREFIX};
use shoal_core::sync::federation::{Request, RequestId, Response};
use shoal_core::sync::{Action, Message, Session, SyncConfig};
use shoal_core::{CollectionName, RecordId, SyncCursor};
use shoal_net::Replica;
use std::path::PathBuf;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// How changes travel between the node and this test's session: both
/// offer every feature, so grouped by record with their predecessors.
const LAYOUT: ChangeLayout = ChangeLayout::Grouped;

/// One frame as it crossed the wire, opened.
struct Seen {
    /// Sent by the node (true) or by us.
    from_node: bool,
    sealed: bool,
    body: Vec<u8>,
    message: Message,
}

/// Opens both directions' frames with keys derived from the same handshake
/// the session runs (its randomness is the seed we gave it).
struct Tap {
    pake: Option<Pake>,
    seed: [u8; 32],
    ours: Vec<u8>,
    theirs: Vec<u8>,
    node_nonce: [u8; 32],
    /// (our send key, its counter), (the node's send key, its counter).
    keys: Option<((FrameKey, u64), (FrameKey, u64))>,
    seen: Vec<Seen>,
}

impl Tap {
    fn new(ours: &PeerId, theirs: &PeerId, seed: [u8; 32]) -> Tap {
        let (ours, theirs) = (ours.to_bytes(), theirs.to_bytes());
        Tap {
            pake: Some(Pake::start(
                &group_key(),
                Role::Dialer,
                &ours,
                &theirs,
                &seed,
            )),
            seed,
            ours,
            theirs,
            node_nonce: [0; 32],
            keys: None,
            seen: Vec::new(),
        }
    }

    /// Records one payload; checks it re-encodes to the same bytes.
    fn payload(&mut self, payload: &[u8], from_node: bool) {
        let sealed = payload.first() == Some(&1);
        let key = match (&mut self.keys, sealed) {
            (Some((ours, _)), true) if !from_node => Some(ours),
            (Some((_, theirs)), true) if from_node => Some(theirs),
            _ => None,
        };
        let opened = codec::decode(payload, LAYOUT, key.as_ref().map(|(k, seq)| (k, *seq)))
            .unwrap_or_else(|e| panic!("a real frame does not open: {e}"));
        if let Some((_, seq)) = key {
            *seq += 1;
        }
        let body = payload[if sealed { 33 } else { 1 }..].to_vec();
        assert_eq!(
            codec::body(&opened.message, LAYOUT),
            body,
            "a real {} frame re-encodes to other bytes",
            opened.message.kind()
        );
        match &opened.message {
            Message::Hello { nonce, .. } if from_node => self.node_nonce = *nonce,
            Message::Pake { message } if from_node => {
                let pake = self.pake.take().expect("one PAKE message");
                let transcript = Transcript {
                    dialer: self.ours.clone(),
                    listener: self.theirs.clone(),
                    dialer_nonce: hello_nonce(&self.seed),
                    listener_nonce: self.node_nonce,
                    dialer_pake: pake.message().to_vec(),
                    listener_pake: message.clone(),
                };
                let keys = pake.finish(message, &transcript).expect("a member's PAKE");
                self.keys = Some((
                    (keys.frame_key(Role::Dialer), 0),
                    (keys.frame_key(Role::Listener), 0),
                ));
            }
            _ => {}
        }
        self.seen.push(Seen {
            from_node,
            sealed: opened.sealed,
            body,
            message: opened.message,
        });
    }
}

/// The dialing side: a session, its stream, the store it acts on.
struct Dialer {
    session: Session,
    stream: libp2p::Stream,
    store: Store,
    node: PeerId,
    tap: Tap,
    caught_up: bool,
    answers: Vec<(RequestId, Response)>,
    served: usize,
}

impl Dialer {
    async fn perform(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let more = match action {
                Action::Send(frame) => {
                    self.tap.payload(&frame[LEN_PREFIX..], false);
                    self.stream.write_all(&frame).await.expect("write");
                    self.stream.flush().await.expect("flush");
                    Vec::new()
                }
                Action::ReadChanges {
                    purpose,
                    after,
                    max_changes,
                    max_bytes,
                } => {
                    let read = Replica::read_for_peer(
                        &self.store,
                        &self.node,
                        after,
                        max_changes,
                        max_bytes,
                    )
                    .expect("read");
                    self.session.changes_read(purpose, after, read, 1)
                }
                Action::Apply { changes, cursor } => {
                    Replica::apply_from(&self.store, &self.node, &changes, cursor).expect("apply");
                    self.session.applied(cursor)
                }
                Action::Serve { id, request } => {
                    self.served += 1;
                    let limits = ReconLimits::default();
                    let answer = Replica::serve(&self.store, &self.node, request, &limits);
                    self.session.respond(id, answer)
                }
                Action::Answer { id, response } => {
                    self.answers.push((id, response));
                    Vec::new()
                }
                Action::CaughtUp { .. } => {
                    self.caught_up = true;
                    Vec::new()
                }
                Action::Authenticated | Action::PeerFilters { .. } | Action::Leave { .. } => {
                    Vec::new()
                }
                Action::Unanswered { id } => panic!("the node left request {id} unanswered"),
                Action::Close { reason, by_peer } => {
                    panic!("the session closed: {reason} (by the node: {by_peer})")
                }
            };
            queue.extend(more);
        }
    }

    /// Reads and handles frames until `done` holds.
    async fn until(&mut self, what: &str, done: impl Fn(&Dialer) -> bool) {
        while !done(self) {
            let mut prefix = [0u8; LEN_PREFIX];
            tokio::time::timeout(LIMIT, self.stream.read_exact(&mut prefix))
                .await
                .unwrap_or_else(|_| panic!("no frame while waiting for {what}"))
                .expect("read a prefix");
            let len =
                codec::payload_len(prefix, DEFAULT_MAX_FRAME).expect("a frame within the cap");
            let mut payload = vec![0u8; len];
            self.stream
                .read_exact(&mut payload)
                .await
                .expect("read a payload");
            self.tap.payload(&payload, true);
            let actions = self.session.handle_payload(&payload, 1);
            self.perform(actions).await;
        }
    }

    async fn ask(&mut self, request: Request) -> Response {
        let (id, actions) = self.session.request(request, 1).expect("authenticated");
        self.perform(actions).await;
        self.until("an answer", |d| d.answers.iter().any(|(a, _)| *a == id))
            .await;
        let at = self.answers.iter().position(|(a, _)| *a == id).unwrap();
        self.answers.remove(at).1
    }
}

/// Seed files, content-addressed, under `SHOAL_WRITE_FUZZ_SEEDS` if set.
struct Seeds(Option<PathBuf>);

impl Seeds {
    fn write(&self, target: &str, bytes: &[u8]) {
        let Some(dir) = &self.0 else { return };
        let dir = dir.join(target);
        std::fs::create_dir_all(&dir).expect("seed dir");
        let name = blake3::hash(bytes).to_hex()[..16].to_string();
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    }

    fn with_mode(&self, target: &str, mode: u8, bytes: &[u8]) {
        let mut input = vec![mode];
        input.extend_from_slice(bytes);
        self.write(target, &input);
    }
}

/// Appends an op (`fuzz/src/ops.rs`: op, 2-byte big-endian length, data).
fn op(stream: &mut Vec<u8>, op: u8, data: &[u8]) {
    stream.push(op);
    stream.extend_from_slice(&(data.len() as u16).to_be_bytes());
    stream.extend_from_slice(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_sync_round_trips_every_frame_and_records_seeds() {
    let seeds = Seeds(std::env::var_os("SHOAL_WRITE_FUZZ_SEEDS").map(PathBuf::from));
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let notes = a.store.collection("notes").unwrap();
    let bodies = [
        json!({"title": "hello", "n": 1.5, "nested": {"a": [1, null, "x"]}, "big": 5.265691809159281e299}),
        json!({"title": "bye", "done": true}),
    ];
    notes.put("n1", bodies[0].clone()).unwrap();
    notes.put("n2", bodies[1].clone()).unwrap();
    notes.delete("n2").unwrap();
    notes.map_set("n3", "tags", "red", json!(1)).unwrap();
    notes
        .map_set("n3", "tags", "blue", json!({"k": "v"}))
        .unwrap();
    notes.map_remove("n3", "tags", "red").unwrap();
    let blob = a
        .store
        .add_blob(&b"a small blob for the seeds"[..])
        .unwrap();
    let with_blob = json!({"title": "m1", "file": blob.to_json()});
    notes.put("m1", with_blob.clone()).unwrap();

    let b = Store::open(dir.path().join("b.db")).unwrap();
    b.collection("notes")
        .unwrap()
        .put("b1", json!({"from": "b"}))
        .unwrap();
    let bare = Bare::connect(a.address.clone(), LIMIT).await;
    let a_id = a.node.peer_id();
    let stream = bare
        .control
        .clone()
        .open_stream(a_id, shoal_net::SYNC_PROTOCOL)
        .await
        .expect("a sync stream");
    let seed = [0x11; 32];
    let session = Session::new(
        Role::Dialer,
        bare.id.to_bytes(),
        a_id.to_bytes(),
        group_key(),
        seed,
        SyncCursor::default(),
        SyncConfig::default(),
    );
    let mut d = Dialer {
        session,
        stream,
        store: b,
        node: a_id,
        tap: Tap::new(&bare.id, &a_id, seed),
        caught_up: false,
        answers: Vec::new(),
        served: 0,
    };
    let start = d.session.start(0);
    d.perform(start).await;
    d.until("the catch-up", |d| d.caught_up).await;
    let received = d.store.collection("notes").unwrap();
    assert!(received.get("n1").unwrap().is_some(), "n1 arrived");
    assert!(received.get("n2").unwrap().is_none(), "n2 arrived deleted");
    assert!(received.get("m1").unwrap().is_some(), "m1 arrived");

    let notes_name = CollectionName::new("notes").unwrap();
    let ids = ["n1", "n2", "n3", "m1", "never"].map(|i| RecordId::new(i).unwrap());
    let mut walk = Reconciler::blind(ReconLimits::default());
    let entries = walk.next_request().expect("a first step");
    let offered = d.store.record_changes("notes", "b1").unwrap().unwrap();
    let requests = [
        Request::Collections,
        Request::Reconcile {
            collection: notes_name.clone(),
            entries,
        },
        Request::Fetch {
            collection: notes_name.clone(),
            ids: ids.to_vec(),
            resume: None,
        },
        Request::Offer {
            collection: notes_name.clone(),
            id: RecordId::new("b1").unwrap(),
            changes: offered,
            whole: None,
        },
        Request::Level {
            collection: notes_name.clone(),
        },
    ];
    let mut answers = Vec::new();
    for request in requests.iter().cloned() {
        let answer = d.ask(request).await;
        assert!(
            !matches!(answer, Response::Refused(_)),
            "refused: {answer:?}"
        );
        answers.push(answer);
    }
    match &answers[2] {
        Response::Records { missing, .. } => {
            assert_eq!(missing, &[RecordId::new("never").unwrap()])
        }
        other => panic!("a fetch answered {other:?}"),
    }

    // The blob protocol: its outline, then its one piece.
    let key = group_key().blob_key(&bare.id.to_bytes(), &a_id.to_bytes());
    let mut blobs = bare
        .control
        .clone()
        .open_stream(a_id, shoal_net::BLOB_PROTOCOL)
        .await
        .expect("a blob stream");
    let blob_requests = [
        BlobRequest::Outline { hash: blob.hash },
        BlobRequest::Pieces {
            hash: blob.hash,
            from: 0,
            count: 1,
        },
    ];
    let mut blob_payloads = Vec::new();
    for (seq, request) in blob_requests.iter().enumerate() {
        blobs
            .write_all(&encode_request(request, &key, seq as u64))
            .await
            .unwrap();
        blobs.flush().await.unwrap();
        let mut prefix = [0u8; LEN_PREFIX];
        tokio::time::timeout(LIMIT, blobs.read_exact(&mut prefix))
            .await
            .expect("a blob answer in time")
            .unwrap();
        let mut payload = vec![0u8; response_frame_len(prefix).unwrap()];
        blobs.read_exact(&mut payload).await.unwrap();
        blob_payloads.push(payload);
    }
    let outline = match decode_response(&blob_payloads[0], &key, 0).unwrap() {
        Incoming::Response(BlobResponse::Outline(outline)) => outline,
        other => panic!("the outline request answered {other:?}"),
    };
    assert!(outline.check().is_ok());
    let Incoming::Piece { index: 0, bytes } = decode_response(&blob_payloads[1], &key, 1).unwrap()
    else {
        panic!("no piece");
    };
    assert!(outline.verify_piece(0, bytes).is_ok());

    // Seeds, in each target's input format.
    let seen = &d.tap.seen;
    assert!(
        seen.iter()
            .any(|s| s.from_node && matches!(s.message, Message::Chunk(_)))
    );
    let mut session_ops = Vec::new();
    for s in seen {
        if s.sealed {
            seeds.with_mode("sync_frame", 2 | 8, &s.body);
        } else {
            let mut payload = vec![0];
            payload.extend_from_slice(&s.body);
            seeds.with_mode("sync_frame", 8, &payload);
        }
        match (&s.message, s.from_node) {
            (Message::Request { body, .. }, _) => {
                seeds.with_mode("federation", 0, &postcard::to_allocvec(body).unwrap());
                if let Request::Reconcile { entries, .. } = body {
                    seeds.with_mode("recon", 0x22, &postcard::to_allocvec(entries).unwrap());
                }
            }
            (Message::Response { body, .. }, _) => {
                seeds.with_mode("federation", 1, &postcard::to_allocvec(body).unwrap());
                if let Response::Reconcile { entries, .. } = body {
                    let mut walk = Vec::new();
                    op(&mut walk, 0, &postcard::to_allocvec(entries).unwrap());
                    seeds.with_mode("recon", 0x23, &walk);
                }
            }
            _ => {}
        }
        // The session target replays what the node sent once authenticated;
        // each answer follows a request of ours (op 7, empty: Collections)
        // so its id is one the session asked.
        if s.from_node && s.sealed {
            if matches!(s.message, Message::Response { .. }) {
                op(&mut session_ops, 7, &[]);
            }
            op(&mut session_ops, 0, &s.body);
        }
    }
    seeds.with_mode("session", 0, &session_ops);
    // The handshake target: the node's plain frames as a stranger's, and
    // its PAKE message straight into the exchange.
    let mut handshake_ops = Vec::new();
    for s in seen.iter().filter(|s| s.from_node && !s.sealed) {
        op(&mut handshake_ops, 0, &s.body);
        if let Message::Pake { message } = &s.message {
            seeds.with_mode("handshake", 2, message);
        }
    }
    seeds.with_mode("handshake", 0, &handshake_ops);
    seeds.with_mode("handshake", 1, &handshake_ops);
    for (request, payload) in blob_requests.iter().zip(&blob_payloads) {
        seeds.with_mode("blob_wire", 1, &postcard::to_allocvec(request).unwrap());
        seeds.with_mode("blob_wire", 2, payload);
    }
    seeds.with_mode(
        "blob_wire",
        3,
        &postcard::to_allocvec(&BlobResponse::Outline(outline)).unwrap(),
    );
    let invite = Invite {
        key: group_key(),
        salt: GroupSalt::from_random([3; 16]),
        address: a
            .address
            .clone()
            .with(libp2p::multiaddr::Protocol::P2p(a_id)),
        relays: Vec::new(),
    };
    seeds.with_mode("invite", 0, invite.to_string().as_bytes());
    let relayed = Invite {
        relays: vec![
            format!("/ip4/198.18.0.1/tcp/4001/p2p/{}", libp2p::PeerId::random())
                .parse()
                .unwrap(),
        ],
        ..invite.clone()
    };
    seeds.with_mode("invite", 0, relayed.to_string().as_bytes());
    let parts = format!(
        "{}\n{}\n{}",
        invite.key.to_hex(),
        invite.salt.to_hex(),
        invite.address
    );
    seeds.with_mode("invite", 1, parts.as_bytes());
    let relayed_parts = format!("{parts},{}", relayed.relays[0]);
    seeds.with_mode("invite", 3, relayed_parts.as_bytes());
    for id in [
        "n1",
        "task:42",
        "notes",
        "title",
        &blob.hash.to_hex(),
        "send-receive",
    ] {
        seeds.write("names", id.as_bytes());
    }
    for body in bodies.iter().chain([&with_blob]) {
        let text = body.to_string();
        seeds.write("names", text.as_bytes());
        for mode in [0u8, 1, 2, 0x20 | 1] {
            seeds.with_mode("merge_patch", mode, text.as_bytes());
        }
    }
    seeds.with_mode("merge_patch", 3, br#"["tags", "red", {"k": 1}]"#);
    for query in [
        "collection=notes&limit=7&after=n1",
        "after=a%3A1&limit=10000",
        "x=%zz",
    ] {
        seeds.write("http_query", query.as_bytes());
    }
    eprintln!("the node asked {} requests of us", d.served);
}
