//! End-to-end tests of the blob routes against a real `shoal serve` over
//! real HTTP: a streamed upload and download round trip with identical
//! bytes (and the hash the CLI computes), the list and the missing list
//! with paging, and the refusals — unknown and malformed hashes, a body
//! over the cap, an upload that breaks off part-way (nothing kept).
#![cfg(unix)]

use crate::common;

use common::http::{Api, raw_status};
use common::{Node, content};
use serde_json::{Value, json};

const SECRET: &str = "b10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10b";

fn upload(api: &Api, bytes: Vec<u8>, content_type: Option<&str>) -> Value {
    api.raw("POST", "/api/blobs", Some(&api.token), content_type, bytes)
        .expect(201)
}

#[test]
fn upload_download_and_list() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);

    // Several pieces' worth, streamed both ways.
    let bytes = content(3 * 1024 * 1024 + 12_345);
    let blob = upload(&api, bytes.clone(), Some("image/png"));
    let hash = blob["$blob"].as_str().unwrap().to_string();
    assert_eq!(blob["size"], bytes.len());
    assert_eq!(blob["type"], "image/png");
    let file = n.data.parent().unwrap().join("same.bin");
    std::fs::write(&file, &bytes).unwrap();
    let cli = n
        .run(&["--json", "blob", "add", file.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(
        cli["$blob"],
        hash.as_str(),
        "the CLI computes the same hash"
    );
    let back = api.get(&format!("/api/blobs/{hash}"));
    assert_eq!(back.status, 200);
    assert_eq!(back.content_type, "application/octet-stream");
    assert_eq!(back.content_length, Some(bytes.len() as u64));
    assert!(back.bytes == bytes, "the bytes came back changed");

    // Without a content type there is no `type`; an empty blob is a blob.
    let plain = upload(&api, b"hello".to_vec(), None);
    assert_eq!(plain["size"], 5);
    assert!(plain.get("type").is_none(), "{plain}");
    let empty = upload(&api, Vec::new(), Some("text/plain"));
    assert_eq!(empty["size"], 0);
    let got = api.get(&format!("/api/blobs/{}", empty["$blob"].as_str().unwrap()));
    assert_eq!((got.status, got.bytes.len()), (200, 0));
    // The same bytes twice are one blob.
    let twice = upload(&api, b"hello".to_vec(), None);
    assert_eq!(twice["$blob"], plain["$blob"]);

    // The list, in hash order, a page at a time.
    let mut all: Vec<String> = [&blob, &plain, &empty]
        .iter()
        .map(|b| b["$blob"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    let listed = api.get("/api/blobs").expect(200);
    let hashes: Vec<&str> = listed["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, all);
    assert_eq!(listed["next"], Value::Null);
    // The listing's row for the blob added above.
    let row_of = |listed: &Value| {
        listed["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["hash"] == hash.as_str())
            .unwrap()
            .clone()
    };
    let row = row_of(&listed);
    assert_eq!(row["size"], bytes.len());
    assert_eq!(row["references"], 0);
    assert!(row["added_ms"].as_u64().unwrap() > 1_600_000_000_000);
    let first = api.get("/api/blobs?limit=2").expect(200);
    assert_eq!(first["blobs"].as_array().unwrap().len(), 2);
    assert_eq!(first["next"], all[1].as_str());
    let rest = api
        .get(&format!("/api/blobs?limit=2&after={}", all[1]))
        .expect(200);
    assert_eq!(rest["blobs"][0]["hash"], all[2].as_str());
    assert_eq!(rest["next"], Value::Null);

    // A record referencing the blob counts; one referencing an absent blob
    // puts it on the missing list, with its collection.
    api.put(
        "/api/collections/notes/records/n1",
        &json!({"photo": {"$blob": hash, "size": bytes.len()}}),
    )
    .expect(200);
    let absent = "cd".repeat(32);
    api.put(
        "/api/collections/notes/records/n2",
        &json!({"photo": {"$blob": absent, "size": 9}}),
    )
    .expect(200);
    let listed = api.get("/api/blobs").expect(200);
    let row = row_of(&listed);
    assert_eq!(row["references"], 1);
    let missing = api.get("/api/blobs?missing=true").expect(200);
    assert_eq!(
        missing,
        json!({"blobs": [{"hash": absent, "size": 9, "collections": ["notes"]}], "next": null})
    );
    api.get(&format!("/api/blobs/{absent}"))
        .error(404, "not-found");

    // Refusals.
    api.get("/api/blobs/not-hex").error(400, "invalid-hash");
    api.get(&format!("/api/blobs/{}", "a".repeat(63)))
        .error(400, "invalid-hash");
    api.get("/api/blobs?limit=0").error(400, "bad-request");
    api.get("/api/blobs?after=zz").error(400, "invalid-hash");
    api.get("/api/blobs?missing=maybe")
        .error(400, "bad-request");
    let long_type = "x".repeat(300);
    api.raw(
        "POST",
        "/api/blobs",
        Some(&api.token),
        Some(&long_type),
        b"x".to_vec(),
    )
    .error(400, "bad-request");
}

#[test]
fn a_blob_over_the_cap_is_refused_before_its_bytes() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    // Claims 2 GiB (the cap is 1 GiB) and sends a few bytes.
    let head = format!(
        "POST /api/blobs HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}",
        api.address,
        api.token,
        2u64 << 30
    );
    assert_eq!(raw_status(&api.address, &head, b"only a few bytes"), 413);
    // Nothing was kept, and the daemon still serves.
    let listed = api.get("/api/blobs").expect(200);
    assert_eq!(listed["blobs"], json!([]));
}

#[test]
fn an_upload_that_breaks_off_stores_nothing_and_the_daemon_goes_on() {
    use std::io::{Read, Write};
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    // The client promises 4 MiB, sends 1 MiB, then stops sending.
    let mut socket = std::net::TcpStream::connect(d.http()).unwrap();
    let head = format!(
        "POST /api/blobs HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        d.http(),
        api.token,
        4 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(&content(1024 * 1024)).unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    // The daemon blames the client, not its disk.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(answer.contains("the upload broke off"), "{answer:?}");
    // Nothing was kept: no blob listed, no file left in the blob directory.
    let listed = api.get("/api/blobs").expect(200);
    assert_eq!(listed["blobs"], json!([]), "{listed}");
    let blobs = n.data.join("shoal.blobs");
    let mut left = Vec::new();
    let mut dirs = vec![blobs];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                left.push(path);
            }
        }
    }
    assert_eq!(left, Vec::<std::path::PathBuf>::new());
    // And the daemon still takes a whole upload.
    let whole = upload(&api, b"after".to_vec(), None);
    assert_eq!(whole["size"], 5);
}
