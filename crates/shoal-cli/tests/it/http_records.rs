//! End-to-end tests of the records routes against a real `shoal serve` over
//! real HTTP: create (given and generated ids, 409 on a live id, a new life
//! at a tombstone), get, put, patch, delete, paged lists with a prefix, the
//! collection counts, map entries set and removed, and each route's refusals
//! — and that a write through the API is the library's (the CLI reads it
//! back), its reply carrying the write's clock.
#![cfg(unix)]

use crate::common;

use common::Node;
use common::http::Api;
use serde_json::{Value, json};

const SECRET: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

fn ids(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .expect("a records array")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_read_update_delete() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let records = "/api/collections/notes/records";

    // Create with an id; the same id again is refused while it is live.
    let created = api
        .post(
            records,
            &json!({"id": "n1", "value": {"title": "first", "pinned": true}}),
        )
        .expect(201);
    assert_eq!(created["id"], "n1");
    let v1 = created["db_version"].as_u64().expect("a db_version");
    let again = api
        .post(records, &json!({"id": "n1", "value": {"title": "other"}}))
        .error(409, "already-exists");
    assert!(again.contains("n1"), "{again}");
    let got = api.get(&format!("{records}/n1")).expect(200);
    assert_eq!(
        got,
        json!({"id": "n1", "value": {"title": "first", "pinned": true}})
    );

    // Without an id one is generated: 32 hex digits, readable at once.
    let generated = api
        .post(records, &json!({"value": {"title": "anon"}}))
        .expect(201);
    let id = generated["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert!(generated["db_version"].as_u64().unwrap() > v1);
    let other = api.post(records, &json!({"value": {}})).expect(201);
    assert_ne!(other["id"], generated["id"]);
    assert_eq!(
        api.get(&format!("{records}/{id}")).expect(200)["value"],
        json!({"title": "anon"})
    );

    // PUT replaces the whole value; the same value again changes nothing.
    let put = api
        .put(
            &format!("{records}/n1"),
            &json!({"title": "second", "tags": ["a"]}),
        )
        .expect(200);
    assert_eq!(put["id"], "n1");
    assert!(put["db_version"].as_u64().unwrap() > v1);
    let same = api
        .put(
            &format!("{records}/n1"),
            &json!({"title": "second", "tags": ["a"]}),
        )
        .expect(200);
    assert_eq!(same["db_version"], Value::Null);
    // PATCH changes the fields given; null removes one.
    api.patch(
        &format!("{records}/n1"),
        &json!({"tags": null, "done": true}),
    )
    .expect(200);
    assert_eq!(
        api.get(&format!("{records}/n1")).expect(200)["value"],
        json!({"title": "second", "done": true})
    );
    // What the API wrote is the library's: the CLI on the same data reads it.
    let cli = n.run(&["get", "notes", "n1"]).ok().json();
    assert_eq!(cli, json!({"title": "second", "done": true}));

    // DELETE, then the record is gone for every route but PUT and POST.
    let deleted = api.delete(&format!("{records}/n1")).expect(200);
    assert_eq!(deleted["id"], "n1");
    assert!(deleted["db_version"].is_u64());
    api.get(&format!("{records}/n1")).error(404, "not-found");
    api.delete(&format!("{records}/n1")).error(404, "not-found");
    api.patch(&format!("{records}/n1"), &json!({"done": false}))
        .error(404, "not-found");
    api.patch(&format!("{records}/never"), &json!({"a": 1}))
        .error(404, "not-found");
    api.get(&format!("{records}/never")).error(404, "not-found");
    // A tombstoned id can be created again: a new life, not a conflict.
    api.post(records, &json!({"id": "n1", "value": {"title": "reborn"}}))
        .expect(201);
    assert_eq!(
        api.get(&format!("{records}/n1")).expect(200)["value"],
        json!({"title": "reborn"})
    );
    api.delete(&format!("{records}/n1")).expect(200);
    api.put(&format!("{records}/n1"), &json!({"title": "put back"}))
        .expect(200);
    assert_eq!(
        api.get(&format!("{records}/n1")).expect(200)["value"],
        json!({"title": "put back"})
    );

    // The collection list counts live and deleted records.
    api.put("/api/collections/tasks/records/t1", &json!({"x": 1}))
        .expect(200);
    api.put("/api/collections/tasks/records/t2", &json!({"x": 2}))
        .expect(200);
    api.delete("/api/collections/tasks/records/t2").expect(200);
    assert_eq!(
        api.get("/api/collections").expect(200),
        json!({"collections": [
            {"name": "notes", "live": 3, "deleted": 0},
            {"name": "tasks", "live": 1, "deleted": 1},
        ]})
    );
}

#[test]
fn lists_page_by_prefix_and_refuse_bad_parameters() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    for i in 0..7 {
        api.put(
            &format!("/api/collections/items/records/p{i}"),
            &json!({"n": i}),
        )
        .expect(200);
    }
    for other in ["a1", "q1"] {
        api.put(
            &format!("/api/collections/items/records/{other}"),
            &json!({}),
        )
        .expect(200);
    }
    api.delete("/api/collections/items/records/p4").expect(200);

    let base = "/api/collections/items/records";
    let first = api.get(&format!("{base}?prefix=p&limit=3")).expect(200);
    assert_eq!(ids(&first), ["p0", "p1", "p2"]);
    assert_eq!(first["records"][1]["value"], json!({"n": 1}));
    assert_eq!(first["next"], "p2");
    let second = api
        .get(&format!("{base}?prefix=p&limit=3&after=p2"))
        .expect(200);
    // Deleted records are not listed; the last page has no `next`.
    assert_eq!(ids(&second), ["p3", "p5", "p6"]);
    assert_eq!(second["next"], Value::Null);
    let short = api
        .get(&format!("{base}?prefix=p&limit=2&after=p3"))
        .expect(200);
    assert_eq!(ids(&short), ["p5", "p6"]);
    assert_eq!(short["next"], Value::Null);
    // Without a prefix: every live record, 50 to a page by default.
    let all = api.get(base).expect(200);
    assert_eq!(ids(&all), ["a1", "p0", "p1", "p2", "p3", "p5", "p6", "q1"]);
    assert_eq!(all["next"], Value::Null);
    let full = api.get(&format!("{base}?limit=500")).expect(200);
    assert_eq!(ids(&full).len(), 8);
    // An unknown collection is empty, not an error.
    assert_eq!(
        api.get("/api/collections/empty/records").expect(200),
        json!({"records": [], "next": null})
    );

    for bad in ["limit=0", "limit=501", "limit=x", "colour=red"] {
        api.get(&format!("{base}?{bad}")).error(400, "bad-request");
    }
    api.get(&format!("{base}?after=bad%2Fid"))
        .error(400, "invalid-id");
    api.get("/api/collections/no%20spaces/records")
        .error(400, "invalid-collection");
    api.get("/api/collections/no%20spaces/records/x")
        .error(400, "invalid-collection");
    api.get("/api/collections/items/records/bad%20id")
        .error(400, "invalid-id");
    api.put("/api/collections/items/records/bad%20id", &json!({}))
        .error(400, "invalid-id");
    api.delete("/api/collections/items/records/bad%20id")
        .error(400, "invalid-id");
    api.post(base, &json!({"id": "bad/id", "value": {}}))
        .error(400, "invalid-id");
    api.post(
        &format!("/api/collections/{}/records", "x".repeat(200)),
        &json!({"value": {}}),
    )
    .error(400, "invalid-collection");
    // A record is a JSON object.
    api.put(&format!("{base}/p0"), &json!([1, 2]))
        .error(400, "bad-request");
    api.post(base, &json!({"id": "s", "value": "text"}))
        .error(400, "bad-request");
    api.patch(&format!("{base}/p0"), &json!(7))
        .error(400, "bad-request");
    // None of the refusals changed anything.
    assert_eq!(ids(&api.get(base).expect(200)).len(), 8);
    assert_eq!(
        api.get(&format!("{base}/p0")).expect(200)["value"],
        json!({"n": 0})
    );
}

