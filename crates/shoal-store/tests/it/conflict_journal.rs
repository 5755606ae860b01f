//! The conflict journal's table at the storage layer: entries go in and come
//! back whole (field, map entry and record slots, tombstones, both clocks),
//! listing filters by collection and time, the journal stays within its
//! count and age bounds, a journal of 0 entries is off, and a schema-4 file
//! gains the table on open.

use shoal_core::{CanonicalJson, Clock, CollectionName, FieldName, Hlc, RecordId, SiteId, Slot};
use shoal_store::{ConflictEntry, ConflictQuery, ConflictSide, JournalBounds, Store, StoreConfig};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64
}

fn open(path: &Path, journal: JournalBounds) -> Store {
    let config = StoreConfig {
        journal,
        ..StoreConfig::default()
    };
    Store::open(path, config).expect("open")
}

fn side(value: Option<&str>, wall: u64, site: u64) -> ConflictSide {
    ConflictSide {
        value: value.map(|v| CanonicalJson::parse(v, 1024).expect("json")),
        clock: Clock {
            hlc: Hlc::new(wall, 1),
            site: SiteId(site),
        },
    }
}

fn entry(collection: &str, id: &str, slot: Slot, at_ms: u64) -> ConflictEntry {
    ConflictEntry {
        collection: CollectionName::new(collection).expect("name"),
        id: RecordId::new(id).expect("id"),
        slot,
        kept: side(Some("\"kept\""), at_ms, 7),
        lost: side(Some("\"lost\""), at_ms - 1, u64::MAX - 3),
        at_ms,
    }
}

fn field(name: &str) -> Slot {
    Slot::Field(FieldName::new(name).expect("field"))
}

#[test]
fn entries_come_back_whole_newest_first_and_filtered() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(&dir.path().join("a.db"), JournalBounds::default());
    let now = now_ms();
    let mut tombstoned = entry("tasks", "t1", Slot::Life, now - 5_000);
    tombstoned.kept.value = None;
    let entries = vec![
        entry("notes", "n1", field("title"), now - 10_000),
        entry(
            "notes",
            "n2",
            Slot::Entry(FieldName::new("tags").expect("f"), "red".into()),
            now - 1_000,
        ),
        tombstoned.clone(),
    ];
    store.journal_conflicts(&entries).expect("journal");

    let all = store.conflicts(&ConflictQuery::default()).expect("list");
    let got: Vec<ConflictEntry> = all.iter().map(|c| c.entry.clone()).collect();
    let mut expected = entries.clone();
    expected.reverse();
    assert_eq!(got, expected, "newest first, every part kept");
    assert!(all[0].n > all[1].n && all[1].n > all[2].n);

    let notes = store
        .conflicts(&ConflictQuery {
            collection: Some(CollectionName::new("notes").expect("name")),
            ..ConflictQuery::default()
        })
        .expect("list");
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|c| c.entry.collection.as_str() == "notes"));

    let recent = store
        .conflicts(&ConflictQuery {
            since_ms: Some(now - 6_000),
            ..ConflictQuery::default()
        })
        .expect("list");
    let ids: Vec<&str> = recent.iter().map(|c| c.entry.id.as_str()).collect();
    assert_eq!(ids, vec!["t1", "n2"]);

    let one = store
        .conflicts(&ConflictQuery {
            limit: Some(1),
            ..ConflictQuery::default()
        })
        .expect("list");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].entry, tombstoned);
}

#[test]
fn the_journal_keeps_to_its_count_and_age_bounds() {
    let dir = tempfile::tempdir().expect("dir");
    let bounds = JournalBounds {
        max_entries: 3,
        max_age_ms: 60_000,
    };
    let mut store = open(&dir.path().join("a.db"), bounds);
    let now = now_ms();
    for i in 0..5 {
        store
            .journal_conflicts(&[entry("notes", &format!("n{i}"), field("f"), now)])
            .expect("journal");
    }
    let ids: Vec<String> = store
        .conflicts(&ConflictQuery::default())
        .expect("list")
        .into_iter()
        .map(|c| c.entry.id.to_string())
        .collect();
    assert_eq!(ids, vec!["n4", "n3", "n2"], "the oldest go past the count");

    // An entry older than the age bound is never listed, and goes at the
    // next insert.
    store
        .journal_conflicts(&[entry("notes", "old", field("f"), now - 120_000)])
        .expect("journal");
    let listed = store.conflicts(&ConflictQuery::default()).expect("list");
    assert!(listed.iter().all(|c| c.entry.id.as_str() != "old"));
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("a.db")).expect("sqlite");
    let (rows, old): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE rid = 'old') FROM conflicts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count");
    assert_eq!(
        (rows, old),
        (3, 0),
        "the aged entry is gone, the count held"
    );
}

#[test]
fn a_journal_of_no_entries_is_off() {
    let dir = tempfile::tempdir().expect("dir");
    let bounds = JournalBounds {
        max_entries: 0,
        ..JournalBounds::default()
    };
    let mut store = open(&dir.path().join("a.db"), bounds);
    store
        .journal_conflicts(&[entry("notes", "n1", field("f"), now_ms())])
        .expect("journal");
    assert!(
        store
            .conflicts(&ConflictQuery::default())
            .expect("list")
            .is_empty()
    );
}

#[test]
fn a_schema_4_file_gains_the_journal() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("a.db");
    drop(open(&path, JournalBounds::default()));
    {
        let conn = rusqlite::Connection::open(&path).expect("sqlite");
        conn.execute_batch("DROP TABLE conflicts; PRAGMA user_version = 4;")
            .expect("downgrade");
    }
    let mut store = open(&path, JournalBounds::default());
    store
        .journal_conflicts(&[entry("notes", "n1", field("f"), now_ms())])
        .expect("journal");
    assert_eq!(
        store
            .conflicts(&ConflictQuery::default())
            .expect("list")
            .len(),
        1
    );
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, shoal_store::SCHEMA_VERSION);
}
