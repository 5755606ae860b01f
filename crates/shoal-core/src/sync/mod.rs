//! The sync protocol, sans IO: messages, framing, membership proofs and the
//! per-peer session state machine. The network layer carries its bytes; the
//! store executes its reads and applies. Nothing here touches a socket, a
//! clock or a file.

mod about;
mod action;
pub mod auth;
pub mod codec;
pub mod federation;
mod frame_error;
mod grouped;
mod layout;
pub mod message;
mod partial;
mod pull;
pub mod relay_auth;
mod requests;
mod serve;
pub mod session;
pub mod version;

pub use action::{Action, ReadPurpose};
pub use auth::{GroupKey, GroupKeyError, GroupSalt, Role};
pub use federation::{RecordCut, Refusal, Request, RequestId, Response, SharedCollection};
pub use message::{Batch, Message, Rejection};
pub use relay_auth::{Admission, RELAY_AUTH_LEN, RELAY_AUTH_PROTOCOL, RelayToken, RelayTokenError};
pub use requests::{MAX_OUTSTANDING, RequestError};
pub use session::{Session, SessionStats, SyncConfig};
pub use version::{
    Agreed, Feature, FeatureSet, Incompatible, OLDEST_PROTOCOL_VERSION, Offer, PROTOCOL_VERSION,
};

/// The name of the libp2p stream protocol sync sessions run on, for every
/// transport shell (the native node's and the browser tab's): one stream per
/// peer pair, opened by the peer with the smaller peer id.
pub const SYNC_PROTOCOL_NAME: &str = "/shoal/sync/1";