#[test]
fn map_entries_over_http_and_write_replies_carry_the_clock() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let site = n.run(&["--json", "status"]).ok().json()["site_id"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = |key: &str| format!("/api/collections/boards/records/b1/maps/items/{key}");

    // Setting an entry creates the record; the reply is every write's shape.
    let set = api.put(&entry("i1"), &json!({"title": "milk"})).expect(200);
    let v1 = set["db_version"].as_u64().expect("a db_version");
    let clock = set["clock"].as_str().expect("a clock").to_string();
    assert_eq!(set["collection"], "boards");
    assert_eq!(set["id"], "b1");
    assert!(clock.ends_with(&format!("@{site}")), "{clock}");
    // Any JSON value; a key that needs escaping in a path arrives whole.
    api.put(&entry("i%2F2%20x"), &json!(7)).expect(200);
    assert_eq!(
        api.get("/api/collections/boards/records/b1").expect(200)["value"],
        json!({"items": {"i1": {"title": "milk"}, "i/2 x": 7}})
    );
    // The clock is the one the log (and Sync Details) hold for the entry.
    let log = n.run(&["--json", "log"]).ok().json();
    let logged = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slot"] == "entry" && c["key"] == "i1")
        .expect("the entry in the log")
        .clone();
    assert_eq!(logged["clock"], clock.as_str(), "{logged}");

    // The same value again changes nothing.
    let same = api.put(&entry("i1"), &json!({"title": "milk"})).expect(200);
    assert_eq!(same["db_version"], Value::Null);
    assert_eq!(same["clock"], Value::Null);

    // Removing: a tombstone; an absent entry changes nothing.
    let removed = api.delete(&entry("i1")).expect(200);
    assert!(removed["db_version"].as_u64().unwrap() > v1);
    assert_ne!(removed["clock"], set["clock"]);
    assert_eq!(
        api.get("/api/collections/boards/records/b1").expect(200)["value"],
        json!({"items": {"i/2 x": 7}})
    );
    assert_eq!(
        api.delete(&entry("i1")).expect(200)["db_version"],
        Value::Null
    );

    // Every write reply carries the clock: create, put, patch, delete.
    let records = "/api/collections/notes/records";
    let created = api
        .post(records, &json!({"id": "n1", "value": {"a": 1}}))
        .expect(201);
    let put = api
        .put(&format!("{records}/n1"), &json!({"a": 2}))
        .expect(200);
    let patched = api
        .patch(&format!("{records}/n1"), &json!({"b": 1}))
        .expect(200);
    let deleted = api.delete(&format!("{records}/n1")).expect(200);
    for reply in [&created, &put, &patched, &deleted] {
        assert_eq!(reply["collection"], "notes", "{reply}");
        assert!(reply["db_version"].as_u64().is_some(), "{reply}");
        assert!(
            reply["clock"]
                .as_str()
                .unwrap()
                .ends_with(&format!("@{site}")),
            "{reply}"
        );
    }

    // Refusals: no live record to remove from, bad names, no JSON body.
    api.delete("/api/collections/boards/records/absent/maps/items/i1")
        .error(404, "not-found");
    api.put(
        "/api/collections/boards/records/bad%2Fid/maps/items/k",
        &json!(1),
    )
    .error(400, "invalid-id");
    api.put(
        "/api/collections/bad%20name/records/b1/maps/items/k",
        &json!(1),
    )
    .error(400, "invalid-collection");
    api.put(
        "/api/collections/boards/records/b1/maps/bad%01field/k",
        &json!(1),
    )
    .error(400, "bad-request");
    api.put(&entry(&"k".repeat(129)), &json!(1))
        .error(400, "bad-request");
    api.raw(
        "PUT",
        &entry("k"),
        Some(&api.token),
        Some("application/json"),
        b"{nope".to_vec(),
    )
    .error(400, "bad-request");
    api.raw("PUT", &entry("k"), Some(&api.token), None, b"1".to_vec())
        .error(415, "unsupported-media-type");
    // A deleted record is not brought back by removing an entry.
    api.put("/api/collections/boards/records/b2", &json!({"items": {}}))
        .expect(200);
    api.delete("/api/collections/boards/records/b2").expect(200);
    api.delete("/api/collections/boards/records/b2/maps/items/x")
        .error(404, "not-found");
}
