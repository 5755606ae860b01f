//! Hostile peers over real loopback sockets: a node with the wrong group
//! secret is rejected by name on both sides and learns nothing; raw TCP junk
//! is cut off at the transport; a real libp2p peer that opens the sync
//! protocol and sends undecodable or oversized frames is refused with a named
//! reason (in its own inbox and in the node's peer table) — and after each,
//! the node goes on syncing with honest peers.

use crate::common;

use common::bare::Bare;
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use serde_json::json;
use shoal::{GroupKey, PeerState, Rejection, Store};
use shoal_core::sync::Message;
use shoal_core::sync::codec::{self, ChangeLayout, DEFAULT_MAX_FRAME};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

fn has(store: &Store, id: &str) -> bool {
    store
        .collection("notes")
        .unwrap()
        .get(id)
        .unwrap()
        .is_some()
}

/// A record written on `node` now reaches `other`: the node is healthy and
/// still syncing live with its honest peer.
async fn still_syncs(node: &Peer, other: &Peer, label: &str) {
    node.store
        .collection("notes")
        .unwrap()
        .put(label, json!({"check": label}))
        .unwrap();
    wait_for("an honest peer to keep syncing", LIMIT, || {
        has(&other.store, label)
    })
    .await;
}

/// A and B share the group key, E holds another. E dials both: each side of
/// each pair names the wrong secret in its peer table, E's store holds only
/// its own record and E counted zero changes received, A and B never see E's
/// record, and A and B keep syncing with each other afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_rejected_by_name_and_learns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    a.store
        .collection("notes")
        .unwrap()
        .put("from-a", json!({"secret": "only for members"}))
        .unwrap();
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    let intruder_key = GroupKey::from_random([7; 32]);
    let e_store = Store::open(dir.path().join("e.db")).unwrap();
    e_store
        .collection("notes")
        .unwrap()
        .put("from-e", json!({"n": 1}))
        .unwrap();
    let e_own = state(&e_store);
    let e = start_with(
        e_store.clone(),
        intruder_key,
        vec![a.address.clone(), b.address.clone()],
        |_| {},
    )
    .await;
    let (a_id, b_id, e_id) = (a.node.peer_id(), b.node.peer_id(), e.node.peer_id());
    let wrong_secret = |node: &shoal::Node, peer: &PeerId| {
        node.peer(peer).is_some_and(|s| {
            matches!(
                s.state,
                PeerState::Rejected {
                    reason: Rejection::WrongSecret,
                    ..
                }
            )
        })
    };
    for (node, peer, what) in [
        (&a.node, &e_id, "a to reject e"),
        (&b.node, &e_id, "b to reject e"),
        (&e.node, &a_id, "e to be rejected by a"),
        (&e.node, &b_id, "e to be rejected by b"),
    ] {
        // On a timeout, say what the peer table shows instead (a refusal
        // for another reason backs off past the limit).
        let refused = tokio::time::timeout(LIMIT, async {
            while !wrong_secret(node, peer) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            refused.is_ok(),
            "timed out after {LIMIT:?} waiting for: {what}; the peer table shows {:?}",
            node.peer(peer)
        );
    }
    assert_eq!(Rejection::WrongSecret.to_string(), "wrong group secret");
    // The honest pair still syncs, live, after turning the intruder away.
    still_syncs(&a, &b, "after-intruder").await;
    converge(&[&a.store, &b.store], LIMIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(state(&e_store), e_own, "e received no record");
    for peer in [&a_id, &b_id] {
        let status = e.node.peer(peer).unwrap();
        assert_eq!(status.changes_in, 0, "{status:?}");
        assert!(wrong_secret(&e.node, peer), "{status:?}");
    }
    assert!(!has(&a.store, "from-e") && !has(&b.store, "from-e"));
    assert!(wrong_secret(&a.node, &e_id) && wrong_secret(&b.node, &e_id));
    assert_eq!(
        b.node.peer(&a_id).unwrap().state,
        PeerState::Connected,
        "a and b stay connected"
    );
}

/// A small deterministic PRNG (SplitMix64) for junk bytes.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// Connects a raw socket to `port`, writes `bytes`, and returns how long the
/// node took to cut the connection (EOF or reset); panics after 15 s.
fn raw_junk(port: u16, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // The node may cut the connection before everything is written.
    let _ = socket.write_all(bytes);
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the node did not cut a junk connection within 15 s")
            }
            Err(_) => return started.elapsed(),
        }
    }
}

