//! Talking to a running `shoal serve`: finding it through `DATA/daemon.json`,
//! authenticating with `DATA/token`, and calling its control API over HTTP
//! (a blocking `ureq` client with timeouts, no proxy).
//!
//! This module owns the client side of the control API and how its failures
//! read: no daemon or an unreachable one is exit code 4 with a hint to start
//! `shoal serve`. Federation calls (diff, pull, push) wait longer than the
//! others: the daemon answers only when the peer has.

use crate::api::{
    AddPeer, AddPeerReply, ApiError, BlobsReply, DaemonFile, NodeInfo, PeersReply, SyncReply,
    TransferReply, TransferRequest,
};
use crate::datadir::DataDir;
use crate::exit::{NETWORK, coded, network};
use crate::secrets;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;
use ureq::Body;
use ureq::http::{Response, StatusCode};

/// The `--json` error code when no daemon runs or answers.
pub const NO_DAEMON: &str = "no-daemon";

/// The file a running daemon describes itself in.
pub const DAEMON_FILE: &str = "daemon.json";

/// How long one control API call may take (a dial or a sync request returns
/// at once; the work goes on in the daemon).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fetch on demand through the daemon may take (it waits 20 s).
const BLOB_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a federation call may take: the daemon's requests to the peer
/// time out after 30 s each, and a diff takes a few round trips per
/// collection.
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Most bytes of a control API response read.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// `DATA/daemon.json`, if it exists.
pub fn read_daemon_file(data: &DataDir) -> Result<Option<DaemonFile>> {
    let path = data.file(DAEMON_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let file = serde_json::from_str(&text).map_err(|e| {
        network(format!(
            "{} is not a daemon description ({e}); remove it if no `shoal serve` is running",
            path.display()
        ))
    })?;
    Ok(Some(file))
}

/// A client for the daemon of one data directory.
pub struct Daemon {
    /// What the daemon wrote about itself.
    pub file: DaemonFile,
    data_dir: String,
    token: String,
    agent: ureq::Agent,
}

impl Daemon {
    /// The daemon described in `daemon.json`, if there is one. Says nothing
    /// about whether it still runs: the first call tells.
    pub fn find(data: &DataDir) -> Result<Option<Daemon>> {
        let Some(file) = read_daemon_file(data)? else {
            return Ok(None);
        };
        let token = secrets::read_token(data)?.ok_or_else(|| {
            network(format!(
                "{} exists but {} does not; restart `shoal serve`",
                data.file(DAEMON_FILE).display(),
                data.file(secrets::TOKEN_FILE).display()
            ))
        })?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        Ok(Some(Daemon {
            file,
            data_dir: data.dir().display().to_string(),
            token,
            agent,
        }))
    }

    /// The daemon, or exit code 4 if none is running.
    pub fn connect(data: &DataDir) -> Result<Daemon> {
        Daemon::find(data)?.ok_or_else(|| {
            coded(
                NETWORK,
                NO_DAEMON,
                format!(
                    "no daemon is running for {} (start `shoal serve`)",
                    data.dir().display()
                ),
            )
        })
    }

    /// Whether the daemon answers (with our token).
    pub fn is_alive(&self) -> bool {
        self.node().is_ok()
    }

    /// `GET /api/node`.
    pub fn node(&self) -> Result<NodeInfo> {
        self.typed(self.call("GET", "/api/node", None)?)
    }

    /// `GET /api/peers`, as the daemon sent it.
    pub fn peers_raw(&self) -> Result<Value> {
        self.call("GET", "/api/peers", None)
    }

    /// `GET /api/peers`.
    pub fn peers(&self) -> Result<PeersReply> {
        self.typed(self.peers_raw()?)
    }

    /// `GET /api/blobs?missing=true` from `after` (one page of at most
    /// `limit`): the missing blobs with where the node's fetch of each stands.
    pub fn missing_blobs(&self, after: Option<&str>, limit: u32) -> Result<BlobsReply> {
        let mut path = format!("/api/blobs?missing=true&limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        self.typed(self.call("GET", &path, None)?)
    }

    /// `POST /api/sync`.
    pub fn sync(&self) -> Result<SyncReply> {
        self.typed(self.call("POST", "/api/sync", Some(Value::Object(Default::default())))?)
    }

    /// `POST /api/peers`: dial `address` now and remember it.
    pub fn add_peer(&self, address: &str) -> Result<AddPeerReply> {
        let body = serde_json::to_value(AddPeer {
            address: Some(address.to_string()),
            invite: None,
        })?;
        self.typed(self.call("POST", "/api/peers", Some(body))?)
    }

    /// `GET /api/peers/{peer}/diff`, as the daemon sent it: `Ok(Err(..))` is
    /// the daemon's refusal (e.g. `peer-unreachable`), for the caller to word.
    pub fn diff_raw(
        &self,
        peer: &str,
        collection: Option<&str>,
        limit: u64,
        after: Option<&str>,
    ) -> Result<Result<Value, ApiError>> {
        // Peer ids, collection names and record ids need no URL escaping.
        let mut path = format!("/api/peers/{peer}/diff?limit={limit}");
        if let Some(collection) = collection {
            path.push_str(&format!("&collection={collection}"));
        }
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        self.call_api("GET", &path, None, FEDERATION_TIMEOUT)
    }

    /// `POST /api/peers/{peer}/pull` (`push` false) or `/push` (`push` true).
    pub fn transfer(
        &self,
        push: bool,
        peer: &str,
        collection: &str,
        id: &str,
    ) -> Result<TransferReply> {
        let body = serde_json::to_value(TransferRequest {
            collection: collection.to_string(),
            id: id.to_string(),
        })?;
        let verb = if push { "push" } else { "pull" };
        let path = format!("/api/peers/{peer}/{verb}");
        let reply = self.call_api("POST", &path, Some(body), FEDERATION_TIMEOUT)?;
        self.typed(self.refused("POST", &path, reply)?)
    }

    /// A reply as `T`; anything else is a network error (exit code 4).
    pub fn typed<T: DeserializeOwned>(&self, value: Value) -> Result<T> {
        serde_json::from_value(value).map_err(|e| {
            network(format!(
                "the daemon at {} sent an unexpected answer: {e}",
                self.file.http
            ))
        })
    }

    /// Has the daemon fetch blob `hash` from its peers (blobs on demand) by
    /// asking it for the blob; the bytes are not read here — once the
    /// daemon answers, the blob is in the shared blob directory.
    pub fn fetch_blob(&self, hash: &str) -> Result<()> {
        let path = format!("/api/blobs/{hash}");
        let mut response = self.send("GET", &path, None, BLOB_FETCH_TIMEOUT)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = self.body_text(&mut response)?;
        let error = self.api_error("GET", &path, status, &text)?;
        self.refused("GET", &path, Err(error)).map(|_| ())
    }

    /// One call; any failure is a network error (exit code 4).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let reply = self.call_api(method, path, body, CALL_TIMEOUT)?;
        self.refused(method, path, reply)
    }

    /// The daemon's refusal as a network error (exit code 4), under the
    /// daemon's code.
    fn refused(&self, method: &str, path: &str, reply: Result<Value, ApiError>) -> Result<Value> {
        reply.map_err(|error| {
            let message = if error.code == "unauthorized" {
                format!(
                    "the daemon at {} refused our token ({}); if {} changed since it started, restart `shoal serve`",
                    self.file.http,
                    error.message,
                    secrets::TOKEN_FILE
                )
            } else {
                format!("the daemon refused {method} {path}: {}", error.message)
            };
            coded(NETWORK, error.code, message)
        })
    }

    /// One call: the JSON reply, or the daemon's error body; a daemon that
    /// does not answer (or not in JSON) is a network error (exit code 4).
    fn call_api(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Result<Value, ApiError>> {
        let mut response = self.send(method, path, body, timeout)?;
        let status = response.status();
        let text = self.body_text(&mut response)?;
        if status.is_success() {
            return serde_json::from_str(&text).map(Ok).map_err(|e| {
                network(format!(
                    "the daemon at {} sent invalid JSON for {method} {path}: {e}",
                    self.file.http
                ))
            });
        }
        self.api_error(method, path, status, &text).map(Err)
    }

    /// Sends one request with our token (`GET`, else a `POST` of `body`); a
    /// daemon that does not answer is a network error (exit code 4).
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Response<Body>> {
        let url = format!("http://{}{path}", self.file.http);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header("Authorization", &auth)
                .call(),
            (_, body) => self
                .agent
                .post(&url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header("Authorization", &auth)
                .send_json(body.unwrap_or(Value::Null)),
        };
        sent.map_err(|e| self.unreachable(e))
    }

    /// A response's body as text, at most [`MAX_RESPONSE_BYTES`].
    fn body_text(&self, response: &mut Response<Body>) -> Result<String> {
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| self.unreachable(e))
    }

    /// The daemon's error body of a failed call; a body that is not one is
    /// a network error (exit code 4) naming the HTTP status.
    fn api_error(
        &self,
        method: &str,
        path: &str,
        status: StatusCode,
        text: &str,
    ) -> Result<ApiError> {
        serde_json::from_str::<ApiError>(text).map_err(|_| {
            network(format!(
                "the daemon answered {method} {path} with HTTP {status}"
            ))
        })
    }

    fn unreachable(&self, error: ureq::Error) -> anyhow::Error {
        coded(
            NETWORK,
            NO_DAEMON,
            format!(
                "no daemon is running for {} (start `shoal serve`): daemon.json names {} (pid {}) but it does not answer: {error}",
                self.data_dir, self.file.http, self.file.pid
            ),
        )
    }
}
