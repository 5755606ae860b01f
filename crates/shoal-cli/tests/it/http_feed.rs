//! End-to-end tests of the change feed, `GET /api/changes`, against a real
//! `shoal serve` over real HTTP: a live write arrives as one event, a
//! reconnecting client resumes from `Last-Event-ID` or `since` and misses
//! nothing, history is one event per record, writes by another process
//! arrive too (and reach a peer's feed within milliseconds), and an idle
//! feed gets keep-alive comments.
#![cfg(unix)]

use crate::common;

use common::http::{Api, Event};
use common::{Node, wait_or_explain};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "feedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeed";

/// How long an event may take to arrive.
const WAIT: Duration = Duration::from_secs(10);

fn put(api: &Api, collection: &str, id: &str, value: serde_json::Value) -> u64 {
    api.put(
        &format!("/api/collections/{collection}/records/{id}"),
        &value,
    )
    .expect(200)["db_version"]
        .as_u64()
        .expect("a write")
}

/// (version, collection, id, origin) of an event, checking its framing.
fn parts(event: &Event) -> (u64, String, String, String) {
    assert_eq!(event.event.as_deref(), Some("change"), "{event:?}");
    let version = event.data["db_version"].as_u64().expect("db_version");
    assert_eq!(
        event.id.as_deref(),
        Some(version.to_string().as_str()),
        "{event:?}"
    );
    (
        version,
        event.data["collection"].as_str().unwrap().to_string(),
        event.data["id"].as_str().unwrap().to_string(),
        event.data["origin"].as_str().unwrap().to_string(),
    )
}

fn change(version: u64, collection: &str, id: &str) -> (u64, String, String, String) {
    (version, collection.into(), id.into(), "local".into())
}

#[test]
fn live_events_and_resuming_without_loss() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let before = put(&api, "notes", "old", json!({"text": "before the feed"}));

    // From now: the earlier write is not sent, a live one is.
    let feed = api.feed("", None);
    assert_eq!(feed.status, 200);
    assert!(
        feed.content_type.starts_with("text/event-stream"),
        "{}",
        feed.content_type
    );
    let v1 = put(&api, "notes", "n1", json!({"text": "hello"}));
    let first = feed.next(WAIT).expect("the live write arrives");
    assert_eq!(parts(&first), change(v1, "notes", "n1"));
    assert!(v1 > before);
    // A patch and a delete are changes too, in commit order.
    let v2 = api
        .patch("/api/collections/notes/records/n1", &json!({"text": "hi"}))
        .expect(200)["db_version"]
        .as_u64()
        .unwrap();
    let v3 = api.delete("/api/collections/notes/records/old").expect(200)["db_version"]
        .as_u64()
        .unwrap();
    let got: Vec<_> = feed.take(2, WAIT).iter().map(parts).collect();
    assert_eq!(
        got,
        vec![change(v2, "notes", "n1"), change(v3, "notes", "old")]
    );
    drop(feed);

    // Written while no client listened...
    let missed: Vec<u64> = (0..5)
        .map(|i| put(&api, "tasks", &format!("t{i}"), json!({"i": i})))
        .collect();
    // ...and resumed with Last-Event-ID: every one, in order, then live.
    let resumed = api.feed("", Some(v3));
    let got: Vec<_> = resumed.take(5, WAIT).iter().map(parts).collect();
    let want: Vec<_> = (0..5)
        .map(|i| change(missed[i], "tasks", &format!("t{i}")))
        .collect();
    assert_eq!(got, want);
    let live = put(&api, "tasks", "t5", json!({"i": 5}));
    assert_eq!(
        parts(&resumed.next(WAIT).unwrap()),
        change(live, "tasks", "t5")
    );
    assert_eq!(
        resumed.next(Duration::from_millis(500)),
        None,
        "nothing more"
    );
    // Last-Event-ID wins over `since`.
    let both = api.feed(&format!("?since={v1}"), Some(missed[3]));
    let got: Vec<_> = both.take(2, WAIT).iter().map(parts).collect();
    assert_eq!(
        got,
        vec![
            change(missed[4], "tasks", "t4"),
            change(live, "tasks", "t5")
        ]
    );

    // From the beginning: one event per record, at its last change, in log
    // order, no record twice.
    let all = api.feed("?since=0", None);
    let got: Vec<_> = all.take(8, WAIT).iter().map(parts).collect();
    let mut want = vec![change(v2, "notes", "n1"), change(v3, "notes", "old")];
    want.extend((0..5).map(|i| change(missed[i], "tasks", &format!("t{i}"))));
    want.push(change(live, "tasks", "t5"));
    assert_eq!(got, want);
    assert_eq!(all.next(Duration::from_millis(500)), None, "nothing more");

    // A write by another process on the same data directory arrives too.
    n.run(&["put", "notes", "cli", r#"{"by": "the CLI"}"#]).ok();
    let (_, collection, id, origin) = parts(&all.next(WAIT).expect("the CLI's write"));
    assert_eq!(
        (collection.as_str(), id.as_str(), origin.as_str()),
        ("notes", "cli", "local")
    );

    // A bad resume point is refused.
    api.get("/api/changes?since=abc").error(400, "bad-request");
    api.get("/api/changes?from=1").error(400, "bad-request");
    // So is one this node never reached.
    let ahead = api
        .get("/api/changes?since=999999")
        .error(400, "bad-request");
    assert!(ahead.contains("999999"), "{ahead}");
}

#[test]
fn bad_last_event_id_is_refused() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut reply = agent
        .get(&api.url("/api/changes"))
        .header("Authorization", &format!("Bearer {}", api.token))
        .header("Last-Event-ID", "yesterday")
        .call()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    let body: serde_json::Value = reply.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "bad-request");
}

