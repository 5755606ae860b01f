//! The one error type of the browser peer, [`WebError`], and its stable
//! machine codes: the same codes the daemon's HTTP API answers with
//! (docs/http-api.md) for the same failures, plus the browser's own
//! (`quota-exceeded`, `store-busy`, `store-closed`).
//!
//! It owns classification only; turning an error into a JavaScript `Error`
//! object is `js_error.rs`'s job.

use shoal_core::CoreError;
use thiserror::Error;

/// Why a browser-store operation failed. Nothing was written when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebError {
    /// The input broke a rule of the core (a bad name or id, a patch of a
    /// missing record, a create of a live one, a value over its cap, ...).
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// A malformed argument that is not a core rule (e.g. a page limit of 0).
    #[error("{0}")]
    BadRequest(String),
    /// The browser refused more space: the transaction was aborted whole.
    #[error(
        "the browser refused more storage for this origin (QuotaExceededError: {0}); the write was rolled back, nothing was half-written"
    )]
    QuotaExceeded(String),
    /// Another tab (or another handle in this one) owns the named store.
    #[error(
        "store {0:?} is open in another tab of this origin; one tab owns a store at a time (open it with {{wait: true}} to queue for it)"
    )]
    StoreBusy(String),
    /// The handle was closed; open the store again.
    #[error("the store was closed")]
    Closed,
    /// The browser's storage failed for another reason (IndexedDB's, OPFS's
    /// or SQLite's message).
    #[error("browser storage failed: {0}")]
    Storage(String),
    /// A stored row that does not decode: the database was altered outside Shoal.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// `connect` was given an address the tab cannot dial.
    #[error("{0}")]
    BadAddress(String),
    /// `connect` was given a secret that is no group secret (a malformed
    /// invite code, a passphrase too short or without the group's salt).
    #[error("{0}")]
    BadSecret(String),
    /// The peer refused the tab's membership proof: not the group's secret.
    #[error("the group secret differs from the peer's: it is not this group's secret ({0})")]
    WrongSecret(String),
    /// The peer could not be reached, or the connection ended before the
    /// membership handshake finished.
    #[error("{0}")]
    Unreachable(String),
    /// The peer ended the session for another reason than the secret
    /// (e.g. the group's owner has not admitted this tab, or a version the
    /// peer does not speak).
    #[error("the peer refused the session: {0}")]
    Refused(String),
}

impl WebError {
    /// The stable machine code, as the HTTP API gives the same failure.
    pub fn code(&self) -> &'static str {
        match self {
            WebError::Invalid(core) => core_code(core),
            WebError::BadRequest(_) => "bad-request",
            WebError::QuotaExceeded(_) => "quota-exceeded",
            WebError::StoreBusy(_) => "store-busy",
            WebError::Closed => "store-closed",
            WebError::Storage(_) | WebError::Corrupt(_) => "internal",
            WebError::BadAddress(_) => "bad-address",
            WebError::BadSecret(_) => "bad-secret",
            WebError::WrongSecret(_) => "wrong-secret",
            WebError::Unreachable(_) => "unreachable",
            WebError::Refused(_) => "rejected",
        }
    }
}

/// The HTTP API's code for a core error (crates/shoal-server/src/http/error.rs).
fn core_code(error: &CoreError) -> &'static str {
    match error {
        CoreError::InvalidCollectionName { .. } => "invalid-collection",
        CoreError::InvalidRecordId { .. } => "invalid-id",
        CoreError::ValueTooLarge { .. } | CoreError::RecordTooLarge { .. } => "payload-too-large",
        CoreError::RecordNotFound => "not-found",
        CoreError::RecordExists => "already-exists",
        CoreError::LifeExhausted => "life-exhausted",
        CoreError::InvalidFieldName { .. }
        | CoreError::InvalidMapKey { .. }
        | CoreError::NotAnObject { .. }
        | CoreError::InvalidJson(_)
        | CoreError::ClockTooFarAhead { .. }
        | CoreError::MalformedChange { .. } => "bad-request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{CollectionName, RecordId};

    #[test]
    fn core_errors_get_the_http_apis_codes() {
        let bad_collection = CollectionName::new("9x").unwrap_err();
        assert_eq!(WebError::from(bad_collection).code(), "invalid-collection");
        let bad_id = RecordId::new("a b").unwrap_err();
        assert_eq!(WebError::from(bad_id).code(), "invalid-id");
        assert_eq!(
            WebError::from(CoreError::RecordNotFound).code(),
            "not-found"
        );
        assert_eq!(
            WebError::from(CoreError::RecordExists).code(),
            "already-exists"
        );
        assert_eq!(WebError::QuotaExceeded("x".into()).code(), "quota-exceeded");
        assert_eq!(WebError::StoreBusy("s".into()).code(), "store-busy");
        assert_eq!(WebError::BadAddress("a".into()).code(), "bad-address");
        assert_eq!(WebError::BadSecret("s".into()).code(), "bad-secret");
        assert_eq!(WebError::WrongSecret("w".into()).code(), "wrong-secret");
        assert_eq!(WebError::Unreachable("u".into()).code(), "unreachable");
        assert_eq!(WebError::Refused("r".into()).code(), "rejected");
    }
}
