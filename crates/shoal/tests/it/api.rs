//! The library API end to end on a real database file: CRUD, map fields,
//! pagination, queries (and that declared indexes are used), typed collections,
//! change subscriptions for local and remote changes, deterministic ids, and
//! identity/clock persistence across reopen, and creates that refuse a live
//! record (racing creates have one winner), and concurrent writers announced
//! in commit order.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shoal::{
    Edit, ListOptions, Order, Origin, Query, Store, SubscriptionError, Written, derive_id,
};
use std::time::Duration;

fn open(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(dir.path().join(name)).unwrap()
}

#[test]
fn put_patch_delete_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let tasks = store.collection("tasks").unwrap();
    let v1 = tasks
        .put("t1", json!({"title": "a", "n": 1}))
        .unwrap()
        .unwrap();
    assert_eq!(
        tasks.put("t1", json!({"title": "a", "n": 1})).unwrap(),
        None,
        "unchanged put writes nothing"
    );
    let v2 = tasks
        .patch("t1", json!({"n": 2, "title": null}))
        .unwrap()
        .unwrap();
    assert!(v2 > v1);
    assert_eq!(
        Value::Object(tasks.get("t1").unwrap().unwrap()),
        json!({"n": 2})
    );
    tasks.delete("t1").unwrap();
    assert!(tasks.get("t1").unwrap().is_none());
    assert!(matches!(
        tasks.delete("t1"),
        Err(shoal::Error::NotFound { .. })
    ));
    assert!(matches!(
        tasks.patch("t1", json!({"n": 3})),
        Err(shoal::Error::NotFound { .. })
    ));
    tasks.put("t1", json!({"title": "again"})).unwrap();
    assert_eq!(
        Value::Object(tasks.get("t1").unwrap().unwrap()),
        json!({"title": "again"})
    );
    let status = store.status().unwrap();
    assert_eq!(status.collections.len(), 1);
    assert_eq!(
        (status.collections[0].live, status.collections[0].deleted),
        (1, 0)
    );
}

#[test]
fn a_write_reports_its_version_and_the_clock_it_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let notes = store.collection("notes").unwrap();
    let edits = [
        Edit::Put(json!({"title": "a", "n": 1})),
        Edit::Patch(json!({"n": 2})),
        Edit::MapSet {
            field: "tags".into(),
            key: "work".into(),
            value: json!(true),
        },
        Edit::MapRemove {
            field: "tags".into(),
            key: "work".into(),
        },
        Edit::Delete,
        Edit::Create(json!({"title": "again"})),
    ];
    let mut last: Option<Written> = None;
    for edit in edits {
        let written = notes
            .write("n1", edit.clone())
            .unwrap()
            .unwrap_or_else(|| panic!("{edit:?} changed nothing"));
        assert_eq!(written.version, store.db_version(), "{edit:?}");
        assert_eq!(written.clock.site, store.site_id(), "{edit:?}");
        if let Some(last) = last {
            assert!(written.version > last.version && written.clock > last.clock);
        }
        // The slots this write changed carry exactly its clock.
        let changes = store.record_changes("notes", "n1").unwrap().unwrap();
        let newest = changes.iter().map(|c| c.clock).max().unwrap();
        assert_eq!(newest, written.clock, "{edit:?}");
        last = Some(written);
    }
    // Nothing changed: nothing to report.
    assert_eq!(
        notes
            .write("n1", Edit::Put(json!({"title": "again"})))
            .unwrap(),
        None
    );
    assert!(matches!(
        notes.write("n1", Edit::Create(json!({}))),
        Err(shoal::Error::Exists { .. })
    ));
    assert!(matches!(
        notes.write("absent", Edit::Delete),
        Err(shoal::Error::NotFound { .. })
    ));
    assert!(matches!(
        notes.write("n1", Edit::Patch(json!([1]))),
        Err(shoal::Error::Invalid(_))
    ));
}

