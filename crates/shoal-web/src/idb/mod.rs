//! IndexedDB persistence of the browser store: the schema, the bridge from
//! callbacks to futures, and one file per kind of transaction. Nothing here
//! decides a merge; write_tx.rs calls write.rs for that.

pub mod cursors;
pub mod export;
pub mod read;
pub mod request;
pub mod rows;
pub mod schema;
pub mod sync_apply;
pub mod sync_log;
pub mod tx;
pub mod write_tx;
