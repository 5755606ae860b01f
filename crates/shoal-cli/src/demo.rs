//! `shoal demo`: three replicas (laptop, desktop, server) in one process, each
//! with its own data directory, database and libp2p node on loopback, sharing
//! a freshly generated group secret. They write while disconnected —
//! conflicting edits to one record, a delete racing an edit, different tags
//! added to one map field — then connect (laptop–desktop–server, a line:
//! laptop and server never talk directly), converge, and show a live edit
//! travelling end to end. Then the laptop's dashboard is served, and its URL
//! printed, until Ctrl-C; meanwhile the server touches one record every few
//! seconds so the dashboard has live changes to show.
//!
//! This module owns the demo script and its output only; everything it shows
//! is the real library, network and HTTP API at work (mDNS stays off:
//! loopback only).

use crate::datadir::DataDir;
use anyhow::{Context, Result, bail};
use serde_json::json;
use shoal::{DbVersion, GroupKey, Multiaddr, Node, NodeConfig, Store};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["laptop", "desktop", "server"];
const LIMIT: Duration = Duration::from_secs(30);
/// How often the server touches `notes/heartbeat` while the dashboard is up.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// How long open requests may finish after Ctrl-C.
const DRAIN: Duration = Duration::from_secs(2);

struct Replica {
    name: &'static str,
    store: Store,
    node: Option<Node>,
}

/// Runs the demo in `dir` (a fresh temporary directory when `None`), serving
/// the laptop's dashboard on `http` until Ctrl-C.
pub fn run(dir: Option<&Path>, http: SocketAddr) -> Result<()> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = dir.unwrap_or(temp.path());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(http)
            .await
            .with_context(|| format!("cannot listen on --http {http}"))?;
        let (mut replicas, key) = script(dir).await?;
        let served = dashboard(listener, dir, &mut replicas, &key).await;
        for mut replica in replicas {
            if let Some(node) = replica.node.take() {
                node.shutdown().await;
            }
        }
        println!("stopped");
        served
    })
}

async fn script(dir: &Path) -> Result<(Vec<Replica>, GroupKey)> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = GroupKey::from_random(secret);
    let mut replicas = Vec::new();
    for name in NAMES {
        let data = replica_dir(dir, name);
        let _ = std::fs::remove_dir_all(data.dir());
        let store = data.create()?;
        let path = data.db_path();
        println!("{name:>8}: site {} — {}", store.site_id(), path.display());
        replicas.push(Replica {
            name,
            store,
            node: None,
        });
    }

    println!("\n1. Every replica writes while disconnected:");
    let [laptop, desktop, server] = [0, 1, 2].map(|i| replicas[i].store.clone());
    for (store, owner) in [
        (&laptop, "laptop"),
        (&desktop, "desktop"),
        (&server, "server"),
    ] {
        let tasks = store.collection("tasks")?;
        tasks.put(
            &format!("{owner}-1"),
            json!({"title": format!("written on {owner}"), "done": false}),
        )?;
        // The same record, created independently on every machine, edited differently.
        tasks.put(
            "shared",
            json!({"title": "plan trip", "done": false, "owner": "ana"}),
        )?;
    }
    // Edits on different machines within one millisecond are ordered by clock
    // counter, not by wall time; a person's edits are milliseconds apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
    laptop
        .collection("tasks")?
        .patch("shared", json!({"title": "plan trip to Lisbon"}))?;
    desktop
        .collection("tasks")?
        .patch("shared", json!({"done": true}))?;
    server
        .collection("tasks")?
        .patch("shared", json!({"owner": "bo"}))?;
    println!("   shared: laptop edits the title, desktop marks it done, server reassigns it");
    laptop
        .collection("tasks")?
        .put("old", json!({"title": "obsolete"}))?;
    let board = shoal::derive_id("board", "team")?;
    for (store, tag) in [(&laptop, "travel"), (&desktop, "home"), (&server, "infra")] {
        store
            .collection("notes")?
            .map_set(board.as_str(), "tags", tag, json!(true))?;
    }
    println!(
        "   {board}: each adds a different tag to the same map field (one id, derived on every machine)"
    );

    println!("\n2. They connect — laptop to desktop, desktop to server — with a shared secret:");
    let mut previous: Option<Multiaddr> = None;
    for replica in &mut replicas {
        let mut config = NodeConfig::loopback(key.clone());
        config.listen.retain(|a| a.to_string().contains("/tcp/"));
        config.peers = previous.iter().cloned().collect();
        config.redial_interval = Duration::from_millis(300);
        let node = replica.store.start_node(config).await?;
        let address = node
            .listen_addrs(Duration::from_secs(10))
            .await?
            .into_iter()
            .next()
            .context("no listen address")?;
        println!("   {:>8} listens on {address}", replica.name);
        previous = Some(address);
        replica.node = Some(node);
    }
    let started = Instant::now();
    converge(&replicas).await?;
    println!("   converged in {} ms", started.elapsed().as_millis());

    println!(
        "\n3. While connected, server edits 'old' as laptop deletes it, and desktop edits 'shared':"
    );
    let started = Instant::now();
    // The edit first: the other way round, the delete can reach the server
    // through the desktop before its edit starts (a push takes a fraction
    // of a millisecond here), and the edit of a deleted record is refused.
    // This way the delete is concurrent with the edit or after it: either
    // way `old` ends deleted everywhere.
    server
        .collection("tasks")?
        .patch("old", json!({"title": "still needed?"}))?;
    laptop.collection("tasks")?.delete("old")?;
    desktop
        .collection("tasks")?
        .patch("shared", json!({"note": "book flights"}))?;
    converge(&replicas).await?;
    println!(
        "   converged in {} ms (laptop and server only talk through desktop)",
        started.elapsed().as_millis()
    );

    println!("\n4. Every replica now holds:");
    let digest = digest(&replicas[0].store)?;
    for replica in &replicas {
        let tasks = replica.store.collection("tasks")?;
        let shared = tasks
            .get("shared")?
            .map(serde_json::Value::Object)
            .unwrap_or_default();
        let old = if tasks.get("old")?.is_some() {
            "alive"
        } else {
            "deleted"
        };
        let tags = replica
            .store
            .collection("notes")?
            .get(board.as_str())?
            .map(|r| r["tags"].clone())
            .unwrap_or_default();
        println!("   {:>8}: shared = {shared}", replica.name);
        println!(
            "   {:>8}  old = {old}, tags = {tags}, state digest {}",
            "",
            self::digest(&replica.store)?
        );
    }
    println!("\nAll replicas hold identical records and per-field clocks (digest {digest}).");
    Ok((replicas, key))
}

