//! Devices and roles (issue 19 §1): the group owner's key, signed
//! admissions and revocations of devices, and what they mean for what may
//! flow with each peer.
//!
//! Statements are stored as ordinary records of the reserved collection
//! [`DEVICES_COLLECTION`], so every sync path replicates them; a statement
//! counts only if it verifies under the owner key (or an admin's key the
//! owner admitted), so a forged or unsigned one is refused wherever it is
//! read. This module is pure: it never reads a store, a clock or a socket.

mod incoming;
mod keys;
mod registry;
mod statement;

pub use incoming::{Issuers, admissible};
pub use keys::{IssuerKey, KeyError, OwnerKey};
pub use registry::{
    DEVICES_COLLECTION, DeviceAccess, DeviceEntry, OWNER_RECORD, Registry, STATEMENT_FIELD,
};
pub use statement::{
    Admission, CollectionRole, DeviceRole, MAX_NAME_LEN, MAX_STATEMENT_TEXT, Revocation, Signed,
    Statement, StatementError,
};
