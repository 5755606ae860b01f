//! Two stores on one database file, as a daemon and the CLI beside it are:
//! a store opened while the other commits continues the other's log — its
//! first write never reuses a log position the other already took — and
//! its clock, once it sees the other's commits, is past every clock the
//! other issued.

use shoal_core::{CollectionName, DbVersion, Hlc, Intent, RecordId};
use shoal_store::{Store, StoreConfig, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

fn put(store: &mut Store, id: &str) -> Result<(), StoreError> {
    let op = shoal_store::WriteOp {
        collection: CollectionName::new("notes").expect("name"),
        id: RecordId::new(id).expect("id"),
        intent: Intent::Put(serde_json::Map::from_iter([("t".into(), id.into())])),
    };
    store.write(vec![op]).map(|_| ())
}

#[test]
fn a_store_opened_while_another_commits_continues_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut daemon = Store::open(&path, StoreConfig::default()).unwrap();
    put(&mut daemon, "first").unwrap();

    let writing = Arc::new(AtomicBool::new(true));
    let started = Arc::new(Barrier::new(2));
    let writer = {
        let (writing, started) = (writing.clone(), started.clone());
        std::thread::spawn(move || {
            started.wait();
            let mut n = 0u64;
            while writing.load(Ordering::SeqCst) {
                put(&mut daemon, &format!("daemon-{n}")).unwrap();
                // SQLite's wait for a lock is no queue: without a pause,
                // this loop could hold the lock past the others' timeout.
                std::thread::yield_now();
                n += 1;
            }
            n
        })
    };
    started.wait();
    // Each open reads the log's head while the other store keeps committing;
    // a head read before a commit it then takes as seen makes the first
    // write reuse that commit's log position (the key of `records`).
    // Several openers at once: more windows, and threads preempted in them.
    let (openers, opens) = (4, 60);
    let failed: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..openers)
            .map(|t| {
                let path = &path;
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for i in 0..opens {
                        let mut cli = Store::open(path, StoreConfig::default()).unwrap();
                        // A busy file is a clear error the caller may retry
                        // (SQLite's lock wait is no queue, and the loop above
                        // commits back to back); what this test looks for is
                        // a write that reuses a log position, which a retry
                        // does not hide: it starts from the head the open
                        // read, as the first attempt did.
                        let id = format!("cli-{t}-{i}");
                        let mut result = put(&mut cli, &id);
                        for _ in 0..20 {
                            match &result {
                                Err(e) if e.is_busy() => result = put(&mut cli, &id),
                                _ => break,
                            }
                        }
                        if let Err(e) = result {
                            failed.push(format!("open {t}-{i}: {e}"));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    writing.store(false, Ordering::SeqCst);
    let daemon_writes = writer.join().unwrap();
    assert!(daemon_writes > 0, "the other store never committed");
    assert!(
        failed.is_empty(),
        "{} of {} first writes failed ({daemon_writes} commits beside them): {:?}",
        failed.len(),
        openers * opens,
        &failed[..failed.len().min(3)]
    );
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let notes = CollectionName::new("notes").unwrap();
    for (t, i) in (0..openers).flat_map(|t| (0..opens).map(move |i| (t, i))) {
        let id = RecordId::new(format!("cli-{t}-{i}")).unwrap();
        assert!(
            store.get(&notes, &id).unwrap().is_some(),
            "cli-{t}-{i} lost"
        );
    }
}

#[test]
fn a_store_seeing_the_others_commits_writes_past_the_clock_the_other_issued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut daemon = Store::open(&path, StoreConfig::default()).unwrap();
    // Opened beside it (`shoal put` next to the daemon), before what follows.
    let mut cli = Store::open(&path, StoreConfig::default()).unwrap();
    let mut peer = Store::open(dir.path().join("peer.db"), StoreConfig::default()).unwrap();
    put(&mut peer, "older").unwrap();
    let older: Vec<_> = peer
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap();
    // A peer's change 20 s ahead of this machine's clock (within the allowed
    // drift) takes the daemon's clock there; its own write comes after it.
    put(&mut peer, "ahead").unwrap();
    let ahead_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        + 20_000;
    let ahead: Vec<_> = peer
        .changes_since(DbVersion(0))
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .into_iter()
        .filter(|c| c.id.as_str() == "ahead")
        .map(|mut c| {
            c.clock.hlc = Hlc::new(ahead_ms, 0);
            c
        })
        .collect();
    daemon.apply(&ahead).unwrap();
    put(&mut daemon, "mine").unwrap();
    let issued = daemon.last_hlc();
    assert!(issued > Hlc::new(ahead_ms, 0));
    // Then older changes merged: the log's last transaction holds clocks
    // below the one the daemon issued, which only its clock mark keeps.
    daemon.apply(&older).unwrap();
    put(&mut cli, "beside").unwrap();
    let written = cli.last_hlc();
    assert!(
        written > issued,
        "the second store wrote at {written:?}, not past {issued:?} the first issued"
    );
}
