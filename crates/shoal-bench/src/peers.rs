//! Shared setup for the sync scenarios: a store filled with N small records,
//! loopback nodes with authentication on, waiting for two nodes to connect
//! and for a follower to hold everything a leader has, and reading a
//! process's peak memory.
//!
//! It owns no measurement; each scenario times what it names.

use anyhow::{Context, Result, bail};
use serde_json::json;
use shoal::{DbVersion, GroupKey, Multiaddr, Node, NodeConfig, PeerId, PeerState, Store};
use std::path::Path;
use std::time::{Duration, Instant};

/// The key every benchmark node shares (authentication and MACs are on).
pub fn group_key() -> GroupKey {
    GroupKey::from_random([7; 32])
}

/// Opens `path` and fills it with [`fill`].
pub fn filled_store(path: &Path, records: u64) -> Result<Store> {
    let store = Store::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    fill(&store, records, 0)?;
    Ok(store)
}

/// The collection [`fill`] writes to.
pub const COLLECTION: &str = "items";

/// The id of the `i`th record [`fill`] writes: `rec-<i, 8 digits>`.
pub fn record_id(i: u64) -> String {
    format!("rec-{i:08}")
}

/// Puts `records` 3-field records (two short strings and a bool) with ids
/// `rec-<first>`..., in batches of 10,000.
pub fn fill(store: &Store, records: u64, first: u64) -> Result<()> {
    let items = store.collection(COLLECTION)?;
    let mut next = first;
    while next < first + records {
        let end = (next + 10_000).min(first + records);
        items.put_many((next..end).map(|i| {
            (
                record_id(i),
                json!({"title": format!("record {i}"), "owner": "bench", "done": i % 2 == 0}),
            )
        }))?;
        next = end;
    }
    Ok(())
}

/// The configuration of a benchmark node: loopback TCP only, the shared
/// group key, dialing `peers` (redialed quickly).
pub fn loopback_config(peers: Vec<Multiaddr>) -> NodeConfig {
    let mut config = NodeConfig::loopback(group_key());
    config.listen.retain(|a| a.to_string().contains("/tcp/"));
    config.peers = peers;
    config.redial_interval = Duration::from_millis(200);
    config
}

/// Starts a loopback node for `store` dialing `peers`, and returns it with its TCP address.
pub async fn start_node(store: &Store, peers: Vec<Multiaddr>) -> Result<(Node, Multiaddr)> {
    start_node_with(store, loopback_config(peers)).await
}

/// Starts a node for `store` with `config` (see [`loopback_config`]), and
/// returns it with its first listen address.
pub async fn start_node_with(store: &Store, config: NodeConfig) -> Result<(Node, Multiaddr)> {
    let node = store.start_node(config).await?;
    let address = node
        .listen_addrs(Duration::from_secs(10))
        .await?
        .into_iter()
        .next()
        .context("the node has no listen address")?;
    Ok((node, address))
}

/// Waits until `follower` has applied `leader`'s log up to `version`.
pub async fn wait_caught_up(
    follower: &Node,
    leader: PeerId,
    version: DbVersion,
    limit: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if follower
            .peer(&leader)
            .is_some_and(|s| s.cursor.base >= version)
        {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            let status = follower.peer(&leader);
            bail!("not caught up after {limit:?}: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until `a` and `b` each see the other as a connected, authenticated member.
pub async fn wait_connected(a: &Node, b: &Node, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    let up = |node: &Node, other: &Node| {
        node.peer(&other.peer_id())
            .is_some_and(|s| s.state == PeerState::Connected)
    };
    while !(up(a, b) && up(b, a)) {
        if start.elapsed() > limit {
            bail!(
                "not connected after {limit:?}: {:?} / {:?}",
                a.peer(&b.peer_id()),
                b.peer(&a.peer_id())
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(start.elapsed())
}

/// A temporary directory under `dir` (default: the system temp dir).
pub fn scratch_dir(dir: Option<&Path>) -> Result<tempfile::TempDir> {
    Ok(match dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    })
}

/// Waits until `follower` holds `leader`'s log, then until `leader` has pulled
/// back what `follower` applied (the two are in sync both ways); returns when
/// the first part was done.
pub async fn wait_in_sync(
    (follower, follower_store): (&Node, &Store),
    (leader, leader_store): (&Node, &Store),
    limit: Duration,
) -> Result<Instant> {
    wait_caught_up(follower, leader.peer_id(), leader_store.db_version(), limit).await?;
    let caught_up = Instant::now();
    wait_caught_up(
        leader,
        follower.peer_id(),
        follower_store.db_version(),
        limit,
    )
    .await?;
    Ok(caught_up)
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time (user + system, every thread) this process has used so far, in
/// seconds (Linux `/proc/self/stat`, in 1/100 s ticks), if known.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 14th and 15th fields, the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    // USER_HZ, fixed at 100 in Linux's user-space ABI.
    Some((user + system) / 100.0)
}
