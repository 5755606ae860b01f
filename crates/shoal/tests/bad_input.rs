//! Bad input is refused with a clear, specific error and changes nothing.
//!
//! Covers: invalid collection names, record ids and field names; non-object
//! bodies; values over the configured size cap (put, patch, map_set, and a
//! `put_many` whose last record is too large); patch/delete/map_remove of a
//! missing or deleted record; queries with a bad limit or an unusable field
//! name; remote batches with a clock too far ahead, a field written in a
//! deleted life, a life change carrying a value, or an oversized value; and
//! files that are not Shoal databases — random garbage, another application's
//! SQLite database, a Shoal file with damaged pages, and one with a newer
//! schema version. After every refused call, `db_version()`, the records, the
//! change log and the status are compared with a snapshot taken before it;
//! refused files are compared byte for byte.

use serde_json::{Map, Value, json};
use shoal::{
    Change, Collection, DbVersion, Error, ListOptions, Order, Query, Store, StoreConfig,
    StoreOptions, StoreStatus,
};
use shoal_core::{CanonicalJson, CoreError, Hlc, Life, Slot};
use shoal_store::StoreError;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const CAP: usize = 1024;

fn capped(path: &Path) -> Store {
    Store::open_with(
        path,
        StoreOptions {
            config: StoreConfig {
                max_value_bytes: CAP,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap()
}

/// Everything a refused call must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    version: DbVersion,
    status: StoreStatus,
    records: Vec<(String, String, Map<String, Value>)>,
    log: Vec<Change>,
}

fn snapshot(store: &Store) -> Snapshot {
    let status = store.status().unwrap();
    let mut records = Vec::new();
    for c in &status.collections {
        let coll = store.collection(c.name.as_str()).unwrap();
        let mut after = None;
        loop {
            let page = coll
                .list(&ListOptions {
                    after: after.clone(),
                    limit: 1000,
                    ..Default::default()
                })
                .unwrap();
            for (id, fields) in page.records {
                records.push((c.name.to_string(), id.to_string(), fields));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Snapshot {
        version: store.db_version(),
        status,
        records,
        log: store
            .changes_since(DbVersion(0))
            .collect::<Result<_, _>>()
            .unwrap(),
    }
}

/// Runs a call that must fail, checks it changed nothing, returns its error.
fn refused<T: std::fmt::Debug>(
    store: &Store,
    what: &str,
    call: impl FnOnce() -> Result<T, Error>,
) -> Error {
    let before = snapshot(store);
    let result = call();
    let after = snapshot(store);
    let err = match result {
        Ok(value) => panic!("{what}: accepted, returned {value:?}"),
        Err(err) => err,
    };
    assert!(!err.to_string().is_empty(), "{what}: empty error message");
    assert_eq!(
        before.version, after.version,
        "{what}: refused ({err}) but db_version moved"
    );
    assert_eq!(
        before.records, after.records,
        "{what}: refused ({err}) but records changed"
    );
    assert_eq!(
        before.log, after.log,
        "{what}: refused ({err}) but the change log changed"
    );
    assert_eq!(
        before.status, after.status,
        "{what}: refused ({err}) but status changed"
    );
    err
}

/// A store holding: tasks/t1 live, tasks/t2 deleted, notes/n1 with a map field.
fn fixture(path: &Path) -> Store {
    let store = capped(path);
    let tasks = store.collection("tasks").unwrap();
    tasks.put("t1", json!({"title": "one", "n": 1})).unwrap();
    tasks.put("t2", json!({"title": "two"})).unwrap();
    tasks.delete("t2").unwrap();
    let notes = store.collection("notes").unwrap();
    notes.put("n1", json!({"text": "hi"})).unwrap();
    notes.map_set("n1", "tags", "red", json!(true)).unwrap();
    store
}

/// A write to try, boxed so different calls fit in one list.
type WriteCall<'a> = Box<dyn FnOnce() -> Result<Option<DbVersion>, Error> + 'a>;

fn is_core(err: &Error, check: impl Fn(&CoreError) -> bool) -> bool {
    matches!(err, Error::Invalid(core) if check(core))
}

#[test]
fn invalid_collection_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let long = "a".repeat(65);
    for name in ["", "9abc", "a b", long.as_str(), "é", "_x", "a.b", "a/b"] {
        let err = refused(&store, &format!("collection {name:?}"), || {
            store.collection(name)
        });
        assert!(
            is_core(
                &err,
                |e| matches!(e, CoreError::InvalidCollectionName { name: n, .. } if n == name)
            ),
            "collection {name:?}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        let err = refused(&store, &format!("typed {name:?}"), || {
            store.typed::<Value>(name)
        });
        assert!(
            is_core(&err, |e| matches!(
                e,
                CoreError::InvalidCollectionName { .. }
            )),
            "{err:?}"
        );
    }
    // The longest allowed name is fine.
    let ok = "a".repeat(64);
    store.collection(&ok).unwrap().put("x", json!({})).unwrap();
}

#[test]
fn invalid_record_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let long = "a".repeat(129);
    let bad_ids = ["", "a/b", "a b", long.as_str(), "é", "日本", "a\nb", "t1?"];
    for id in bad_ids {
        let is_bad_id = |err: &Error| {
            is_core(
                err,
                |e| matches!(e, CoreError::InvalidRecordId { id: got, .. } if got == id),
            )
        };
        let calls: Vec<(&str, WriteCall)> = vec![
            ("put", Box::new(|| tasks.put(id, json!({"a": 1})))),
            ("patch", Box::new(|| tasks.patch(id, json!({"a": 1})))),
            ("delete", Box::new(|| tasks.delete(id))),
            (
                "map_set",
                Box::new(|| tasks.map_set(id, "tags", "k", json!(1))),
            ),
            ("map_remove", Box::new(|| tasks.map_remove(id, "tags", "k"))),
            (
                "put_many",
                Box::new(|| tasks.put_many([("ok1", json!({"a": 1})), (id, json!({"a": 2}))])),
            ),
        ];
        for (what, call) in calls {
            let err = refused(&store, &format!("{what} id {id:?}"), call);
            assert!(is_bad_id(&err), "{what} id {id:?}: {err:?}");
            assert!(err.to_string().contains(&format!("{id:?}")), "{err}");
        }
        let err = refused(&store, &format!("get id {id:?}"), || tasks.get(id));
        assert!(is_bad_id(&err), "get id {id:?}: {err:?}");
    }
    // The longest allowed id is fine.
    tasks.put(&"a".repeat(128), json!({"a": 1})).unwrap();
}

#[test]
fn non_object_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let bodies = [
        (json!([1, 2]), "an array"),
        (json!("text"), "a string"),
        (json!(3), "a number"),
        (Value::Null, "null"),
        (json!(true), "a boolean"),
    ];
    for (body, kind) in bodies {
        let is_not_object = |err: &Error| matches!(err, Error::Invalid(CoreError::NotAnObject { got }) if *got == kind);
        for id in ["t1", "t2", "new"] {
            let err = refused(&store, &format!("put {id} {body}"), || {
                tasks.put(id, body.clone())
            });
            assert!(is_not_object(&err), "put {body}: {err:?}");
            assert!(err.to_string().contains(kind), "{err}");
            let err = refused(&store, &format!("patch {id} {body}"), || {
                tasks.patch(id, body.clone())
            });
            assert!(is_not_object(&err), "patch {body}: {err:?}");
        }
        let err = refused(&store, &format!("put_many {body}"), || {
            tasks.put_many([("ok1", json!({"a": 1})), ("ok2", body.clone())])
        });
        assert!(is_not_object(&err), "put_many {body}: {err:?}");
    }
    // A typed collection whose type is not a JSON object.
    let numbers = store.typed::<Vec<u8>>("tasks").unwrap();
    let err = refused(&store, "typed put of a Vec", || numbers.put("v", &vec![1]));
    assert!(
        matches!(
            err,
            Error::Invalid(CoreError::NotAnObject { got: "an array" })
        ),
        "{err:?}"
    );
}

#[test]
fn values_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    // {"s":"xxx…"} is the string's length + 8 bytes.
    let sized = |len: usize| json!({"s": "x".repeat(len - 8)});
    let too_large = |err: &Error, size: usize| matches!(err, Error::Invalid(CoreError::ValueTooLarge { size: s, cap: CAP }) if *s == size);
    for id in ["t1", "t2", "new"] {
        let err = refused(&store, &format!("put {id}"), || {
            tasks.put(id, sized(CAP + 1))
        });
        assert!(too_large(&err, CAP + 1), "put {id}: {err:?}");
        assert!(err.to_string().contains("1025") && err.to_string().contains("1024"));
        let err = refused(&store, &format!("map_set {id}"), || {
            tasks.map_set(id, "tags", "k", json!("y".repeat(CAP)))
        });
        // The cap is on the whole record: the entry alone is CAP + 2 bytes.
        assert!(
            matches!(&err, Error::Invalid(CoreError::ValueTooLarge { size, cap: CAP }) if *size >= CAP + 2),
            "map_set {id}: {err:?}"
        );
    }
    let err = refused(&store, "patch", || {
        tasks.patch("t1", json!({"big": "z".repeat(2 * CAP), "n": 2}))
    });
    assert!(
        is_core(&err, |e| matches!(
            e,
            CoreError::ValueTooLarge { cap: CAP, .. }
        )),
        "{err:?}"
    );
    let err = refused(&store, "put_many with the last record too large", || {
        let mut batch: Vec<(String, Value)> = (0..20)
            .map(|i| (format!("b{i}"), json!({"i": i})))
            .collect();
        batch.push(("t1".into(), json!({"title": "changed"})));
        batch.push(("last".into(), sized(CAP + 1)));
        tasks.put_many(batch)
    });
    assert!(too_large(&err, CAP + 1), "put_many: {err:?}");
    // Exactly at the cap is accepted.
    tasks.put("t1", sized(CAP)).unwrap();
    assert_eq!(Value::Object(tasks.get("t1").unwrap().unwrap()), sized(CAP));
}

