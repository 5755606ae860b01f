//! The `browser` scenario: a tab in headless Chromium as a Shoal peer
//! (crates/shoal-web, built by scripts/wasm-build.sh), against a real
//! daemon (shoal-server, in this process) that serves the build at
//! `/apps/pkg/` and listens on WebSocket.
//!
//! Figures: the gzipped size of the `.wasm`; durable single puts per second
//! in the tab, one after another (each awaited until IndexedDB's
//! transaction completed) and made together (all called at once, then all
//! awaited: writes waiting share a transaction, each still resolving only
//! once durable); the same single puts into a store in a dedicated Worker
//! on OPFS, made in the worker and made from the page through
//! `WorkerStore` (browser_worker.rs); the
//! time for an empty tab to catch up 10,000 records from the daemon, from
//! the connect call until the tab's change feed named every one; and a tab
//! write's latency to the native node, from the put call in the tab until
//! the daemon's subscription yields it (wall clock on both sides: the same
//! machine's clock); and those two again for a store in a dedicated Worker
//! on OPFS called through `WorkerStore`. The catch-up and latency need the
//! tab's network (`store.connect`); without it they are `null` and stderr
//! says why — never a made-up number.

use crate::browser_scripts::{CATCHUP, LATENCY, LOAD, PUTS, PUTS_TOGETHER};
use crate::browser_worker::{self, BenchOrigin};
use crate::report::{per_second, print_json_last, round_to, verdict};
use crate::webdriver::Browser;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};
use shoal::{GroupKey, GroupSalt, Multiaddr, NodeConfig, Store};
use shoal_server::{Options, ServeOptions, Server};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Issue 16's targets.
const TARGET_GZIP_KB: f64 = 1536.0;
const TARGET_PUT_PER_S: f64 = 2_000.0;
const TARGET_CATCHUP_S: f64 = 3.0;
const TARGET_P50_MS: f64 = 20.0;
const TARGET_P99_MS: f64 = 100.0;

