//! Reading a record body: a JSON object from an argument or from stdin.
//!
//! This module owns the input rules (`-` or no argument means stdin, a size cap
//! on what is read, UTF-8, valid JSON); whether the JSON is an acceptable record
//! is the library's call.

use crate::exit::usage;
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{IsTerminal, Read};

/// Most bytes read from stdin. The library's default cap on a record's
/// canonical size is 1 MiB; this leaves room for pretty-printed input.
pub const STDIN_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The JSON value given as `arg`, or read from stdin if `arg` is `None` or `-`.
pub fn json_body(arg: Option<&str>) -> Result<Value> {
    let text = match arg {
        Some(text) if text != "-" => text.to_string(),
        _ => read_stdin()?,
    };
    serde_json::from_str(&text).map_err(|e| usage(format!("invalid JSON: {e}")))
}

fn read_stdin() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        crate::output::hint("reading the JSON object from stdin (end with Ctrl-D)…");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(STDIN_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    if bytes.len() as u64 > STDIN_MAX_BYTES {
        return Err(usage(format!(
            "input on stdin is larger than {STDIN_MAX_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| usage("input on stdin is not valid UTF-8"))
}
