//! `shoal serve`: runs this data directory's node until Ctrl-C or SIGTERM.
//!
//! This module owns turning the command line and the data directory into
//! shoal-server's [`ServeOptions`] (listen addresses, peers from `--peer`
//! and `peers.txt`, relays from `--relay` and `relays.txt`, the address
//! book's file, mDNS, the group key, the token), the tokio runtime,
//! announcing the daemon in `DATA/daemon.json` (removed again on a clean
//! stop), logging to stderr (text or JSON) and the stop signals. Serving is
//! `shoal_server::Server`'s; which HTTP port it takes is `http_port.rs`'s.

use crate::api::DaemonFile;
use crate::args::ServeArgs;
use crate::daemon_client::{DAEMON_FILE, Daemon};
use crate::datadir::DataDir;
use crate::exit::{network, usage};
use crate::node_args::LogFormat;
use crate::output::Output;
use crate::peer_file::{self, PeerFile};
use crate::{http_port, secrets};
use anyhow::{Context, Result};
use serde_json::json;
use shoal::{ConnectionCaps, GcPolicy, NodeConfig, Store, SyncConfig};
use shoal_server::{GcSchedule, MetricsAccess, Options, ServeError, ServeOptions, Server};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where the node listens unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/4040", "/ip4/0.0.0.0/udp/4040/quic-v1"];

/// Where the node listens for WebSocket peers (browser tabs) unless
/// `--ws-listen` or `--no-ws` says otherwise: loopback, at a free port.
pub const DEFAULT_WS_LISTEN: &str = "/ip4/127.0.0.1/tcp/0/ws";

/// How long in-flight control requests may finish after a stop signal.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

/// `shoal serve`.
pub fn run(
    data: &DataDir,
    args: ServeArgs,
    config: Option<std::path::PathBuf>,
    out: &mut Output,
) -> Result<()> {
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
    if args.metrics_public && args.http.is_some_and(|http| !http.ip().is_loopback()) {
        return Err(usage(
            "--metrics-public needs a loopback --http address: other machines could read the \
             metrics without the token (leave it out; a scraper elsewhere sends the token)",
        ));
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
    init_logging(args.log_format);
    let loaded = secrets::load_group_key(data, args.secret_file.as_deref())?.ok_or_else(|| {
        usage(format!(
            "no group secret: {} does not exist and neither --secret-file nor ${} is given; \
             run `shoal invite` to create a new group, or `shoal join CODE` to join one",
            data.file(secrets::GROUP_KEY_FILE).display(),
            secrets::SECRET_ENV
        ))
    })?;
    let store = data.open()?;
    // The config file's sharing rules and peers, re-read on SIGHUP (reload.rs).
    let reloader = crate::reload::Reloader::start(data, config, &args.peer, &store)?;
    store.set_max_clock_drift(args.max_clock_drift);
    let token = secrets::ensure_token(data)?;
    let mut peers = args.peer.clone();
    for address in peer_file::read(data)? {
        if !peers.contains(&address) {
            peers.push(address);
        }
    }
    let mut relays = args.relay.clone();
    for relay in peer_file::read_relays(data)? {
        if !relays.contains(&relay) {
            relays.push(relay);
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
    let mut listen: Vec<shoal::Multiaddr> = listen;
    if !args.no_ws {
        if args.ws_listen.is_empty() {
            listen.push(DEFAULT_WS_LISTEN.parse().expect("valid default multiaddr"));
        } else {
            listen.extend(args.ws_listen.iter().cloned());
        }
    }
    let mut config = NodeConfig {
        listen,
        peers,
        relays,
        address_book: Some(data.file(shoal::ADDRESS_BOOK_FILE)),
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
        punch_delay: args.punch_delay,
        ..NodeConfig::loopback(loaded.key.clone())
    };
    config.blobs.relay_max = args.relay_blob_max.saturating_mul(1024);
    config.blobs.scrub_interval = (args.blob_scrub_interval > 0)
        .then(|| std::time::Duration::from_secs(args.blob_scrub_interval));
    config.blobs.scrub_bytes_per_sec = args.blob_scrub_rate << 20;
    config.age_out = (args.partial_sweep_interval > 0)
        .then(|| std::time::Duration::from_secs(args.partial_sweep_interval));
    for note in &loaded.notes {
        tracing::warn!("{note}");
    }
    tracing::info!("group key from {}", loaded.source);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let api = Options {
        name: args.name.clone(),
        peer_book: Some(Arc::new(PeerFile(data.clone()))),
        owner_key_file: Some(data.file(crate::devices::OWNER_KEY_FILE)),
        metrics: if args.metrics_public {
            MetricsAccess::Public
        } else {
            MetricsAccess::Token
        },
        web_pkg: args.web_pkg.clone(),
        ..Options::new(token.clone(), loaded.key.clone(), loaded.salt)
    };
    let daemon = Daemonized {
        data: data.clone(),
        store,
        options: ServeOptions {
            drain: HTTP_DRAIN,
            gc: (!args.gc_interval.is_zero()).then_some(GcSchedule {
                every: args.gc_interval,
                policy: GcPolicy {
                    horizon_ms: u64::try_from(args.gc_horizon.as_millis()).unwrap_or(u64::MAX),
                },
            }),
            ..ServeOptions::new(config, api)
        },
        http: args.http,
        token,
        group: crate::api::fingerprint(&loaded.key),
        reloader,
    };
    runtime.block_on(daemon.run(out))
}

/// Logs go to stderr, as text or one JSON object per line; `RUST_LOG`
/// overrides the default `info`.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => logs.json().with_ansi(false).try_init(),
    };
}

struct Daemonized {
    data: DataDir,
    store: Store,
    options: ServeOptions,
    http: Option<SocketAddr>,
    token: String,
    group: String,
    reloader: crate::reload::Reloader,
}

impl Daemonized {
    async fn run(self, out: &mut Output) -> Result<()> {
        let listener = http_port::bind(&self.data, self.http).await?;
        let server = Server::start(self.store.clone(), listener, self.options)
            .await
            .map_err(explain_start_error)?;
        let started = server.started();
        let file = DaemonFile {
            pid: std::process::id(),
            http: started.http.to_string(),
            peer_id: started.peer_id.to_string(),
            listen: started.listen.iter().map(|a| a.to_string()).collect(),
            group: self.group.clone(),
        };
        // Watched before the daemon announces itself: a SIGHUP never kills it.
        let hup = crate::reload::watch_sighup()?;
        let _announced = Announcement::write(&self.data, &file)?;
        announce(out, &file, &self.data, &self.token)?;
        let reload = crate::reload::on_sighup(
            hup,
            self.reloader,
            server.node().clone(),
            self.store.clone(),
        );
        tokio::spawn(reload);
        let stop = async {
            match stop_signal().await {
                Ok(name) => tracing::info!("{name}, stopping"),
                Err(e) => tracing::error!("{e:#}; stopping"),
            }
        };
        let served = server.run_until(stop).await;
        tracing::info!("stopped");
        Ok(served?)
    }
}

/// A failed node start, with a hint for the usual cause of a listen error.
fn explain_start_error(error: ServeError) -> anyhow::Error {
    match &error {
        ServeError::Start(shoal::Error::Net(shoal::NetError::Listen {
            address,
            error: why,
        })) => {
            let why = if why.is_empty() { "refused" } else { why };
            network(format!(
                "cannot listen on {address}: {why} (is another `shoal serve` using that port? \
                 choose others with --listen)"
            ))
        }
        ServeError::PublicMetricsOffLoopback(_) => usage(error.to_string()),
        _ => anyhow::Error::new(error),
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
