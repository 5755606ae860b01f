//! An app that embeds Shoal and serves Shoal's HTTP API and dashboard from
//! its own axum app, next to a route of its own: it opens a `shoal::Store`,
//! starts the store's node (loopback, a fresh group), mounts
//! `shoal_server::router` beside `GET /hello`, and serves both on one port.
//!
//! ```sh
//! cargo run -p shoal-server --example embed            # Ctrl-C stops
//! cargo run -p shoal-server --example embed -- --self-test
//! ```
//!
//! `--self-test` calls the app's route and Shoal's routes once, checks the
//! answers (a record created over Shoal's API is in the app's own store),
//! and exits; `DIR` (optional) is where the database goes (default: a
//! temporary directory). The test suite runs this very code
//! (`tests/embed.rs` includes this file and calls [`run`]).

use axum::Router;
use axum::routing::get;
use shoal::{GroupKey, GroupSalt, NodeConfig, Store};
use shoal_server::Options;
use std::error::Error;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    run(std::env::args().skip(1).collect()).await
}

/// The example: `args` as on its command line (`--self-test`, `DIR`).
pub async fn run(args: Vec<String>) -> Result<()> {
    let self_test = args.iter().any(|a| a == "--self-test");
    let temporary = tempfile::tempdir()?;
    let dir = match args.iter().find(|a| !a.starts_with("--")) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => temporary.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir)?;
    let app = App::start(&dir).await?;
    if self_test {
        let checked = app.check().await;
        app.stop().await;
        checked?;
        println!("self-test passed");
        return Ok(());
    }
    println!("the app:            http://{}/hello", app.address);
    println!(
        "Shoal's dashboard:  http://{}/#token={}",
        app.address, app.token
    );
    tokio::signal::ctrl_c().await?;
    app.stop().await;
    Ok(())
}

/// The running app.
pub struct App {
    /// Where it serves.
    pub address: SocketAddr,
    /// The token Shoal's API asks for.
    pub token: String,
    store: Store,
    node: Arc<shoal::Node>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl App {
    /// Opens the store in `dir`, starts its node and serves the app.
    pub async fn start(dir: &Path) -> Result<App> {
        let store = Store::open(dir.join("app.db"))?;
        // A group of its own; a real app would load its key and salt (see
        // the README's library tour), and share them with its other devices.
        let key = GroupKey::from_random(random()?);
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&random()?[..16]);
        let salt = GroupSalt::from_random(salt);
        let node = Arc::new(store.start_node(NodeConfig::loopback(key.clone())).await?);
        let token: String = random()?.iter().map(|b| format!("{b:02x}")).collect();

        let shoal = shoal_server::router(
            node.clone(),
            store.clone(),
            Options::new(token.clone(), key, salt),
        );
        let app = Router::new()
            .route("/hello", get(|| async { "hello from the app" }))
            .merge(shoal);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(App {
            address,
            token,
            store,
            node,
            server,
            stop,
        })
    }

    /// Calls the app's route and Shoal's, checking each answer.
    pub async fn check(&self) -> Result<()> {
        let base = format!("http://{}", self.address);
        let token = self.token.clone();
        let peer_id = self.node.peer_id().to_string();
        // ureq blocks: off the async executor.
        tokio::task::spawn_blocking(move || calls(&base, &token, &peer_id)).await??;
        let stored = self.store.collection("notes")?.get("n1")?;
        expect(
            stored.is_some_and(|note| note["text"] == "written over Shoal's API"),
            "the record created over Shoal's API is in the app's store",
        )
    }

    /// Stops serving and the node.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.node.shutdown().await;
    }
}

/// The HTTP calls of [`App::check`].
fn calls(base: &str, token: &str, peer_id: &str) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let bearer = format!("Bearer {token}");

    let mut hello = agent.get(format!("{base}/hello")).call()?;
    expect(hello.status() == 200, "GET /hello answers 200")?;
    expect(
        hello.body_mut().read_to_string()? == "hello from the app",
        "GET /hello is the app's own route",
    )?;

    let bare = agent.get(format!("{base}/api/node")).call()?;
    expect(bare.status() == 401, "Shoal's API asks for the token")?;
    let mut node = agent
        .get(format!("{base}/api/node"))
        .header("Authorization", &bearer)
        .call()?;
    expect(node.status() == 200, "GET /api/node answers 200")?;
    let node: serde_json::Value = node.body_mut().read_json()?;
    expect(node["peer_id"] == peer_id, "GET /api/node is this node")?;

    let created = agent
        .post(format!("{base}/api/collections/notes/records"))
        .header("Authorization", &bearer)
        .send_json(
            serde_json::json!({"id": "n1", "value": {"text": "written over Shoal's API"}}),
        )?;
    expect(created.status() == 201, "POST a record answers 201")?;

    let mut page = agent.get(format!("{base}/")).call()?;
    expect(page.status() == 200, "the dashboard is served at /")?;
    expect(
        page.body_mut().read_to_string()?.contains("/assets/app.js"),
        "/ is the dashboard's page",
    )?;
    expect(
        agent.get(format!("{base}/healthz")).call()?.status() == 200,
        "GET /healthz answers 200",
    )?;
    let mut metrics = agent
        .get(format!("{base}/metrics"))
        .header("Authorization", &bearer)
        .call()?;
    expect(metrics.status() == 200, "GET /metrics answers 200")?;
    expect(
        metrics
            .body_mut()
            .read_to_string()?
            .contains("shoal_records{collection=\"notes\"} 1"),
        "the metrics count the record",
    )
}

/// `Ok` if `held`, else an error saying what did not hold.
fn expect(held: bool, what: &str) -> Result<()> {
    if held {
        Ok(())
    } else {
        Err(format!("self-test failed: expected {what}").into())
    }
}

fn random() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes)
}
