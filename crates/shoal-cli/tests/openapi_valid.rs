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

mod common;

use common::Node;
use common::http::Api;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SECRET: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";

/// Whether `program --version` runs.
fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The validator to run, or why there is none.
fn validator() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("SHOAL_OPENAPI_VALIDATOR") {
        let given = PathBuf::from(given);
        return if runs(&given) {
            Ok(given)
        } else {
            Err(format!(
                "$SHOAL_OPENAPI_VALIDATOR ({}) does not run",
                given.display()
            ))
        };
    }
    let on_path = PathBuf::from("openapi-spec-validator");
    if runs(&on_path) {
        return Ok(on_path);
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openapi-venv");
    let installed = venv.join("bin").join("openapi-spec-validator");
    if runs(&installed) {
        return Ok(installed);
    }
    let step = |program: &str, args: &[&str]| -> Result<(), String> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let venv_text = venv.to_string_lossy().into_owned();
    step("python3", &["-m", "venv", &venv_text])?;
    let pip = venv.join("bin").join("pip").to_string_lossy().into_owned();
    step(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "openapi-spec-validator",
        ],
    )?;
    if runs(&installed) {
        Ok(installed)
    } else {
        Err(format!(
            "{} does not run after install",
            installed.display()
        ))
    }
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