#[test]
fn list_paginates_with_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let c = store.collection("items").unwrap();
    c.put_many((0..25).map(|i| (format!("a:{i:02}"), json!({"i": i}))))
        .unwrap();
    c.put_many((0..5).map(|i| (format!("b:{i:02}"), json!({"i": i}))))
        .unwrap();
    c.delete("a:03").unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = c
            .list(&ListOptions {
                prefix: "a:".into(),
                after: after.clone(),
                limit: 10,
            })
            .unwrap();
        assert!(page.records.len() <= 10);
        seen.extend(page.records.iter().map(|(id, _)| id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert!(!seen.contains(&"a:03".to_string()));
    assert!(seen.iter().all(|id| id.starts_with("a:")));
    assert!(
        c.list(&ListOptions {
            limit: 0,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn queries_filter_order_and_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let c = store.collection("tasks").unwrap();
    c.create_index("due").unwrap();
    c.create_index("due").unwrap(); // idempotent
    let rows: Vec<_> = (0..200)
        .map(|i| {
            (
                format!("t{i:03}"),
                json!({"due": i % 50, "done": i % 3 == 0, "owner": format!("u{}", i % 7)}),
            )
        })
        .collect();
    c.put_many(rows).unwrap();
    let open_soon = c
        .query(
            &Query::new()
                .eq("done", json!(false))
                .range("due", Some(json!(10)), Some(json!(13)))
                .order_by("due", Order::Desc)
                .limit(1000),
        )
        .unwrap();
    assert!(!open_soon.is_empty());
    let dues: Vec<i64> = open_soon
        .iter()
        .map(|(_, r)| r["due"].as_i64().unwrap())
        .collect();
    assert!(
        dues.windows(2).all(|w| w[0] >= w[1]),
        "descending: {dues:?}"
    );
    assert!(dues.iter().all(|d| (10..13).contains(d)));
    assert!(open_soon.iter().all(|(_, r)| r["done"] == json!(false)));
    let expected = (0..200)
        .filter(|i| i % 3 != 0 && (10..13).contains(&(i % 50)))
        .count();
    assert_eq!(open_soon.len(), expected);
    let by_owner = c
        .query(&Query::new().eq("owner", json!("u3")).limit(5))
        .unwrap();
    assert_eq!(by_owner.len(), 5);
    assert!(
        c.query(&Query::new().eq("x", json!([1]))).is_err(),
        "arrays are not comparable"
    );
}

#[test]
fn declared_index_is_in_the_query_plan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut raw = shoal_store::Store::open(&path, Default::default()).unwrap();
    let tasks = shoal::CollectionName::new("tasks").unwrap();
    raw.create_index(&tasks, "due").unwrap();
    let plan = raw
        .query_plan(&tasks, &Query::new().eq("due", json!(3)))
        .unwrap();
    assert!(plan.contains("USING INDEX ix_"), "plan: {plan}");
    let plan = raw
        .query_plan(&tasks, &Query::new().order_by("due", Order::Asc))
        .unwrap();
    assert!(
        plan.contains("USING INDEX ix_") && !plan.contains("TEMP B-TREE"),
        "plan: {plan}"
    );
    assert_eq!(raw.indexes(&tasks).unwrap(), vec!["due".to_string()]);
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Note {
    text: String,
    pinned: bool,
}

#[test]
fn typed_collections_roundtrip_and_report_shape_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let notes = store.typed::<Note>("notes").unwrap();
    let note = Note {
        text: "hi".into(),
        pinned: true,
    };
    notes.put("n1", &note).unwrap();
    assert_eq!(notes.get("n1").unwrap(), Some(note.clone()));
    let page = notes.list(&ListOptions::default()).unwrap();
    assert_eq!(
        page.records,
        vec![(shoal::RecordId::new("n1").unwrap(), note)]
    );
    assert!(page.next.is_none());
    store
        .collection("notes")
        .unwrap()
        .put("bad", json!({"text": 5}))
        .unwrap();
    assert!(matches!(notes.get("bad"), Err(shoal::Error::Serde { .. })));
    let numbers = store.typed::<u32>("numbers").unwrap();
    assert!(
        matches!(numbers.put("x", &5), Err(shoal::Error::Invalid(_))),
        "a non-object is refused"
    );
}

#[test]
fn map_fields_merge_entries_from_two_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir, "a.db");
    let b = open(&dir, "b.db");
    let id = derive_id("collection", "universe-7").unwrap();
    for (store, item) in [(&a, "from-a"), (&b, "from-b")] {
        let c = store.collection("collections").unwrap();
        c.put(id.as_str(), json!({"owner": "universe-7"})).unwrap();
        c.map_set(id.as_str(), "items", item, json!(true)).unwrap();
    }
    exchange(&a, &b);
    for store in [&a, &b] {
        let record = store
            .collection("collections")
            .unwrap()
            .get(id.as_str())
            .unwrap()
            .unwrap();
        assert_eq!(record["items"], json!({"from-a": true, "from-b": true}));
        assert_eq!(
            store.status().unwrap().collections[0].live,
            1,
            "one record, not two"
        );
    }
    // a deletes; b re-creates after seeing the delete: one live record, no stale fields
    a.collection("collections")
        .unwrap()
        .delete(id.as_str())
        .unwrap();
    exchange(&a, &b);
    b.collection("collections")
        .unwrap()
        .put(id.as_str(), json!({"owner": "universe-7", "v": 2}))
        .unwrap();
    exchange(&a, &b);
    for store in [&a, &b] {
        let record = store
            .collection("collections")
            .unwrap()
            .get(id.as_str())
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(record),
            json!({"owner": "universe-7", "v": 2})
        );
    }
}