#[test]
fn missing_or_deleted_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let notes = store.collection("notes").unwrap();
    for (coll, id) in [(&tasks, "t2"), (&tasks, "never"), (&notes, "t1")] {
        let not_found = |err: &Error| {
            matches!(err, Error::NotFound { collection, id: got }
                if collection == coll.name() && got.as_str() == id)
        };
        let err = refused(&store, &format!("patch {id}"), || {
            coll.patch(id, json!({"a": 1}))
        });
        assert!(not_found(&err), "patch {id}: {err:?}");
        assert!(err.to_string().contains(id), "{err}");
        let err = refused(&store, &format!("delete {id}"), || coll.delete(id));
        assert!(not_found(&err), "delete {id}: {err:?}");
        let err = refused(&store, &format!("map_remove {id}"), || {
            coll.map_remove(id, "tags", "red")
        });
        assert!(not_found(&err), "map_remove {id}: {err:?}");
    }
    // Deleting twice: the second one is NotFound.
    tasks.delete("t1").unwrap();
    let err = refused(&store, "second delete", || tasks.delete("t1"));
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[test]
fn invalid_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let notes = store.collection("notes").unwrap();
    let long = "f".repeat(129);
    for field in ["", "a\nb", "\u{7f}", long.as_str()] {
        let bad_field = |err: &Error| {
            is_core(
                err,
                |e| matches!(e, CoreError::InvalidFieldName { name, .. } if name == field),
            )
        };
        let mut body = Map::new();
        body.insert("ok".into(), json!(1));
        body.insert(field.to_string(), json!(2));
        let body = Value::Object(body);
        // Live, deleted (a put would start a new life) and unknown records.
        for id in ["t1", "t2", "new"] {
            let err = refused(&store, &format!("put {id} field {field:?}"), || {
                tasks.put(id, body.clone())
            });
            assert!(bad_field(&err), "put {id} {field:?}: {err:?}");
        }
        let err = refused(&store, &format!("patch field {field:?}"), || {
            tasks.patch("t1", body.clone())
        });
        assert!(bad_field(&err), "patch {field:?}: {err:?}");
        let err = refused(&store, &format!("put_many field {field:?}"), || {
            tasks.put_many([("ok1", json!({"a": 1})), ("ok2", body.clone())])
        });
        assert!(bad_field(&err), "put_many {field:?}: {err:?}");
        let err = refused(&store, &format!("map_set field {field:?}"), || {
            notes.map_set("n1", field, "k", json!(1))
        });
        assert!(bad_field(&err), "map_set {field:?}: {err:?}");
        let err = refused(&store, &format!("map_remove field {field:?}"), || {
            notes.map_remove("n1", field, "red")
        });
        assert!(bad_field(&err), "map_remove {field:?}: {err:?}");
    }
}

