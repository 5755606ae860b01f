//! `shoal schema` and the schema routes end to end, against a real `shoal
//! serve` over real HTTP: a declaration set by the CLI is what the API
//! reads (and the other way round), a write through either that does not
//! validate is refused with the schema's message (CLI exit 2, HTTP 422
//! `schema-violation`), and a record a newer app wrote is flagged in `shoal
//! get` (a note on stderr), `shoal ls` (text and JSON) and the API's get
//! and list, and refused for writes (HTTP 409 `newer-data-version`).
#![cfg(unix)]

use crate::common;

use common::Node;
use common::http::Api;
use serde_json::json;

const SECRET: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

#[test]
fn schemas_over_the_cli_and_the_api() {
    let n = Node::init();
    let file = n.data.join("tasks.schema.json");
    std::fs::write(
        &file,
        json!({"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}})
            .to_string(),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    n.run(&["schema", "set", "tasks", "--version", "5", "--file", file])
        .ok();
    let shown = n.run(&["schema", "show", "tasks"]).ok().json();
    assert_eq!(shown["version"], 5);
    assert_eq!(shown["schema"]["required"], json!(["title"]));
    let refused = n.run(&["put", "tasks", "t0", r#"{"done": true}"#]).code(2);
    assert!(
        refused.stderr.contains("\"title\" is a required property"),
        "{}",
        refused.stderr
    );
    n.run(&["put", "tasks", "t1", r#"{"title": "by version 5"}"#])
        .ok();
    let bad_file = n.run(&[
        "schema",
        "set",
        "tasks",
        "--version",
        "6",
        "--file",
        "/nonexistent.json",
    ]);
    assert_ne!(bad_file.code, 0);

    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let schema = "/api/collections/tasks/schema";
    assert_eq!(api.get(schema).expect(200)["version"], 5);
    let message = api
        .put("/api/collections/tasks/records/t2", &json!({"title": 7}))
        .error(422, "schema-violation");
    assert!(message.contains("/title"), "{message}");
    let bad = api
        .put(schema, &json!({"version": 4, "schema": {}}))
        .error(400, "invalid-schema");
    assert!(bad.contains("older than the declared 5"), "{bad}");
    // This node's app goes back to version 1 (on purpose: remove, then set).
    assert_eq!(api.delete(schema).expect(200)["version"], 5);
    api.get(schema).error(404, "not-found");
    let declared = json!({"version": 1, "schema": {"type": "object"}});
    assert_eq!(api.put(schema, &declared).expect(200), declared);
    assert_eq!(
        n.run(&["schema", "show", "tasks"]).ok().json()["version"],
        1
    );
    api.put(
        "/api/collections/tasks/records/t3",
        &json!({"title": "by version 1"}),
    )
    .expect(200);

    // t1 was written by version 5: kept, flagged everywhere, not writable.
    let got = api.get("/api/collections/tasks/records/t1").expect(200);
    assert_eq!(got["newer_data_version"], 5);
    assert_eq!(got["value"]["title"], "by version 5");
    let t3 = api.get("/api/collections/tasks/records/t3").expect(200);
    assert!(t3.get("newer_data_version").is_none(), "{t3}");
    let page = api.get("/api/collections/tasks/records").expect(200);
    let flags: Vec<_> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r.get("newer_data_version").cloned(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![("t1".into(), Some(json!(5))), ("t3".into(), None)]
    );
    let refused = api
        .patch(
            "/api/collections/tasks/records/t1",
            &json!({"title": "old app"}),
        )
        .error(409, "newer-data-version");
    assert!(refused.contains("upgrade the app"), "{refused}");
    let get = n.run(&["get", "tasks", "t1"]).ok();
    assert_eq!(get.json()["title"], "by version 5");
    assert!(
        get.stderr.contains("written by data version 5"),
        "{}",
        get.stderr
    );
    let ls = n.run(&["ls", "tasks"]).ok();
    assert!(
        ls.lines()[0].starts_with("t1") && ls.lines()[0].contains("[written by data version 5"),
        "{}",
        ls.stdout
    );
    assert!(!ls.lines()[1].contains("data version"), "{}", ls.stdout);
    let ls = n.run(&["--json", "ls", "tasks"]).ok().json();
    assert_eq!(ls["records"][0]["newer_data_version"], 5);
    n.run(&["patch", "tasks", "t1", r#"{"title": "old app"}"#])
        .code(2);
    n.run(&["schema", "rm", "tasks"]).ok();
    n.run(&["schema", "rm", "tasks"]).code(1);
}