fn exchange(a: &Store, b: &Store) {
    for (from, to) in [(a, b), (b, a)] {
        let changes: Vec<_> = from
            .changes_since(Default::default())
            .collect::<Result<_, _>>()
            .unwrap();
        to.apply(&changes).unwrap();
    }
}

#[tokio::test]
async fn subscription_yields_local_and_remote_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir, "a.db");
    let b = open(&dir, "b.db");
    let mut all = b.subscribe();
    let mut only_tasks = b.collection("tasks").unwrap().subscribe();
    b.collection("other")
        .unwrap()
        .put("o1", json!({"x": 1}))
        .unwrap();
    a.collection("tasks")
        .unwrap()
        .put("t1", json!({"x": 1}))
        .unwrap();
    let changes: Vec<_> = a
        .changes_since(Default::default())
        .collect::<Result<_, _>>()
        .unwrap();
    let report = b.apply(&changes).unwrap();
    assert_eq!(report.changed.len(), 1);
    let first = tokio::time::timeout(Duration::from_secs(5), all.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.id.as_str(), first.origin), ("o1", Origin::Local));
    let second = tokio::time::timeout(Duration::from_secs(5), all.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.id.as_str(), second.origin), ("t1", Origin::Remote));
    assert_eq!(second.version, report.version.unwrap());
    let task = tokio::time::timeout(Duration::from_secs(5), only_tasks.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        task.id.as_str(),
        "t1",
        "collection filter skips other collections"
    );
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_where_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let options = shoal::StoreOptions {
        event_capacity: 4,
        ..Default::default()
    };
    let store = Store::open_with(dir.path().join("a.db"), options).unwrap();
    let mut sub = store.subscribe();
    let c = store.collection("c").unwrap();
    for i in 0..10 {
        c.put(&format!("r{i}"), json!({"i": i})).unwrap();
    }
    match sub.next().await {
        Err(SubscriptionError::Lagged {
            missed,
            resume_from,
        }) => {
            assert_eq!(missed, 6);
            assert_eq!(resume_from.0, 0);
            let missed_changes = store.changes_since(resume_from).count();
            assert_eq!(missed_changes, 20, "10 records x (life + one field)");
        }
        other => panic!("expected lag, got {other:?}"),
    }
}

#[test]
fn identity_db_version_and_clock_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let (site, version, last_clock) = {
        let store = Store::open(&path).unwrap();
        let c = store.collection("c").unwrap();
        c.put("r", json!({"a": 1})).unwrap();
        c.patch("r", json!({"a": 2})).unwrap();
        let last = store
            .changes_since(Default::default())
            .map(|c| c.unwrap().clock)
            .max()
            .unwrap();
        (store.site_id(), store.db_version(), last)
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.site_id(), site);
    assert_eq!(store.db_version(), version);
    store
        .collection("c")
        .unwrap()
        .patch("r", json!({"a": 3}))
        .unwrap();
    let newest = store
        .changes_since(version)
        .map(|c| c.unwrap().clock)
        .max()
        .unwrap();
    assert!(
        newest > last_clock,
        "a write after reopen orders after every earlier one"
    );
    assert!(store.db_version() > version);
}

#[test]
fn two_handles_on_one_file_continue_each_others_log_and_clocks() {
    // Two handles on one file behave like the CLI writing next to a running daemon.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    let mut versions = Vec::new();
    for i in 0..20 {
        let (store, who) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let v = store
            .collection("c")
            .unwrap()
            .put("same", json!({"who": who, "i": i}))
            .unwrap();
        versions.push(v.unwrap());
    }
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    // Each handle's clock must order after the other's last write, or an
    // older write would win the field.
    assert_eq!(
        a.collection("c").unwrap().get("same").unwrap().unwrap()["i"],
        19,
        "the last write wins"
    );
}

#[test]
fn create_refuses_a_live_record_even_one_a_peer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(&dir, "a.db"), open(&dir, "b.db"));
    let notes = a.collection("notes").unwrap();
    assert!(
        notes
            .create("n1", json!({"text": "first"}))
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        notes.create("n1", json!({"text": "second"})),
        Err(shoal::Error::Exists { .. })
    ));
    assert_eq!(notes.get("n1").unwrap().unwrap()["text"], "first");
    // A deleted record may be created again.
    notes.delete("n1").unwrap();
    notes.create("n1", json!({"text": "again"})).unwrap();
    assert_eq!(notes.get("n1").unwrap().unwrap()["text"], "again");
    // A record that arrived from a peer is as live as a local one.
    b.collection("notes")
        .unwrap()
        .put("from-b", json!({"text": "b's"}))
        .unwrap();
    exchange(&a, &b);
    assert!(matches!(
        notes.create("from-b", json!({"text": "mine"})),
        Err(shoal::Error::Exists { .. })
    ));
    assert_eq!(notes.get("from-b").unwrap().unwrap()["text"], "b's");
}

