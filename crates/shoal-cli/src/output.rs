//! Where results go: stdout (text or one JSON document) and hints on stderr.
//!
//! This module owns the output conventions shared by every command: `--json`
//! selects machine-readable output (failures included: one JSON line
//! `{"code", "message"}` on stderr), stdout is buffered and flushed once, and
//! hints (like the next page's `--after`) go to stderr so they never mix with
//! data.

use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::{self, BufWriter, StdoutLock, Write};

/// The longest value shown in text output before it is cut with `…`.
pub const TEXT_VALUE_MAX: usize = 120;

/// Buffered stdout plus the output mode.
pub struct Output {
    json: bool,
    out: BufWriter<StdoutLock<'static>>,
}

impl Output {
    /// Output to stdout; JSON documents if `json`, text otherwise.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            out: BufWriter::new(io::stdout().lock()),
        }
    }

    /// Whether the user asked for JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The raw writer, for output streamed piece by piece.
    pub fn writer(&mut self) -> &mut impl Write {
        &mut self.out
    }

    /// Prints a JSON document (pretty, then a newline).
    pub fn json(&mut self, value: &Value) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.out, value)?;
        writeln!(self.out)
    }

    /// Prints one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.out, "{text}")
    }

    /// Flushes what was printed so far (for commands that run on after printing).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes stdout; call once at the end of a successful command.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Prints a hint line on stderr. A closed stderr is not worth failing for.
pub fn hint(text: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "{text}");
}

/// Prints a failure on stderr as one JSON line `{"code", "message"}`, the
/// HTTP API's error shape. A closed stderr is not worth failing for.
pub fn json_error(code: &str, message: impl std::fmt::Display) {
    let error = json!({"code": code, "message": message.to_string()});
    let _ = writeln!(io::stderr(), "{error}");
}

/// Whether the command line asks for `--json` (for failures found before it
/// is parsed).
pub fn json_asked(args: impl IntoIterator<Item = OsString>) -> bool {
    args.into_iter()
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Pads `text` on the right to `width` characters.
pub fn pad(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}