/// Options of `shoal-bench browser`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Durable single puts timed in the tab, one after another and again made together.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    puts: u64,
    /// Records the empty tab catches up from the daemon.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    catchup: u64,
    /// Tab writes timed until the native node has them.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    writes: u64,
    /// The browser build (scripts/wasm-build.sh's pkg directory; default:
    /// $SHOAL_WASM_TARGET_DIR/pkg, else target/wasm/pkg).
    #[arg(long)]
    web_pkg: Option<PathBuf>,
    /// The chromedriver binary.
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    chromedriver: PathBuf,
    /// The Chromium binary.
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Directory for the temporary database and browser profile (default:
    /// the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct BrowserResult {
    scenario: &'static str,
    wasm_gzip_kb: f64,
    tab_put_per_s: f64,
    tab_put_together_per_s: f64,
    worker_opfs_put_per_s: f64,
    worker_opfs_cold_put_per_s: f64,
    page_to_worker_opfs_put_per_s: f64,
    page_to_worker_opfs_cold_put_per_s: f64,
    page_to_worker_opfs_together_per_s: f64,
    page_worker_round_trip_us: f64,
    tab_catchup_10k_s: Option<f64>,
    tab_to_native_p50_ms: Option<f64>,
    tab_to_native_p99_ms: Option<f64>,
    worker_catchup_10k_s: Option<f64>,
    worker_to_native_p50_ms: Option<f64>,
    worker_to_native_p99_ms: Option<f64>,
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let pkg = match &args.web_pkg {
        Some(dir) => dir.clone(),
        None => std::env::var_os("SHOAL_WASM_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/wasm"))
            .join("pkg"),
    };
    let wasm_gzip_kb = gzip_kb(&pkg.join("shoal_web_bg.wasm"))?;
    println!(
        "wasm: {wasm_gzip_kb:.0} KB gzipped (target < {TARGET_GZIP_KB:.0} KB: {})",
        verdict(wasm_gzip_kb < TARGET_GZIP_KB)
    );
    let temp = crate::peers::scratch_dir(args.dir.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let daemon = runtime.block_on(Daemon::start(temp.path(), &pkg, args.catchup))?;
    let profile = temp.path().join("chromium-profile");
    let browser = Browser::start(&args.chromedriver, &args.chromium, &profile)?;
    browser.goto(&format!("http://{}/apps/", daemon.http))?;
    let network = browser.run(LOAD, json!({}))?["network"] == true;

    let puts = browser.run(PUTS, json!({ "puts": args.puts }))?;
    let tab_put_per_s = per_second(args.puts, millis(&puts["ms"])?);
    println!(
        "tab puts: {tab_put_per_s:.0}/s durable single puts ({} of them; target >= {TARGET_PUT_PER_S:.0}/s: {})",
        args.puts,
        verdict(tab_put_per_s >= TARGET_PUT_PER_S)
    );
    let together = browser.run(PUTS_TOGETHER, json!({ "puts": args.puts }))?;
    let tab_put_together_per_s = per_second(args.puts, millis(&together["ms"])?);
    println!(
        "tab puts made together: {tab_put_together_per_s:.0}/s durable single puts, all called at once \
         ({} of them; target >= {TARGET_PUT_PER_S:.0}/s: {})",
        args.puts,
        verdict(tab_put_together_per_s >= TARGET_PUT_PER_S)
    );

    let synced = match (network, &daemon.websocket) {
        (false, _) => {
            Err("this build of shoal-web has no store.connect (the tab's network)".into())
        }
        (true, None) => Err(format!(
            "the daemon has no WebSocket listener: {}",
            daemon.no_websocket.as_deref().unwrap_or("unknown")
        )),
        (true, Some(address)) => Ok(address.clone()),
    };
    let tab_synced = match &synced {
        Ok(address) => {
            Some(runtime.block_on(synced_figures(&browser, &daemon, address, args, "tab"))?)
        }
        Err(why) => {
            writeln!(
                std::io::stderr(),
                "tab_catchup_10k_s, tab_to_native_p50_ms/p99_ms and the worker route's are null: {why}"
            )?;
            println!("catch-up and tab-to-native latency: not measured ({why})");
            None
        }
    };
    let origin = runtime.block_on(BenchOrigin::start(&pkg))?;
    let worker = browser_worker::measure(&browser, &origin, args.puts).and_then(|times| {
        // The same catch-up and latency through `WorkerStore` (OPFS).
        let synced = match &synced {
            Ok(address) => {
                browser_worker::use_worker_store(&browser)?;
                Some(runtime.block_on(synced_figures(
                    &browser,
                    &daemon,
                    address,
                    args,
                    "worker route",
                ))?)
            }
            Err(_) => None,
        };
        Ok((times, synced))
    });
    runtime.block_on(origin.stop());
    let (worker, worker_synced) = worker?;
    let worker_opfs_put_per_s = per_second(args.puts, worker.inside);
    let worker_opfs_cold_put_per_s = per_second(args.puts, worker.inside_cold);
    let page_to_worker_opfs_put_per_s = per_second(args.puts, worker.from_page);
    let page_to_worker_opfs_cold_put_per_s = per_second(args.puts, worker.from_page_cold);
    let page_to_worker_opfs_together_per_s = per_second(args.puts, worker.from_page_together);
    let page_worker_round_trip_us = worker.round_trips.as_secs_f64() * 1e6 / args.puts as f64;
    println!(
        "worker route (a store in a dedicated Worker, on OPFS), durable single puts, {} each: \
         made in the worker {worker_opfs_put_per_s:.0}/s (target >= {TARGET_PUT_PER_S:.0}/s: {}), \
         the first ones after the page loaded {worker_opfs_cold_put_per_s:.0}/s ({}); \
         made from the page through WorkerStore {page_to_worker_opfs_put_per_s:.0}/s ({}), \
         the first ones in its new worker {page_to_worker_opfs_cold_put_per_s:.0}/s ({}), \
         made together from the page {page_to_worker_opfs_together_per_s:.0}/s; \
         a bare message round trip between the page and a worker {page_worker_round_trip_us:.0} µs",
        args.puts,
        verdict(worker_opfs_put_per_s >= TARGET_PUT_PER_S),
        verdict(worker_opfs_cold_put_per_s >= TARGET_PUT_PER_S),
        verdict(page_to_worker_opfs_put_per_s >= TARGET_PUT_PER_S),
        verdict(page_to_worker_opfs_cold_put_per_s >= TARGET_PUT_PER_S)
    );
    drop(browser);
    runtime.block_on(daemon.stop());
    print_json_last(&BrowserResult {
        scenario: "browser",
        wasm_gzip_kb: round_to(wasm_gzip_kb, 1),
        tab_put_per_s: round_to(tab_put_per_s, 0),
        tab_put_together_per_s: round_to(tab_put_together_per_s, 0),
        worker_opfs_put_per_s: round_to(worker_opfs_put_per_s, 0),
        worker_opfs_cold_put_per_s: round_to(worker_opfs_cold_put_per_s, 0),
        page_to_worker_opfs_put_per_s: round_to(page_to_worker_opfs_put_per_s, 0),
        page_to_worker_opfs_cold_put_per_s: round_to(page_to_worker_opfs_cold_put_per_s, 0),
        page_to_worker_opfs_together_per_s: round_to(page_to_worker_opfs_together_per_s, 0),
        page_worker_round_trip_us: round_to(page_worker_round_trip_us, 1),
        tab_catchup_10k_s: tab_synced.map(|f| round_to(f.catchup_s, 3)),
        tab_to_native_p50_ms: tab_synced.map(|f| round_to(f.p50_ms, 2)),
        tab_to_native_p99_ms: tab_synced.map(|f| round_to(f.p99_ms, 2)),
        worker_catchup_10k_s: worker_synced.map(|f| round_to(f.catchup_s, 3)),
        worker_to_native_p50_ms: worker_synced.map(|f| round_to(f.p50_ms, 2)),
        worker_to_native_p99_ms: worker_synced.map(|f| round_to(f.p99_ms, 2)),
    })
}