#[test]
fn bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    tasks.create_index("n").unwrap();
    let invalid_query = |err: &Error, needle: &str| matches!(err, Error::Store(StoreError::InvalidQuery(msg)) if msg.contains(needle));
    for limit in [0, 10_001, usize::MAX] {
        let err = refused(&store, &format!("query limit {limit}"), || {
            tasks.query(&Query::new().limit(limit))
        });
        assert!(invalid_query(&err, &limit.to_string()), "{err:?}");
        let err = refused(&store, &format!("list limit {limit}"), || {
            tasks.list(&ListOptions {
                limit,
                ..Default::default()
            })
        });
        assert!(invalid_query(&err, "limit"), "{err:?}");
    }
    assert_eq!(tasks.query(&Query::new().limit(10_000)).unwrap().len(), 1);
    for field in ["a\"b", "it's", "back\\slash"] {
        let queries = [
            Query::new().eq(field, json!(1)),
            Query::new().range(field, Some(json!(1)), None),
            Query::new().order_by(field, Order::Desc),
            Query::new().eq("n", json!(1)).order_by(field, Order::Asc),
        ];
        for query in queries {
            let err = refused(&store, &format!("query on {field:?}"), || {
                tasks.query(&query)
            });
            assert!(invalid_query(&err, "quotes"), "{field:?}: {err:?}");
        }
        let err = refused(&store, &format!("index on {field:?}"), || {
            tasks.create_index(field)
        });
        assert!(invalid_query(&err, "quotes"), "index {field:?}: {err:?}");
    }
    // A field name that breaks the naming rules is refused as such.
    let err = refused(&store, "query on an empty field name", || {
        tasks.query(&Query::new().eq("", json!(1)))
    });
    assert!(
        is_core(&err, |e| matches!(e, CoreError::InvalidFieldName { .. })),
        "{err:?}"
    );
    // Only scalars can be compared.
    let err = refused(&store, "query eq an array", || {
        tasks.query(&Query::new().eq("n", json!([1])))
    });
    assert!(invalid_query(&err, "compared"), "{err:?}");
}