#[test]
fn racing_creates_have_exactly_one_winner() {
    // Eight writers, four handles on one file (as the CLI next to a daemon),
    // all creating the same ids at once: each id is created exactly once,
    // and it holds its winner's value.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let handles: Vec<Store> = (0..4).map(|_| Store::open(&path).unwrap()).collect();
    let barrier = std::sync::Barrier::new(8);
    let wins: Vec<Vec<String>> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (store, barrier) = (&handles[w % 4], &barrier);
                s.spawn(move || {
                    let items = store.collection("items").unwrap();
                    barrier.wait();
                    let mut won = Vec::new();
                    for i in 0..25 {
                        let id = format!("item-{i}");
                        match items.create(&id, json!({"writer": w})) {
                            Ok(_) => won.push(format!("{id}:{w}")),
                            Err(shoal::Error::Exists { .. }) => {}
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        writers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut won: Vec<String> = wins.into_iter().flatten().collect();
    won.sort();
    assert_eq!(won.len(), 25, "each id created exactly once: {won:?}");
    let items = handles[0].collection("items").unwrap();
    for entry in &won {
        let (id, writer) = entry.split_once(':').unwrap();
        let value = items.get(id).unwrap().unwrap();
        assert_eq!(
            value["writer"].to_string(),
            writer,
            "{id} holds its winner's value"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_announce_in_commit_order() {
    // Four threads write through one store at once. Subscribers and the
    // head must see versions in commit order: a change feed that resumes
    // "after the last version it saw" would skip one that came late.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let mut changes = store.subscribe();
    let mut head = store.watch_head();
    const WRITERS: usize = 4;
    const WRITES: usize = 200;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let items = store.collection("items").unwrap();
                for i in 0..WRITES {
                    items.put(&format!("w{w}-{i}"), json!({"i": i})).unwrap();
                }
            })
        })
        .collect();
    let heads = tokio::spawn(async move {
        let mut seen = vec![];
        while head.changed().await.is_ok() {
            seen.push(*head.borrow_and_update());
            if seen
                .last()
                .is_some_and(|v| v.0 >= (WRITERS * WRITES) as u64)
            {
                break;
            }
        }
        seen
    });
    let mut versions = Vec::new();
    while versions.len() < WRITERS * WRITES {
        let event = tokio::time::timeout(Duration::from_secs(30), changes.next())
            .await
            .expect("every write announced")
            .expect("no lag at this rate");
        versions.push(event.version);
    }
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "events out of commit order: {:?}",
        versions
            .windows(2)
            .find(|w| w[0] >= w[1])
            .expect("a pair out of order")
    );
    let heads = tokio::time::timeout(Duration::from_secs(30), heads)
        .await
        .expect("the head reached the last write")
        .unwrap();
    assert!(heads.windows(2).all(|w| w[0] < w[1]), "the head went back");
}

/// Another process's commit (here a second handle, its own connection on the
/// same file) reaches the head watch even when a merge with nothing in it
/// caught up on that commit first: the network pushes on the head watch, so
/// a commit absorbed silently would not reach peers until the next one.
#[test]
fn an_other_writers_commit_moves_the_head_even_after_an_empty_merge_saw_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(&dir, "a.db");
    let cli = open(&dir, "a.db");
    let head = node.watch_head();
    let before = *head.borrow();
    let written = cli
        .collection("notes")
        .unwrap()
        .put("n1", json!({"text": "from the CLI"}))
        .unwrap()
        .expect("a version");
    node.apply(&[]).unwrap(); // catches up on the CLI's commit, merges nothing
    node.refresh_head().unwrap();
    assert!(*head.borrow() > before, "head still {:?}", *head.borrow());
    assert_eq!(*head.borrow(), written);
}

/// A store watching for other writers moves its head for another
/// process's commit (here a second handle: its own connection on the same
/// file) by itself — no refresh is called, and a plain store has no
/// periodic check — commit after commit. (A watcher that could not be set
/// up would pass too, by its 50 ms poll; one set up that names the wrong
/// file would not.)
#[test]
fn a_watching_store_notices_other_writers_commits_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(&dir, "a.db");
    node.watch_other_writers();
    let cli = open(&dir, "a.db");
    let head = node.watch_head();
    let notes = cli.collection("notes").unwrap();
    for round in 0..20 {
        let written = notes
            .put(&format!("n{round}"), json!({"round": round}))
            .unwrap()
            .expect("a version");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while *head.borrow() < written {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the head stayed at {:?}, the other handle wrote {written:?}",
                *head.borrow()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