/// What syncing with the daemon measured.
#[derive(Debug, Clone, Copy)]
struct Synced {
    /// An empty store's catch-up, seconds.
    catchup_s: f64,
    /// A write's latency to the native node, p50 and p99 ms.
    p50_ms: f64,
    p99_ms: f64,
}

/// The catch-up and the latency to the native node of the store class the
/// page's `window.shoal.Store` is (`label` names it in the output).
async fn synced_figures(
    browser: &Browser,
    daemon: &Daemon,
    address: &str,
    args: &Args,
    label: &str,
) -> Result<Synced> {
    let catchup = tokio::task::block_in_place(|| {
        browser.run(
            CATCHUP,
            json!({ "address": address, "secret": daemon.secret, "records": args.catchup }),
        )
    })?;
    let catchup_s = millis(&catchup["ms"])?.as_secs_f64();
    println!(
        "{label} catch-up: {} records in {catchup_s:.2} s (target for 10,000 < {TARGET_CATCHUP_S} s: {})",
        args.catchup,
        verdict(catchup_s < TARGET_CATCHUP_S)
    );

    // The native side notes when each write arrives; the tab writes.
    let latency = daemon.store.collection("latency")?;
    let mut changes = latency.subscribe();
    let expected = args.writes as usize;
    let arrivals = tokio::spawn(async move {
        let mut arrived = Vec::with_capacity(expected);
        while arrived.len() < expected {
            let change = changes.next().await?;
            arrived.push((change.id.to_string(), epoch_ms()));
        }
        anyhow::Ok(arrived)
    });
    tokio::task::block_in_place(|| {
        browser.run(LATENCY, json!({ "writes": args.writes, "gap_ms": 5 }))
    })?;
    let arrived = tokio::time::timeout(Duration::from_secs(60), arrivals)
        .await
        .context("the tab's writes did not all reach the daemon within 60 s")???;
    let mut samples = Vec::with_capacity(arrived.len());
    for (id, at) in arrived {
        let record = latency.get(&id)?.context("an arrived record is gone")?;
        let sent = record["sent"].as_f64().context("a record without `sent`")?;
        samples.push(at - sent);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
    println!(
        "{label} to native: p50 {p50:.2} ms (target < {TARGET_P50_MS}: {}), p99 {p99:.2} ms (target < {TARGET_P99_MS}: {})",
        verdict(p50 < TARGET_P50_MS),
        verdict(p99 < TARGET_P99_MS)
    );
    Ok(Synced {
        catchup_s,
        p50_ms: p50,
        p99_ms: p99,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Now, in milliseconds since 1970 (as the tab's `performance.timeOrigin +
/// performance.now()`).
fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn millis(value: &Value) -> Result<Duration> {
    let ms = value.as_f64().context("the tab sent no time")?;
    Ok(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

/// The gzip -9 size of `wasm` in KB (1024 bytes).
fn gzip_kb(wasm: &Path) -> Result<f64> {
    let bytes = std::fs::read(wasm).with_context(|| {
        format!(
            "no browser build at {}: run scripts/wasm-build.sh (or pass --web-pkg DIR)",
            wasm.display()
        )
    })?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes)?;
    Ok(encoder.finish()?.len() as f64 / 1024.0)
}

/// The daemon the tab talks to.
struct Daemon {
    store: Store,
    http: std::net::SocketAddr,
    /// Its WebSocket address, if it could listen on one.
    websocket: Option<String>,
    /// Why it listens on no WebSocket address.
    no_websocket: Option<String>,
    /// The group secret (64 hex digits), for the tab.
    secret: String,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// A store holding `records` records in `catchup`, served with the
    /// browser build in `pkg`, listening on loopback TCP and WebSocket
    /// (TCP only when the node cannot listen on WebSocket).
    async fn start(dir: &Path, pkg: &Path, records: u64) -> Result<Daemon> {
        let store = Store::open(dir.join("daemon.db"))?;
        let catchup = store.collection("catchup")?;
        catchup.put_many((0..records).map(|i| {
            (
                format!("r{i:06}"),
                json!({ "i": i, "text": "a record to catch up" }),
            )
        }))?;
        let secret: String = random_bytes()?.iter().map(|b| format!("{b:02x}")).collect();
        let key = GroupKey::from_hex(&secret)?;
        let salt = GroupSalt::from_random(random_bytes()?[..16].try_into()?);
        let options = |ws: bool| {
            let mut listen: Vec<Multiaddr> = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")];
            if ws {
                listen.push("/ip4/127.0.0.1/tcp/0/ws".parse().expect("valid"));
            }
            let api = Options {
                web_pkg: Some(pkg.to_path_buf()),
                ..Options::new(secret.clone(), key.clone(), salt)
            };
            ServeOptions::new(
                NodeConfig {
                    listen,
                    ..NodeConfig::loopback(key.clone())
                },
                api,
            )
        };
        let listener = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (server, no_websocket) =
            match Server::start(store.clone(), listener().await?, options(true)).await {
                Ok(server) => (server, None),
                Err(e) => {
                    let why = format!("{:#}", anyhow::Error::from(e));
                    (
                        Server::start(store.clone(), listener().await?, options(false)).await?,
                        Some(why),
                    )
                }
            };
        let started = server.started().clone();
        let websocket = started
            .listen
            .iter()
            .map(|a| a.to_string())
            .find(|a| a.contains("/ws/"));
        let no_websocket = match (&websocket, no_websocket) {
            (None, None) => Some("it reports no /ws listen address".to_string()),
            (_, why) => why,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ = server
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Daemon {
            store,
            http: started.http,
            websocket,
            no_websocket,
            secret,
            stop,
            served,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.served.await;
    }
}

fn random_bytes() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}
