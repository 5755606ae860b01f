//! Exit codes and error messages: how a failed command ends.
//!
//! This module owns the mapping from errors (the CLI's own and the library's)
//! to the documented exit codes — 1 not found, 2 invalid input or usage,
//! 3 storage, 4 network or daemon — and the one-line `error: ...` text
//! printed on stderr.

use shoal::StoreError;
use std::fmt;
use std::io;

/// Everything went well.
pub const OK: u8 = 0;
/// The record asked for does not exist (or was deleted).
pub const NOT_FOUND: u8 = 1;
/// Bad input or usage: invalid name, id or JSON, no database, bad flag.
pub const USAGE: u8 = 2;
/// The database refused: corrupt, foreign, newer schema, I/O failure.
pub const STORAGE: u8 = 3;
/// The network refused (cannot listen, cannot dial, daemon unreachable).
pub const NETWORK: u8 = 4;

/// An invalid-input or usage error raised by the CLI itself (exit code 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A record the user asked for is absent (exit code 1).
#[derive(Debug)]
pub struct NotFound(pub String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// A network or daemon problem raised by the CLI itself (exit code 4): no
/// daemon running, daemon unreachable, a sync that timed out.
#[derive(Debug)]
pub struct Network(pub String);

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Network {}

/// An error with its own stable code for `--json` (the HTTP API's code where
/// one exists, e.g. a daemon's refusal passed on) and its exit code.
#[derive(Debug)]
pub struct Coded {
    /// The exit code.
    pub exit: u8,
    /// The stable machine-readable code (`peer-unreachable`, `no-daemon`, ...).
    pub code: String,
    /// For people.
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// Builds an error with its own code and exit code.
pub fn coded(exit: u8, code: impl Into<String>, message: impl Into<String>) -> anyhow::Error {
    Coded {
        exit,
        code: code.into(),
        message: message.into(),
    }
    .into()
}

/// Builds a network error (exit code 4).
pub fn network(message: impl Into<String>) -> anyhow::Error {
    Network(message.into()).into()
}

/// Builds a usage error (exit code 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// Builds a not-found error (exit code 1).
pub fn not_found(message: impl Into<String>) -> anyhow::Error {
    NotFound(message.into()).into()
}

/// The error for a federation request that did not succeed, by the result
/// or error code the daemon gave (`peer-does-not-have-it`, `peer-unreachable`,
/// ...): exit code 1 when the record is absent on the side that should have
/// it, 2 for a request the daemon found malformed, 4 otherwise (unreachable,
/// timed out, refused by a sharing rule, failed).
pub fn federation(code: &str, message: String) -> anyhow::Error {
    let exit = match code {
        "peer-does-not-have-it" | "not-found-here" => NOT_FOUND,
        "bad-request" | "invalid-peer" | "invalid-collection" | "invalid-id" => USAGE,
        _ => NETWORK,
    };
    coded(exit, code, message)
}

/// Whether the error is only stdout having been closed by its reader
/// (`shoal log | head`): not a failure worth reporting.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The exit code for an error: the first cause in its chain that says.
pub fn code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(coded) = cause.downcast_ref::<Coded>() {
            return coded.exit;
        }
        if cause.is::<Usage>() {
            return USAGE;
        }
        if cause.is::<NotFound>() {
            return NOT_FOUND;
        }
        if cause.is::<Network>() || cause.is::<shoal::NetError>() || cause.is::<ureq::Error>() {
            return NETWORK;
        }
        if let Some(e) = cause.downcast_ref::<shoal::Error>() {
            return library_code(e);
        }
        if cause
            .downcast_ref::<serde_json::Error>()
            .is_some_and(|e| !e.is_io())
        {
            return USAGE;
        }
    }
    STORAGE
}

/// The stable code `--json` prints for an error (`{"code", "message"}` on
/// stderr): the HTTP API's code where one exists (docs/http-api.md), else
/// one of the CLI's own (`no-daemon`, `network`).
pub fn json_code(err: &anyhow::Error) -> String {
    for cause in err.chain() {
        if let Some(coded) = cause.downcast_ref::<Coded>() {
            return coded.code.clone();
        }
        if cause.is::<Usage>() {
            return "bad-request".into();
        }
        if cause.is::<NotFound>() {
            return "not-found".into();
        }
        if cause.is::<Network>() || cause.is::<shoal::NetError>() || cause.is::<ureq::Error>() {
            return "network".into();
        }
        if let Some(e) = cause.downcast_ref::<shoal::Error>() {
            return library_json_code(e).into();
        }
        if cause
            .downcast_ref::<serde_json::Error>()
            .is_some_and(|e| !e.is_io())
        {
            return "bad-request".into();
        }
    }
    "internal".into()
}