#[test]
fn an_idle_feed_gets_keep_alive_comments() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let feed = api.feed("", None);
    let comment = feed
        .comment(Duration::from_secs(25))
        .expect("a keep-alive within 15 s");
    assert_eq!(comment, "keep-alive");
}

/// Writes `notes/{id}` by `shoal put` (another process on the same database)
/// when `by_cli`, else through the daemon; returns the version it took.
fn put_by(n: &Node, api: &Api, by_cli: bool, id: &str) -> u64 {
    if by_cli {
        let run = n
            .run(&["--json", "put", "notes", id, r#"{"by": "cli"}"#])
            .ok();
        run.json()["db_version"].as_u64().expect("a write")
    } else {
        put(api, "notes", id, json!({"by": "http"}))
    }
}

/// Interleaved writes, each by the CLI then the daemon: the ids and versions.
fn interleaved(n: &Node, api: &Api, prefix: &str) -> Vec<(u64, String)> {
    (0..6)
        .map(|i| {
            let id = format!("{prefix}{i}");
            (put_by(n, api, i % 2 == 0, &id), id)
        })
        .collect()
}

fn versions_and_ids(feed: &common::http::Feed, n: usize) -> Vec<(u64, String)> {
    feed.take(n, WAIT)
        .iter()
        .map(|e| {
            let (version, _, id, _) = parts(e);
            (version, id)
        })
        .collect()
}

#[test]
fn commits_by_another_process_arrive_once_and_in_order() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let before = put(&api, "notes", "start", json!({}));
    let feed = api.feed("", None);
    // A `shoal put`, then a write through the daemon at once (before any
    // periodic check of the log could notice the first), three times.
    let live = interleaved(&n, &api, "live");
    assert!(live.windows(2).all(|w| w[0].0 < w[1].0), "{live:?}");
    assert_eq!(versions_and_ids(&feed, 6), live);
    assert_eq!(
        feed.next(Duration::from_millis(1500)),
        None,
        "nothing twice"
    );
    drop(feed);

    // Resumed after the last event seen: what both wrote meanwhile, then
    // the same live.
    let last = live.last().unwrap().0;
    let meanwhile = interleaved(&n, &api, "away");
    let resumed = api.feed("", Some(last));
    let later = interleaved(&n, &api, "back");
    let mut want = meanwhile.clone();
    want.extend(later.iter().cloned());
    assert_eq!(versions_and_ids(&resumed, 12), want);
    assert_eq!(
        resumed.next(Duration::from_millis(1500)),
        None,
        "nothing twice"
    );

    // And from before it all: every record once, in commit order.
    let all = api.feed("", Some(before));
    let mut want = live;
    want.extend(meanwhile);
    want.extend(later);
    assert_eq!(versions_and_ids(&all, 18), want);
    assert_eq!(all.next(Duration::from_millis(500)), None, "nothing more");
}

/// A write by the CLI (another process) beside daemon A reaches daemon B's
/// feed within [`PUSH_BOUND`] each time: A notices the commit by watching
/// its database file, not on its 1 s check (which would miss the bound
/// about half the time, so all [`CLI_WRITES`] of them almost never).
#[test]
fn a_cli_write_beside_a_daemon_reaches_the_peer_at_once() {
    const PUSH_BOUND: Duration = Duration::from_millis(500);
    const CLI_WRITES: usize = 6;
    let a = Node::init();
    let b = Node::init();
    let da = a.serve(&[], Some(SECRET));
    let db = b.serve(&["--peer", da.address()], Some(SECRET));
    let (api_a, api_b) = (Api::of(&a, &da), Api::of(&b, &db));
    let explain = || format!("A:\n{}\nB:\n{}", da.log(), db.log());
    let connected = |api: &Api, peer: &str| {
        api.get("/api/peers").expect(200)["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer"] == peer && p["state"] == "connected")
    };
    wait_or_explain(
        "both daemons to show each other connected",
        || (connected(&api_a, db.peer_id()) && connected(&api_b, da.peer_id())).then_some(()),
        explain,
    );
    let feed = api_b.feed("", None);
    let mut late = Vec::new();
    for i in 0..CLI_WRITES {
        let id = format!("cli{i}");
        // Timed from the CLI's exit: its commit is done by then.
        a.run(&["put", "notes", &id, r#"{"by": "the CLI"}"#]).ok();
        let written = std::time::Instant::now();
        let event = feed
            .next(WAIT)
            .unwrap_or_else(|| panic!("{id} never reached B: {}", explain()));
        let took = written.elapsed();
        let (_, collection, got, origin) = parts(&event);
        assert_eq!(
            (collection.as_str(), got.as_str(), origin.as_str()),
            ("notes", id.as_str(), "remote")
        );
        if took > PUSH_BOUND {
            late.push((id, took));
        }
    }
    assert!(
        late.is_empty(),
        "writes later than {PUSH_BOUND:?}: {late:?}"
    );
}