/// A deterministic stream of garbage bytes (xorshift).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn garbage_file_is_corrupt_and_untouched() {
    for (len, seed) in [(10, 1), (100, 2), (4096, 3), (65_536 + 123, 4)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        let bytes = garbage(len, seed);
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path).expect_err("garbage opened as a store");
        assert!(
            matches!(&err, Error::Store(StoreError::Corrupt { path: p, .. }) if *p == path),
            "{len} bytes of garbage: {err:?}"
        );
        assert!(err.to_string().contains("garbage.db"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "garbage file changed");
        assert_eq!(dir_listing(dir.path()), ["garbage.db"]);
    }
}

#[test]
fn foreign_sqlite_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Another application's database, with and without its own application id.
    for (name, app_id) in [("plain.db", 0i64), ("tagged.db", 0x1234_5678)] {
        let path = dir.path().join(name);
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT);
                 INSERT INTO contacts (name) VALUES ('ada'), ('grace');",
            )
            .unwrap();
            conn.pragma_update(None, "application_id", app_id).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let err = Store::open(&path).expect_err("foreign database opened");
        assert!(
            matches!(&err, Error::Store(StoreError::Foreign { path: p, application_id, tables: 1 })
                if *p == path && *application_id == app_id),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("not a Shoal database"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} changed");
    }
    assert_eq!(dir_listing(dir.path()), ["plain.db", "tagged.db"]);
}

/// Writes a Shoal file of 3000 records and closes it (which checkpoints the
/// WAL into the main file); returns its bytes.
fn shoal_file_bytes(path: &Path) -> Vec<u8> {
    {
        let store = Store::open(path).unwrap();
        let items = store.collection("items").unwrap();
        for batch in 0..10 {
            items
                .put_many((0..300).map(|i| {
                    let n = batch * 300 + i;
                    (
                        format!("item:{n:05}"),
                        json!({"n": n, "text": format!("record number {n}"), "even": n % 2 == 0}),
                    )
                }))
                .unwrap();
        }
    }
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 256 * 1024,
        "main file is only {} bytes",
        bytes.len()
    );
    bytes
}

/// Writes `clean` to `path` with `range` overwritten by garbage and no WAL.
fn write_damaged(path: &Path, clean: &[u8], range: std::ops::Range<usize>) {
    let mut bytes = clean.to_vec();
    let len = range.len();
    bytes[range].copy_from_slice(&garbage(len, 7));
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::write(path, &bytes).unwrap();
}

