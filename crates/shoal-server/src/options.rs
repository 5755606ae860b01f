//! What an app or `shoal serve` tells the server: the access token, the
//! group's key and salt (invite codes carry them), the node's name, where
//! added peers are remembered, whether `/metrics` needs the token, and
//! where the browser build served under `/apps/` is — [`Options`] for the
//! routes, [`ServeOptions`] for [`crate::serve`].
//!
//! Plain data only: parsing a command line or a config file into it is the
//! caller's (shoal-cli's).

use crate::peer_book::PeerBook;
use shoal::{GroupKey, GroupSalt, NodeConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsAccess {
    /// Only with the API token, like every `/api` route.
    #[default]
    Token,
    /// Anyone who reaches the HTTP listener: [`crate::serve`] allows it
    /// only on a loopback listener (a local Prometheus without the token).
    Public,
}

/// The options of [`crate::router`].
#[derive(Clone)]
pub struct Options {
    /// The access token every `/api` route (and `/metrics`, unless public)
    /// requires as `Authorization: Bearer <token>`.
    pub token: String,
    /// The group key (invite codes carry it).
    pub key: GroupKey,
    /// The group's salt (invite codes carry it).
    pub salt: GroupSalt,
    /// What the dashboard calls this node; `None`: `node-` and the end of
    /// its peer id.
    pub name: Option<String>,
    /// Where peers added over the API are remembered; `None`: they are only
    /// dialed.
    pub peer_book: Option<Arc<dyn PeerBook>>,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
    /// The directory holding the browser build of Shoal (`shoal_web.js`,
    /// `shoal_web_bg.wasm`, `shoal_web.d.ts` and the worker route's
    /// `shoal_worker.js`, `shoal_client.js`, `shoal_client.d.ts`, as
    /// `scripts/wasm-build.sh` writes them) served at `/apps/pkg/` for the apps under `/apps/`;
    /// `None`: not served, and the apps say how to serve it.
    pub web_pkg: Option<PathBuf>,
    /// The file holding the group owner key's recovery code
    /// (`DATA/owner.key`), read when a device is approved or revoked over
    /// the API; `None` or absent: this node signs with its own device key
    /// (which counts only if it is an admin).
    pub owner_key_file: Option<PathBuf>,
}

impl Options {
    /// Options with `token` for a group of `key` and `salt`: no name, no
    /// peer book, metrics behind the token.
    pub fn new(token: impl Into<String>, key: GroupKey, salt: GroupSalt) -> Self {
        Options {
            token: token.into(),
            key,
            salt,
            name: None,
            peer_book: None,
            metrics: MetricsAccess::Token,
            web_pkg: None,
            owner_key_file: None,
        }
    }
}

impl std::fmt::Debug for Options {
    /// Shows neither the token nor the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("name", &self.name)
            .field("peer_book", &self.peer_book.is_some())
            .field("metrics", &self.metrics)
            .field("web_pkg", &self.web_pkg)
            .finish_non_exhaustive()
    }
}

/// The options of [`crate::serve`] and [`crate::Server::start`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The node to start over the store.
    pub node: NodeConfig,
    /// The routes' options.
    pub api: Options,
    /// How long the node may take to report its first listen address.
    pub listen_wait: Duration,
    /// How long open requests may finish after the stop signal.
    pub drain: Duration,
    /// When to collect tombstones (`None`: never; `shoal gc` by hand).
    pub gc: Option<crate::GcSchedule>,
}

impl ServeOptions {
    /// `node` and `api` with the default waits (10 s to listen, 2 s to drain).
    pub fn new(node: NodeConfig, api: Options) -> Self {
        ServeOptions {
            node,
            api,
            listen_wait: Duration::from_secs(10),
            drain: Duration::from_secs(2),
            gc: None,
        }
    }
}