/// The HTTP API's code for a library error (as `http::Failure::store` gives
/// it, a test checks; the store's usage errors, which the daemon does not
/// meet, are `bad-request`). Exhaustive on purpose.
fn library_json_code(err: &shoal::Error) -> &'static str {
    use shoal::CoreError;
    match err {
        shoal::Error::NotFound { .. } => "not-found",
        shoal::Error::Exists { .. } => "already-exists",
        shoal::Error::Invalid(core) => match core {
            CoreError::InvalidCollectionName { .. } => "invalid-collection",
            CoreError::InvalidRecordId { .. } => "invalid-id",
            CoreError::ValueTooLarge { .. } | CoreError::RecordTooLarge { .. } => {
                "payload-too-large"
            }
            CoreError::RecordNotFound => "not-found",
            CoreError::RecordExists => "already-exists",
            CoreError::LifeExhausted => "life-exhausted",
            CoreError::InvalidFieldName { .. }
            | CoreError::InvalidMapKey { .. }
            | CoreError::NotAnObject { .. }
            | CoreError::InvalidJson(_)
            | CoreError::ClockTooFarAhead { .. }
            | CoreError::MalformedChange { .. } => "bad-request",
        },
        shoal::Error::Serde { .. } => "bad-request",
        shoal::Error::Store(StoreError::BlobTooLarge { .. }) => "payload-too-large",
        shoal::Error::Store(StoreError::ReadOnlyDevice { .. }) => "read-only-device",
        shoal::Error::Store(StoreError::ReservedCollection { .. }) => "reserved-collection",
        shoal::Error::Store(StoreError::Devices(_)) => "bad-request",
        // The CLI's own usage errors (no database, a bad query), which the
        // daemon never meets.
        shoal::Error::Store(
            StoreError::BadBlobRef(_)
            | StoreError::Invalid(_)
            | StoreError::InvalidQuery(_)
            | StoreError::Missing { .. },
        ) => "bad-request",
        shoal::Error::BlobUnavailable(_) => "blob-unavailable",
        shoal::Error::Store(_) | shoal::Error::Net(_) => "internal",
    }
}

/// The exit code for a library error. Exhaustive on purpose: a new error case
/// must be given a code here before the CLI compiles.
fn library_code(err: &shoal::Error) -> u8 {
    match err {
        shoal::Error::NotFound { .. } => NOT_FOUND,
        shoal::Error::Exists { .. } | shoal::Error::Invalid(_) | shoal::Error::Serde { .. } => {
            USAGE
        }
        shoal::Error::Store(store) => match store {
            StoreError::Invalid(_)
            | StoreError::InvalidQuery(_)
            | StoreError::Missing { .. }
            | StoreError::BlobTooLarge { .. }
            | StoreError::BadBlobRef(_)
            | StoreError::SchemaViolation { .. }
            | StoreError::BadSchema { .. }
            | StoreError::NewerDataVersion { .. }
            | StoreError::ReadOnlyDevice { .. }
            | StoreError::ReservedCollection { .. }
            | StoreError::Devices(_)
            | StoreError::BadFilter(_) => USAGE,
            StoreError::Corrupt { .. }
            | StoreError::Io { .. }
            | StoreError::Foreign { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::ObsoleteSchema { .. }
            | StoreError::BadNodeKey(_)
            | StoreError::BlobBusy { .. }
            | StoreError::BlobMismatch { .. }
            | StoreError::WouldWait { .. }
            | StoreError::LogFull { .. }
            | StoreError::Sqlite(_) => STORAGE,
            StoreError::NotShared { .. } | StoreError::HeldFull { .. } => NETWORK,
        },
        shoal::Error::Net(_) | shoal::Error::BlobUnavailable(_) => NETWORK,
    }
}

/// The error as one line: each cause after the previous one, skipping causes
/// whose text the previous one already contains (transparent wrappers).
pub fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || previous.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        previous = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal::{CollectionName, CoreError, RecordId};

    #[test]
    fn json_codes_of_library_errors_are_the_http_apis() {
        let errors = || -> Vec<shoal::Error> {
            vec![
                CollectionName::new("bad name").unwrap_err().into(),
                RecordId::new("bad id").unwrap_err().into(),
                CoreError::RecordNotFound.into(),
                CoreError::RecordExists.into(),
                CoreError::LifeExhausted.into(),
                CoreError::NotAnObject { got: "an array" }.into(),
                CoreError::InvalidJson("x".into()).into(),
            ]
        };
        for (error, same) in errors().into_iter().zip(errors()) {
            let http = crate::http::Failure::store(same).code;
            assert_eq!(
                json_code(&anyhow::Error::new(error).context("cannot put")),
                http
            );
        }
    }

    #[test]
    fn coded_errors_keep_their_code_and_exit_code() {
        let error = federation(
            "peer-does-not-have-it",
            "pull: peer does not have it".into(),
        );
        assert_eq!(code(&error), NOT_FOUND);
        assert_eq!(json_code(&error), "peer-does-not-have-it");
        let error = federation("timed-out", "pull: timed out".into());
        assert_eq!(code(&error), NETWORK);
        assert_eq!(json_code(&error), "timed-out");
        assert_eq!(json_code(&usage("bad")), "bad-request");
        assert_eq!(json_code(&not_found("gone")), "not-found");
        assert_eq!(json_code(&network("down")), "network");
    }
}
