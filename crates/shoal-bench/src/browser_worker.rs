//! The `browser` scenario's worker route: durable single puts into a store
//! in a dedicated Worker on OPFS (`{storage: "opfs"}`: SQLite in the
//! origin private file system), measured two ways — by code running in
//! that worker beside the store, each put awaited before the next: the
//! first `puts` right after the page loaded (while V8 still runs the
//! WebAssembly on its baseline compiler and tiers the hot functions up) and
//! the next `puts` after them; and by the page through shoal-web's own
//! `WorkerStore` (`shoal_client.js`), each put a message to the worker
//! awaited until its answer came back, again the first `puts` and the
//! next, then as many made together (all called at once, then awaited) —
//! beside the bare round trip of such a message to a worker that
//! answers at once, the floor of every call through `WorkerStore`. Then
//! (browser.rs) the catch-up and latency scripts run again with
//! `WorkerStore` as the page's store class ([`use_worker_store`]).
//!
//! The page and the bench's worker script come from an origin of the
//! bench's own ([`BenchOrigin`], loopback): the daemon's pages allow only
//! the daemon's own scripts (their Content-Security-Policy), and the
//! bench's worker is not one of them. It serves the browser build's files
//! from the same directory the daemon does. It owns this origin and these
//! figures only.

use crate::webdriver::Browser;
use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The browser build's files the origin serves, with their content types.
const PKG_FILES: [(&str, &str); 4] = [
    ("shoal_web.js", "text/javascript"),
    ("shoal_web_bg.wasm", "application/wasm"),
    ("shoal_worker.js", "text/javascript"),
    ("shoal_client.js", "text/javascript"),
];

/// The page: nothing but a title; the scripts run through WebDriver.
const PAGE: &str = "<!doctype html><meta charset=utf-8><title>shoal-bench worker route</title>";

/// The bench's module worker: on `{puts, name}`, opens `name` on OPFS,
/// makes `2 * puts` single puts, each awaited, and answers how long the
/// first `puts` took (`cold_ms`) and the next (`ms`), or `{error}`; checks
/// every put changed a record and the last reads back.
const WORKER: &str = r#"
const loaded = import('/pkg/shoal_web.js').then(async (shoal) => { await shoal.default(); return shoal; });
self.onmessage = async ({ data: { puts, name } }) => {
  try {
    const shoal = await loaded;
    const store = await shoal.Store.open(name, { storage: 'opfs' });
    const records = store.collection('bench');
    const timed = async (from) => {
      const started = performance.now();
      for (let i = from; i < from + puts; i++) {
        const written = await records.put(`r${i}`, { i, text: 'a small record of a few dozen bytes' });
        if (!written.changed) throw new Error(`put ${i} changed nothing`);
      }
      return performance.now() - started;
    };
    const cold_ms = await timed(0);
    const ms = await timed(puts);
    const last = await records.get(`r${2 * puts - 1}`);
    if (!last || last.i !== 2 * puts - 1) throw new Error('the last put does not read back');
    await store.close();
    self.postMessage({ cold_ms, ms });
  } catch (error) {
    self.postMessage({ error: String((error && (error.code ? `${error.code}: ${error.message}` : error.stack)) || error) });
  }
};
"#;

/// A worker that answers every message at once: the bare round trip
/// between the page and a dedicated Worker, which every call through
/// `WorkerStore` pays on top of the store's own work.
const ECHO_WORKER: &str =
    "self.onmessage = ({ data }) => self.postMessage({ id: data.calls[0].id, value: null });";