/// Raw TCP junk at the node's port — random bytes, and a length prefix
/// announcing 4 GiB — is cut off by the transport, and the node goes on
/// syncing with an honest peer that dials it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tcp_junk_is_cut_and_the_node_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let port = tcp_port(&a.address);
    let random = tokio::task::spawn_blocking(move || raw_junk(port, &junk(1, 64 * 1024)))
        .await
        .unwrap();
    let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    huge.extend_from_slice(&[0xff; 4]);
    huge.extend_from_slice(b"/shoal/sync/1\n");
    let huge = tokio::task::spawn_blocking(move || raw_junk(port, &huge))
        .await
        .unwrap();
    eprintln!("raw junk cut after {random:?}, huge length after {huge:?}");
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    still_syncs(&a, &b, "after-raw-junk").await;
    assert!(a.node.peers().iter().all(|s| s.peer == b.node.peer_id()));
}

/// A real libp2p peer (fresh identity, TCP + Noise + Yamux, raw streams) that
/// opens the sync protocol on `node`, writes `bytes`, and then either reads
/// until the node closes the stream (`hit_and_run` false) or — having waited
/// for the node's hello before writing — drops the stream at once (resetting
/// it). Waits until the node's peer table shows the rogue
/// rejected for `reason`, then disconnects. Returns every frame the node sent
/// back (none for a hit and run).
async fn rogue(node: &Peer, bytes: Vec<u8>, hit_and_run: bool, reason: Rejection) -> Vec<Message> {
    let bare = Bare::connect(node.address.clone(), LIMIT).await;
    let (rogue_id, mut control) = (bare.id, bare.control.clone());
    let frames = tokio::time::timeout(LIMIT, async {
        let mut stream = control
            .open_stream(node.node.peer_id(), shoal_net::SYNC_PROTOCOL)
            .await
            .expect("the node accepts the sync protocol");
        let mut received = Vec::new();
        if hit_and_run {
            // Once the node's session is running (its hello is here), strike
            // and reset the stream: the node reads the junk, then cannot
            // write its answer.
            let mut prefix = [0u8; codec::LEN_PREFIX];
            stream.read_exact(&mut prefix).await.unwrap();
            let mut hello = vec![0u8; u32::from_be_bytes(prefix) as usize];
            stream.read_exact(&mut hello).await.unwrap();
        }
        stream.write_all(&bytes).await.unwrap();
        stream.flush().await.unwrap();
        if !hit_and_run {
            // Until the node closes the stream (EOF or reset).
            let _ = stream.read_to_end(&mut received).await;
        }
        received
    })
    .await
    .expect("the node closes the stream in time");
    wait_for("the node to name the rogue's offence", LIMIT, || {
        node.node.peer(&rogue_id).is_some_and(|s| {
            s.state
                == PeerState::Rejected {
                    reason,
                    by_peer: false,
                }
        })
    })
    .await;
    drop(bare);
    let mut messages = Vec::new();
    let mut rest = &frames[..];
    while rest.len() >= codec::LEN_PREFIX {
        let len = codec::payload_len(rest[..4].try_into().unwrap(), DEFAULT_MAX_FRAME).unwrap();
        messages.push(
            codec::decode(&rest[4..4 + len], ChangeLayout::Protocol2, None)
                .unwrap()
                .message,
        );
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "whole frames only");
    messages
}

/// One frame: the length prefix and `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// Libp2p peers that speak the sync protocol badly — a frame with an unknown
/// tag, a plain frame whose body does not decode, random frames, and a length
/// prefix one byte over the 8 MiB cap — each get a `Rejected` frame naming
/// the reason before the node closes the stream, each appears in the node's
/// peer table as `Rejected { reason, by_peer: false }` (also when the rogue
/// resets the stream right after writing), and the node goes on syncing with
/// an honest peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sync_frames_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    still_syncs(&a, &b, "before-rogues").await;
    let mut random = Vec::new();
    for seed in 0..4 {
        random.extend(frame(&junk(seed, 200)));
    }
    let mut too_large = (DEFAULT_MAX_FRAME as u32 + 1).to_be_bytes().to_vec();
    too_large.extend_from_slice(&junk(9, 1024));
    let cases = [
        ("unknown tag", frame(&[7, 1, 2, 3]), Rejection::Garbage),
        (
            "undecodable body",
            frame(&[0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Rejection::Garbage,
        ),
        ("random frames", random, Rejection::Garbage),
        ("too large", too_large, Rejection::TooLarge),
    ];
    for (what, bytes, reason) in cases {
        let messages = rogue(&a, bytes.clone(), false, reason).await;
        assert!(
            matches!(messages.first(), Some(Message::Hello { .. })),
            "{what}: {messages:?}"
        );
        assert_eq!(
            messages.last(),
            Some(&Message::Rejected { reason }),
            "{what}: the node names the reason before closing"
        );
        // The same, from a rogue that resets the stream right after writing:
        // the node's answer cannot be written, its verdict stands anyway.
        rogue(&a, bytes, true, reason).await;
        still_syncs(&a, &b, &format!("after-{}", what.replace(' ', "-"))).await;
    }
    assert_eq!(
        b.node.peer(&a.node.peer_id()).unwrap().state,
        PeerState::Connected
    );
}