/// The data directory of one replica.
fn replica_dir(dir: &Path, name: &str) -> DataDir {
    DataDir::at(dir.join(name))
}

/// Serves the laptop's dashboard and HTTP API until Ctrl-C, while the server
/// touches `notes/heartbeat` every [`HEARTBEAT`].
async fn dashboard(
    listener: tokio::net::TcpListener,
    dir: &Path,
    replicas: &mut [Replica],
    key: &GroupKey,
) -> Result<()> {
    let laptop = &mut replicas[0];
    let data = replica_dir(dir, laptop.name);
    let token = crate::secrets::ensure_token(&data)?;
    let node = Arc::new(
        laptop
            .node
            .take()
            .context("the laptop's node is not running")?,
    );
    let address = listener
        .local_addr()
        .context("cannot read the dashboard's address")?;
    let options = shoal_server::Options {
        name: Some(laptop.name.to_string()),
        peer_book: Some(Arc::new(crate::peer_file::PeerFile(data.clone()))),
        ..shoal_server::Options::new(
            token.clone(),
            key.clone(),
            crate::secrets::ensure_salt(&data)?,
        )
    };
    let router = shoal_server::router(node.clone(), laptop.store.clone(), options);
    println!("\n5. The laptop's dashboard (every peer, every record, live):");
    println!("   dashboard http://{address}/#token={token}");
    println!(
        "   the server touches notes/heartbeat every {} s; Ctrl-C stops",
        HEARTBEAT.as_secs()
    );
    let server_store = replicas[2].store.clone();
    let heartbeat = tokio::spawn(async move {
        let mut beats = 0u64;
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            beats += 1;
            // A SQLite write: off the async executor.
            let store = server_store.clone();
            let wrote = tokio::task::spawn_blocking(move || {
                store.collection("notes").and_then(|notes| {
                    notes.put("heartbeat", json!({"from": "server", "beats": beats}))
                })
            })
            .await;
            match wrote {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("heartbeat: {e}"),
                Err(e) => eprintln!("heartbeat: {e}"),
            }
        }
    });
    let stop = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("cannot watch Ctrl-C: {e}; stopping");
        }
    };
    let served = shoal_server::serve_until(listener, router, stop, DRAIN).await;
    heartbeat.abort();
    node.shutdown().await;
    Ok(served?)
}

/// Waits until every replica holds the same slot versions and clocks.
async fn converge(replicas: &[Replica]) -> Result<()> {
    let start = Instant::now();
    loop {
        let digests = replicas
            .iter()
            .map(|r| digest(&r.store))
            .collect::<Result<Vec<_>>>()?;
        if digests.windows(2).all(|w| w[0] == w[1]) {
            return Ok(());
        }
        if start.elapsed() > LIMIT {
            bail!("replicas did not converge within {LIMIT:?}: digests {digests:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A digest of every slot version (value, clock, life) a replica holds.
pub(crate) fn digest(store: &Store) -> Result<String> {
    let mut lines: Vec<String> = store
        .changes_since(DbVersion(0))
        .map(|c| {
            c.map(|c| {
                format!(
                    "{} {} {:?} {:?} {} {}",
                    c.collection, c.id, c.slot, c.value, c.clock, c.life
                )
            })
        })
        .collect::<Result<_, _>>()?;
    lines.sort();
    Ok(blake3::hash(lines.join("\n").as_bytes()).to_hex()[..16].to_string())
}
