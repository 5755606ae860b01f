//! `shoal serve`: runs this data directory's node until Ctrl-C or SIGTERM.
//!
//! This module owns the daemon's life: gathering its configuration (listen
//! addresses, peers from `--peer` and `peers.txt`, mDNS, the group key), the
//! tokio runtime, starting the node and the control API, announcing itself
//! in `DATA/daemon.json` (removed again on a clean stop), logging to stderr,
//! and stopping cleanly. Which HTTP port it takes is `http_port.rs`'s.

use crate::api::DaemonFile;
use crate::args::ServeArgs;
use crate::daemon_client::{DAEMON_FILE, Daemon};
use crate::datadir::DataDir;
use crate::exit::{network, usage};
use crate::http::{self, Control};
use crate::output::Output;
use crate::{http_port, peer_file, secrets};
use anyhow::{Context, Result};
use serde_json::json;
use shoal::{ConnectionCaps, GroupKey, NodeConfig, Store, SyncConfig};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where the node listens unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/4040", "/ip4/0.0.0.0/udp/4040/quic-v1"];

/// How long to wait for the node's first listen address.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
/// How long in-flight control requests may finish after a stop signal.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

/// `shoal serve`.
pub fn run(data: &DataDir, args: ServeArgs, out: &mut Output) -> Result<()> {
    if let Some(http) = args.http
        && !http.ip().is_loopback()
        && !args.http_public
    {
        return Err(usage(format!(
            "--http {http} is not a loopback address: the control API would be reachable from \
             other machines (it is token-protected but unencrypted); pass --http-public to \
             allow it"
        )));
    }
    // A leftover daemon.json (after a crash) is overwritten; a live daemon is not.
    if let Ok(Some(daemon)) = Daemon::find(data)
        && daemon.is_alive()
    {
        return Err(network(format!(
            "a daemon is already running for {} (pid {}, control API on {})",
            data.dir().display(),
            daemon.file.pid,
            daemon.file.http
        )));
    }
    let loaded = secrets::load_group_key(data, args.secret_file.as_deref())?.ok_or_else(|| {
        usage(format!(
            "no group secret: {} does not exist and neither --secret-file nor ${} is given; \
             run `shoal invite` to create a new group, or `shoal join CODE` to join one",
            data.file(secrets::GROUP_KEY_FILE).display(),
            secrets::SECRET_ENV
        ))
    })?;
    let store = data.open()?;
    store.set_max_clock_drift(args.max_clock_drift);
    let token = secrets::ensure_token(data)?;
    let mut peers = args.peer.clone();
    for address in peer_file::read(data)? {
        if !peers.contains(&address) {
            peers.push(address);
        }
    }
    let listen = if args.listen.is_empty() {
        DEFAULT_LISTEN
            .iter()
            .map(|a| a.parse().expect("valid default multiaddr"))
            .collect()
    } else {
        args.listen.clone()
    };
    let mut config = NodeConfig {
        listen,
        peers,
        relays: args.relay.clone(),
        mdns: !args.no_mdns,
        sync: SyncConfig {
            resync_interval_ms: args.resync * 1000,
            ..SyncConfig::default()
        },
        connections: ConnectionCaps {
            total: args.max_connections,
            pending: args.max_pending,
            per_peer: args.max_per_peer,
        },
        ..NodeConfig::loopback(loaded.key.clone())
    };
    config.blobs.scrub_interval = (args.blob_scrub_interval > 0)
        .then(|| std::time::Duration::from_secs(args.blob_scrub_interval));
    config.blobs.scrub_bytes_per_sec = args.blob_scrub_rate << 20;
    init_logging();
    tracing::info!("group key from {}", loaded.source);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let daemon = Daemonized {
        data: data.clone(),
        store,
        config,
        http: args.http,
        token,
        group: secrets::fingerprint(&loaded.key),
        key: loaded.key.clone(),
        name: args.name.clone(),
    };
    runtime.block_on(daemon.run(out))
}

/// Logs go to stderr; `RUST_LOG` overrides the default `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

