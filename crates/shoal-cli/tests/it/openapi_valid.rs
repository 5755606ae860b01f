//! The OpenAPI document a real `shoal serve` serves is valid OpenAPI, as a
//! real validator says: `openapi-spec-validator` (PyPI) run as a
//! subprocess on the document fetched over HTTP, and every operation has its
//! own `operationId` (client generators name functions after them).
//!
//! The validator is `$SHOAL_OPENAPI_VALIDATOR` (scripts/test.sh installs it
//! and sets it), else `openapi-spec-validator` on the PATH, else one this
//! test installs with pip into a virtualenv under the target directory. Only
//! when none can be had is the check skipped, saying so.
#![cfg(unix)]

use crate::common;

use common::Node;
use common::http::Api;
use common::pypi::{PypiTool, succeeds};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SECRET: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";

/// The validator to run, or why there is none.
fn validator() -> Result<PathBuf, String> {
    PypiTool {
        env: "SHOAL_OPENAPI_VALIDATOR",
        on_path: "openapi-spec-validator",
        package: "openapi-spec-validator",
        venv: "openapi-venv",
        program: "openapi-spec-validator",
        works: |program| succeeds(program, &["--version"]),
    }
    .find()
}

#[test]
fn the_served_document_is_valid_openapi_with_unique_operation_ids() {
    let n = Node::init();
    let d = n.serve(&[], Some(SECRET));
    let api = Api::of(&n, &d);
    let doc = api.get("/api/openapi.json").expect(200);

    match validator() {
        Ok(validator) => validate(
            &validator,
            &n.data.parent().unwrap().join("openapi.json"),
            &doc,
        ),
        Err(why) => eprintln!(
            "SKIPPED the OpenAPI validator run: no openapi-spec-validator ({why}); \
             scripts/test.sh installs it"
        ),
    }

    // Every operation has an operationId, and no two share one.
    let mut seen: HashMap<String, String> = HashMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                .to_string();
            let here = format!("{method} {path}");
            if let Some(first) = seen.insert(id.clone(), here.clone()) {
                panic!("operationId {id:?} is used by both {first} and {here}");
            }
        }
    }
}

/// Runs `validator` on `doc` written to `file`; fails the test on any error it reports.
fn validate(validator: &Path, file: &Path, doc: &serde_json::Value) {
    std::fs::write(file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new(validator)
        .args(["--validation-errors", "all"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run the validator");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} refused /api/openapi.json:\n{said}",
        validator.display()
    );
    assert!(said.contains("OK"), "{said}");
}