/// Opens the store and reads (then writes) everything, stopping at the first error.
fn use_everything(path: &Path) -> Result<(), Error> {
    let store = Store::open(path)?;
    let items = store.collection("items")?;
    let mut after = None;
    loop {
        let page = items.list(&ListOptions {
            after,
            limit: 500,
            ..Default::default()
        })?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for n in 0..3000 {
        items.get(&format!("item:{n:05}"))?;
    }
    for change in store.changes_since(DbVersion(0)) {
        change?;
    }
    store.status()?;
    items.query(&Query::new().eq("even", json!(true)).limit(10_000))?;
    items.put("item:00001", json!({"n": -1}))?;
    Ok(())
}

#[test]
fn damaged_shoal_file_gives_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let clean = shoal_file_bytes(&path);
    const PAGE: usize = 4096;
    let pages = clean.len() / PAGE;
    // The middle third (refused at open), and single pages that open fine but
    // fail on the first read that reaches them.
    let damages = [
        ("middle third", clean.len() / 3..clean.len() * 2 / 3),
        (
            "one page at 30%",
            pages * 3 / 10 * PAGE..(pages * 3 / 10 + 1) * PAGE,
        ),
        (
            "one page at 70%",
            pages * 7 / 10 * PAGE..(pages * 7 / 10 + 1) * PAGE,
        ),
        ("the last page", (pages - 1) * PAGE..pages * PAGE),
    ];
    for (what, range) in damages {
        write_damaged(&path, &clean, range);
        let outcome = std::panic::catch_unwind(|| use_everything(&path));
        let result = outcome.unwrap_or_else(|_| panic!("{what}: a damaged file made Shoal panic"));
        let err = result.expect_err(&format!("{what} is garbage, yet every read succeeded"));
        assert!(
            matches!(err, Error::Store(StoreError::Corrupt { .. })),
            "{what}: expected Corrupt, got {err:?}"
        );
        assert!(err.to_string().contains("malformed"), "{what}: {err}");
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .collection("tasks")
            .unwrap()
            .put("t1", json!({"title": "kept"}))
            .unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let err = Store::open(&path).expect_err("a newer schema opened");
    assert!(
        matches!(&err, Error::Store(StoreError::UnsupportedSchema { path: p, found: 99, supported: 2 }) if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("99"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file changed");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Changes written on another replica: two records, one with a map field.
fn remote_changes(dir: &Path) -> Vec<Change> {
    let other = Store::open(dir.join("other.db")).unwrap();
    let tasks = other.collection("tasks").unwrap();
    tasks.put("r1", json!({"title": "remote", "n": 7})).unwrap();
    tasks.put("r2", json!({"title": "second"})).unwrap();
    tasks.map_set("r2", "tags", "blue", json!(true)).unwrap();
    other
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn field_change(changes: &[Change]) -> Change {
    changes
        .iter()
        .find(|c| matches!(c.slot, Slot::Field(_)))
        .unwrap()
        .clone()
}

fn check_batch_refused(
    store: &Store,
    good: &[Change],
    bad: Change,
    what: &str,
    check: impl Fn(&CoreError) -> bool,
) {
    // The bad change last, first, and alone: the whole batch is refused.
    let mut last = good.to_vec();
    last.push(bad.clone());
    let mut first = vec![bad.clone()];
    first.extend_from_slice(good);
    for batch in [last, first, vec![bad]] {
        let err = refused(store, what, || store.apply(&batch));
        assert!(is_core(&err, &check), "{what}: {err:?}");
    }
}

#[test]
fn remote_batches_with_a_bad_change_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let good = remote_changes(dir.path());
    let malformed = |reason: &'static str| move |e: &CoreError| matches!(e, CoreError::MalformedChange { reason: r, .. } if *r == reason);

    let mut future = field_change(&good);
    future.clock.hlc = Hlc::new(now_ms() + 3_600_000, 0);
    check_batch_refused(&store, &good, future, "clock 1 h ahead", |e| {
        matches!(e, CoreError::ClockTooFarAhead { ahead_ms, max_drift_ms, .. }
            if *ahead_ms > 3_500_000 && *max_drift_ms < *ahead_ms)
    });

    let mut dead_life = field_change(&good);
    dead_life.life = Life(2);
    check_batch_refused(
        &store,
        &good,
        dead_life,
        "field in an even life",
        malformed("field written in a deleted life"),
    );

    let mut life_with_value = good
        .iter()
        .find(|c| matches!(c.slot, Slot::Life))
        .unwrap()
        .clone();
    life_with_value.value = Some(CanonicalJson::from_value(&json!(1)));
    check_batch_refused(
        &store,
        &good,
        life_with_value,
        "life change with a value",
        malformed("a life change carries no value"),
    );

    let mut life_zero = field_change(&good);
    life_zero.life = Life(0);
    check_batch_refused(
        &store,
        &good,
        life_zero,
        "change in life 0",
        malformed("life 0 is never written"),
    );

    let mut big = field_change(&good);
    big.value = Some(CanonicalJson::from_value(&json!("x".repeat(2 * CAP))));
    check_batch_refused(&store, &good, big, "value over the cap", |e| {
        matches!(e, CoreError::ValueTooLarge { cap: CAP, .. })
    });

    // The refused future clock was not absorbed: a local write now is stamped
    // with the present, not an hour ahead.
    let before = store.db_version();
    store
        .collection("tasks")
        .unwrap()
        .patch("t1", json!({"n": 2}))
        .unwrap();
    for change in store.changes_since(before) {
        let change = change.unwrap();
        assert!(
            change.clock.hlc.wall_ms() < now_ms() + 60_000,
            "local clock jumped ahead: {}",
            change.clock
        );
    }

    // The good changes on their own are accepted.
    let report = store.apply(&good).unwrap();
    assert_eq!(report.applied, good.len());
    let tasks = store.collection("tasks").unwrap();
    assert_eq!(tasks.get("r1").unwrap().unwrap()["n"], 7);
    assert_eq!(
        tasks.get("r2").unwrap().unwrap()["tags"],
        json!({"blue": true})
    );
}

/// Regression (was a bug): a local write accepts a map key longer than 128 bytes (through
/// `map_set`, or `put`/`patch` of an object onto a map field), which every peer
/// then refuses ("map key longer than 128 bytes"), refusing the whole batch it
/// travels in — an acknowledged write that will not sync.
#[test]
fn long_map_key_is_refused_locally() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let notes = store.collection("notes").unwrap();
    let key = "k".repeat(129);
    // n1's "tags" is a map field, so put and patch diff it entry by entry.
    let mut entries = Map::new();
    entries.insert(key.clone(), json!(1));
    let body = json!({"text": "hi", "tags": Value::Object(entries)});
    refused(&store, "put of a 129-byte key onto a map field", || {
        notes.put("n1", body.clone())
    });
    refused(&store, "patch of a 129-byte key onto a map field", || {
        notes.patch("n1", body.clone())
    });
    refused(&store, "map_set with a 129-byte key", || {
        notes.map_set("n1", "tags", &key, json!(1))
    });
}

/// Regression (was a bug): a failed write (bad field name, patch/delete of a missing
/// record, ...) to a collection that does not exist yet still creates it (the
/// collection row is inserted outside the write transaction), so `status()`
/// lists a new, empty collection.
#[test]
fn refused_write_creates_no_collection() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let fresh: Collection = store.collection("fresh").unwrap();
    refused(&store, "put with an empty field name", || {
        fresh.put("x", json!({"": 1}))
    });
    refused(&store, "patch of a record that does not exist", || {
        fresh.patch("x", json!({"a": 1}))
    });
    refused(&store, "delete of a record that does not exist", || {
        fresh.delete("x")
    });
}

/// Regression (was a bug): a query is only validated when its collection exists, so a bad
/// limit or field name on an empty or unknown collection returns `Ok([])`.
#[test]
fn bad_query_on_unknown_collection() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let missing = store.collection("missing").unwrap();
    refused(&store, "limit 0", || missing.query(&Query::new().limit(0)));
    refused(&store, "quoted field", || {
        missing.query(&Query::new().eq("a\"b", json!(1)))
    });
}

/// Regression (was a bug): a `Corrupt` error named the file "(open store)"
/// instead of the path that was opened — whether the damage is found while
/// opening or by the first read that reaches the damaged pages.
#[test]
fn corrupt_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let clean = shoal_file_bytes(&path);
    write_damaged(&path, &clean, clean.len() / 3..clean.len() * 2 / 3);
    let err = match Store::open(&path) {
        Err(err) => err,
        // Opening reads only the header, meta and the log's last records, and
        // ordinary reads may not notice damage: the explicit check must.
        Ok(store) => store.verify().expect_err("verify passed a damaged file"),
    };
    assert!(
        matches!(&err, Error::Store(StoreError::Corrupt { path: p, .. }) if *p == path),
        "{err:?}"
    );
}