struct Daemonized {
    data: DataDir,
    store: Store,
    config: NodeConfig,
    http: Option<SocketAddr>,
    token: String,
    group: String,
    key: GroupKey,
    name: Option<String>,
}

impl Daemonized {
    async fn run(self, out: &mut Output) -> Result<()> {
        let listener = http_port::bind(&self.data, self.http).await?;
        let http = listener
            .local_addr()
            .context("cannot read the control API's address")?;
        let node = self
            .store
            .start_node(self.config.clone())
            .await
            .map_err(explain_start_error)?;
        let listen = node
            .listen_addrs(LISTEN_WAIT)
            .await
            .context("the node is not listening")?;
        // The other listeners (QUIC, other interfaces) report within moments.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listen = node.listen_addrs(Duration::ZERO).await.unwrap_or(listen);
        let file = DaemonFile {
            pid: std::process::id(),
            http: http.to_string(),
            peer_id: node.peer_id().to_string(),
            listen: listen.iter().map(|a| a.to_string()).collect(),
            group: self.group.clone(),
        };
        let _announced = Announcement::write(&self.data, &file)?;
        announce(out, &file, &self.data, &self.token)?;

        let node = Arc::new(node);
        let router = http::router(
            Control::new(
                node.clone(),
                self.store.clone(),
                self.data.clone(),
                &self.token,
                self.key.clone(),
            )
            .named(self.name.clone()),
        );
        let stop = async {
            match stop_signal().await {
                Ok(name) => tracing::info!("{name}, stopping"),
                Err(e) => tracing::error!("{e:#}; stopping"),
            }
        };
        let served = http::serve_until(listener, router, stop, HTTP_DRAIN).await;
        node.shutdown().await;
        tracing::info!("stopped");
        served
    }
}

/// A failed node start, with a hint for the usual cause of a listen error.
fn explain_start_error(error: shoal::Error) -> anyhow::Error {
    match &error {
        shoal::Error::Net(shoal::NetError::Listen {
            address,
            error: why,
        }) => {
            let why = if why.is_empty() { "refused" } else { why };
            network(format!(
                "cannot listen on {address}: {why} (is another `shoal serve` using that port? \
                 choose others with --listen)"
            ))
        }
        _ => anyhow::Error::new(error).context("cannot start the node"),
    }
}

/// The dashboard's address with the token in its fragment (a fragment never
/// reaches the server or its logs).
fn dashboard_url(http: &str, token: &str) -> String {
    format!("http://{http}/#token={token}")
}

/// Prints who and where the daemon is, at once (stdout is flushed).
fn announce(out: &mut Output, file: &DaemonFile, data: &DataDir, token: &str) -> Result<()> {
    let dashboard = dashboard_url(&file.http, token);
    if out.is_json() {
        let mut shown = json!(file);
        shown["dashboard"] = json!(dashboard);
        out.json(&shown)?;
    } else {
        out.line(format_args!("peer id    {}", file.peer_id))?;
        for address in &file.listen {
            out.line(format_args!("listening  {address}"))?;
        }
        out.line(format_args!(
            "http       http://{} (token in {})",
            file.http,
            data.file(secrets::TOKEN_FILE).display()
        ))?;
        out.line(format_args!("dashboard  {dashboard}"))?;
    }
    out.flush()?;
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, naming which.
async fn stop_signal() -> Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "interrupted").context("cannot watch Ctrl-C"),
            _ = term.recv() => Ok("terminated"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        Ok("interrupted")
    }
}

/// `DATA/daemon.json` while the daemon runs: written whole (mode 0600),
/// removed on drop if it is still ours.
struct Announcement {
    path: std::path::PathBuf,
}

impl Announcement {
    fn write(data: &DataDir, file: &DaemonFile) -> Result<Self> {
        let path = data.file(DAEMON_FILE);
        let text = serde_json::to_vec_pretty(file)?;
        secrets::write_private(&path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let ours = std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<DaemonFile>(&bytes).ok())
            .is_some_and(|file| file.pid == std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
