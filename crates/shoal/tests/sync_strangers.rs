//! Many strangers at once, over real loopback sockets: 200 fresh libp2p
//! identities each open the sync protocol on a node and hold their handshake
//! half open — half send nothing, half announce a large frame and send part
//! of it. The node refuses every frame over the handshake cap by name before
//! reading it, its memory stays bounded, and its members go on syncing.
//!
//! Alone in its test binary: the test measures this process's resident
//! memory (`VmRSS`), which other tests running beside it would disturb.

mod common;

use common::bare::Bare;
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt};
use serde_json::json;
use shoal::{PeerState, Rejection};
use shoal_core::sync::Message;
use shoal_core::sync::codec;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const STRANGERS: usize = 200;
/// What each stranger announcing a large frame sends of it.
const PARTIAL: usize = 512 * 1024;
/// The most the node (and the strangers' own swarms, in this process) may
/// grow by. Holding the partial frames alone would take 100 × 512 KiB = 50 MiB.
const RSS_BOUND_KIB: u64 = 40 * 1024;

/// This process's resident set size in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_half_open_strangers_leave_memory_bounded_and_members_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let store = shoal::Store::open(dir.path().join("a.db")).unwrap();
    // Handshakes and connections are held for the whole test (the bare
    // strangers do not answer pings; real ones would): the worst case.
    let a = start_with(store, group_key(), vec![], |c| {
        c.sync.request_timeout_ms = 300_000;
        c.liveness = Duration::from_secs(300);
    })
    .await;
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    connected(&a, &b, LIMIT).await;
    let put = |peer: &Peer, id: &str| {
        peer.store
            .collection("notes")
            .unwrap()
            .put(id, json!({"n": id}))
            .unwrap()
    };
    let has = |peer: &Peer, id: &str| {
        peer.store
            .collection("notes")
            .unwrap()
            .get(id)
            .unwrap()
            .is_some()
    };
    put(&a, "before");
    wait_for("a first record to sync", LIMIT, || has(&b, "before")).await;
    let before = rss_kib();

    let started = std::time::Instant::now();
    let mut strangers = Vec::new();
    let mut streams = Vec::new();
    let mut answers = Vec::new();
    for batch in (0..STRANGERS).collect::<Vec<_>>().chunks(16) {
        let opened = futures::future::join_all(batch.iter().map(|&i| {
            let (address, node) = (a.address.clone(), a.node.peer_id());
            async move {
                let bare = Bare::connect(address, LIMIT).await;
                let mut control = bare.control.clone();
                let mut stream = control
                    .open_stream(node, shoal_net::SYNC_PROTOCOL)
                    .await
                    .expect("the node accepts the sync protocol");
                let mut answer = Vec::new();
                if i % 2 == 1 {
                    // Announce a frame far under the 8 MiB cap of members.
                    let mut partial = ((PARTIAL * 2) as u32).to_be_bytes().to_vec();
                    partial.resize(4 + PARTIAL, 0x5a);
                    // The node may refuse and reset before all is written.
                    let _ = stream.write_all(&partial).await;
                    let _ = stream.flush().await;
                    // What the node answers before it closes the stream:
                    // nothing if it dropped the stream unread (busy).
                    let read = stream.read_to_end(&mut answer);
                    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
                }
                (bare, stream, answer)
            }
        }))
        .await;
        for (bare, stream, answer) in opened {
            strangers.push(bare);
            streams.push(stream);
            answers.push(answer);
        }
    }
    eprintln!("{STRANGERS} strangers connected in {:?}", started.elapsed());
    // Every stranger whose partial frame the node took up is refused by name
    // (the node's answer ends in `Rejected { TooLarge }`), in its peer table
    // too. (libp2p drops an inbound stream unread when the node is busy.)
    let too_large = PeerState::Rejected {
        reason: Rejection::TooLarge,
        by_peer: false,
    };
    let mut taken_up = 0;
    for (i, answer) in answers.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        if answer.is_empty() {
            continue;
        }
        taken_up += 1;
        let mut rest = &answer[..];
        let mut last = None;
        while rest.len() >= codec::LEN_PREFIX {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            last = Some(
                codec::decode(&rest[4..4 + len], codec::ChangeLayout::Protocol2, None)
                    .unwrap()
                    .message,
            );
            rest = &rest[4 + len..];
        }
        assert_eq!(
            last,
            Some(Message::Rejected {
                reason: Rejection::TooLarge
            }),
            "stranger {i}"
        );
        let id = strangers[i].id;
        wait_for("the verdict in the peer table", LIMIT, || {
            a.node.peer(&id).is_some_and(|s| s.state == too_large)
        })
        .await;
    }
    assert!(
        taken_up >= STRANGERS / 4,
        "only {taken_up} partial frames reached a session"
    );
    // The silent ones are still connected, holding their handshake open.
    let holding = strangers
        .iter()
        .step_by(2)
        .filter(|s| {
            a.node
                .peer(&s.id)
                .is_some_and(|s| s.state == PeerState::Connecting)
        })
        .count();
    assert!(
        holding >= STRANGERS / 4,
        "only {holding} strangers hold a handshake"
    );

    // Members still sync both ways while the strangers hold on.
    put(&a, "during-from-a");
    put(&b, "during-from-b");
    wait_for("a's record to reach b", LIMIT, || has(&b, "during-from-a")).await;
    wait_for("b's record to reach a", LIMIT, || has(&a, "during-from-b")).await;

    let after = rss_kib();
    let grown = after.saturating_sub(before);
    eprintln!("{taken_up} partial frames refused, {holding} silent strangers holding");
    eprintln!("RSS {before} KiB -> {after} KiB (+{grown} KiB) with {STRANGERS} strangers");
    assert!(
        grown < RSS_BOUND_KIB,
        "RSS grew by {grown} KiB with {STRANGERS} half-open strangers (bound {RSS_BOUND_KIB} KiB)"
    );
    drop(streams);
    drop(strangers);
}