/// `{puts}` → `{cold_ms, ms, page_cold_ms, page_ms, together_ms, echo_ms}`:
/// the timings, into fresh stores (the page's, like the worker's, the first
/// `puts` and the next; then `puts` made together from the page), and
/// `puts` round trips to [`ECHO_WORKER`] carrying a put's message (after as
/// many unmeasured ones).
const MEASURE: &str = r#"async ({ puts }) => {
  const tag = Date.now();
  const echo = new Worker('/echo_worker.js');
  const bounce = (id) => new Promise((resolve) => {
    echo.onmessage = resolve;
    echo.postMessage({ calls: [{ op: 'collection', collection: 'bench', method: 'put', args: [`r${id}`, { i: id, text: 'a small record of a few dozen bytes' }], id }] });
  });
  for (let i = 0; i < puts; i++) await bounce(i);
  const echoed = performance.now();
  for (let i = 0; i < puts; i++) await bounce(i);
  const echo_ms = performance.now() - echoed;
  echo.terminate();
  const worker = new Worker('/bench_worker.js', { type: 'module' });
  const inside = await new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data));
    worker.onerror = (event) => reject(new Error(event.message || 'the bench worker failed'));
    worker.postMessage({ puts, name: `bench-opfs-inside-${tag}` });
  });
  worker.terminate();
  const { WorkerStore } = await import('/pkg/shoal_client.js');
  const store = await WorkerStore.open(`bench-opfs-page-${tag}`);
  const records = store.collection('bench');
  const timed = async (from) => {
    const started = performance.now();
    for (let i = from; i < from + puts; i++) {
      const written = await records.put(`r${i}`, { i, text: 'a small record of a few dozen bytes' });
      if (!written.changed) throw new Error(`put ${i} from the page changed nothing`);
    }
    return performance.now() - started;
  };
  const page_cold_ms = await timed(0);
  const page_ms = await timed(puts);
  const last = await records.get(`r${2 * puts - 1}`);
  if (!last || last.i !== 2 * puts - 1) throw new Error('the last put from the page does not read back');
  await store.close();
  // The same number of puts made together from the page: all called at
  // once, then all awaited, into another fresh store of its own worker.
  const together = await WorkerStore.open(`bench-opfs-together-${tag}`);
  const many = together.collection('bench');
  await many.get('warm-up');
  const started = performance.now();
  const written = await Promise.all(Array.from({ length: puts }, (_, i) => many.put(`r${i}`, { i, text: 'a small record of a few dozen bytes' })));
  const together_ms = performance.now() - started;
  if (written.some((w, i) => !w.changed || w.version !== i + 1)) throw new Error('a put made together did not get its own version in call order');
  const tail = await many.get(`r${puts - 1}`);
  if (!tail || tail.i !== puts - 1) throw new Error('the last put made together does not read back');
  await together.close();
  return { cold_ms: inside.cold_ms, ms: inside.ms, page_cold_ms, page_ms, together_ms, echo_ms };
}"#;

/// The bench's own loopback origin.
pub struct BenchOrigin {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl BenchOrigin {
    /// Serves the page, the bench's worker and the build in `pkg`.
    pub async fn start(pkg: &Path) -> Result<BenchOrigin> {
        let router = Router::new()
            .route(
                "/",
                get(|| async { ([(header::CONTENT_TYPE, "text/html")], PAGE) }),
            )
            .route(
                "/bench_worker.js",
                get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], WORKER) }),
            )
            .route(
                "/echo_worker.js",
                get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], ECHO_WORKER) }),
            )
            .route("/pkg/{name}", get(pkg_file))
            .with_state(Arc::new(pkg.to_path_buf()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(BenchOrigin { addr, stop, served })
    }

    /// The page's address.
    pub fn page(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.served.await;
    }
}

/// `GET /pkg/{name}`: one of [`PKG_FILES`], read from the build directory.
async fn pkg_file(State(pkg): State<Arc<PathBuf>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some((name, content_type)) = PKG_FILES.iter().find(|(file, _)| *file == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(pkg.join(name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, *content_type)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `{}` → `{}`: the page's `window.shoal.Store` becomes `WorkerStore`, so
/// the catch-up and latency scripts (browser_scripts.rs) run through it.
const USE_WORKER_STORE: &str = r#"async () => {
  const { WorkerStore } = await import('/pkg/shoal_client.js');
  window.shoal = { Store: WorkerStore };
  return {};
}"#;

/// Makes `WorkerStore` the store class of the bench's page, on which
/// [`measure`] left `browser`.
pub fn use_worker_store(browser: &Browser) -> Result<()> {
    browser.run(USE_WORKER_STORE, json!({}))?;
    Ok(())
}

/// The worker route's timings of `puts` durable single puts.
pub struct WorkerTimes {
    /// The first ones made inside the worker, each awaited.
    pub inside_cold: Duration,
    /// The next ones made inside the worker, each awaited.
    pub inside: Duration,
    /// The first ones made from the page through `WorkerStore` (a worker
    /// of its own, just started), each awaited.
    pub from_page_cold: Duration,
    /// The next ones made from the page through `WorkerStore`, each awaited.
    pub from_page: Duration,
    /// As many made from the page through `WorkerStore` all at once, then
    /// awaited together (another store, in a worker of its own).
    pub from_page_together: Duration,
    /// As many bare round trips between the page and a worker.
    pub round_trips: Duration,
}

/// Loads the bench's page in `browser` and times the worker route.
pub fn measure(browser: &Browser, origin: &BenchOrigin, puts: u64) -> Result<WorkerTimes> {
    browser.goto(&origin.page())?;
    let times = browser.run(MEASURE, json!({ "puts": puts }))?;
    let millis = |key: &str| -> Result<Duration> {
        let ms = times[key]
            .as_f64()
            .with_context(|| format!("the tab sent no {key}"))?;
        ensure!(ms > 0.0, "the tab sent {key} = {ms}");
        Ok(Duration::from_secs_f64(ms / 1000.0))
    };
    Ok(WorkerTimes {
        inside_cold: millis("cold_ms")?,
        inside: millis("ms")?,
        from_page_cold: millis("page_cold_ms")?,
        from_page: millis("page_ms")?,
        from_page_together: millis("together_ms")?,
        round_trips: millis("echo_ms")?,
    })
}
