//! The arguments of the commands that run a node or talk to one: `serve`,
//! `demo`, `invite`, `join`, `sync`, `diff`, `pull`/`push`, `share`,
//! `local-only` and `blob`, as clap derive structs, with the parsers of the
//! values they take (blob hashes, names, loopback addresses; peer ids, which
//! may be prefixes, are `peer_ref.rs`'s to resolve).
//!
//! Like `args.rs`, which re-exports everything here, it owns the shape of
//! the interface and its `--help`, and runs nothing.

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use shoal::{BlobHash, CollectionName, Multiaddr, RecordId};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's data directories in this directory (replaced if present)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Where to serve the laptop's dashboard (loopback; port 0 picks a free one)
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0",
          value_parser = parse_loopback)]
    pub http: SocketAddr,
    /// Across NAT instead: a relay and two machines behind home routers, in
    /// network namespaces (needs root), meet through the relay, punch a
    /// hole and converge
    #[arg(long)]
    pub wan: bool,
}

/// A node name: 1 to 64 printable characters.
fn parse_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("a name is 1 to 64 printable characters".into());
    }
    Ok(name.to_string())
}

/// A WebSocket listen address: a TCP one ending in `/ws`.
fn parse_ws_listen(text: &str) -> Result<Multiaddr, String> {
    let address: Multiaddr = text.parse().map_err(|e| format!("not a multiaddr: {e}"))?;
    // `/ip4|ip6/IP/tcp/PORT/ws`: three protocols, the last two tcp and ws.
    let names: Vec<String> = address
        .to_string()
        .split('/')
        .skip(1)
        .map(str::to_string)
        .collect();
    match names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ip4" | "ip6", _, "tcp", _, "ws"] => Ok(address),
        _ => Err(format!(
            "{address} is not a WebSocket listen address (/ip4/IP/tcp/PORT/ws); for wss:// \
             put a TLS reverse proxy in front (docs/web.md)"
        )),
    }
}

/// A loopback socket address (the demo never listens beyond this machine).
fn parse_loopback(text: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = text
        .parse()
        .map_err(|e| format!("not an IP:PORT address: {e}"))?;
    if !address.ip().is_loopback() {
        return Err(format!("{address} is not a loopback address"));
    }
    Ok(address)
}

/// Arguments of `serve`.
/// How `shoal serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object per event and line.
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen here (repeatable; replaces the defaults /ip4/0.0.0.0/tcp/4040 and /ip4/0.0.0.0/udp/4040/quic-v1)
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Also listen for peers over WebSocket here — what a browser tab
    /// (shoal-web) dials; same membership proof and sync protocol as TCP
    /// (repeatable; an address ending in /ws, e.g. /ip4/127.0.0.1/tcp/4041/ws)
    /// [default: /ip4/127.0.0.1/tcp/0/ws, loopback at a free port, shown by
    /// `shoal status` and GET /api/node; put a TLS reverse proxy in front for
    /// wss://, see docs/web.md]
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_ws_listen)]
    pub ws_listen: Vec<Multiaddr>,
    /// Do not listen for WebSocket peers at all
    #[arg(long, conflicts_with = "ws_listen")]
    pub no_ws: bool,
    /// Dial this peer and keep redialing it (repeatable; DIR/peers.txt adds more)
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<Multiaddr>,
    /// Hold a reservation on this relay (repeatable; `/…/p2p/<relay id>`,
    /// see `shoal relay`): peers then reach this node through it at
    /// `<relay>/p2p-circuit/p2p/<this node>`, and hole punching upgrades to
    /// a direct connection where the NATs allow (DIR/relays.txt adds more)
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<Multiaddr>,
    /// Do not discover peers on the local network by mDNS
    #[arg(long)]
    pub no_mdns: bool,
    /// Address of the HTTP API and the dashboard (port 0 picks a free one)
    /// [default: 127.0.0.1 at the port the first `serve` picked, kept in
    /// DIR/http-port, so the dashboard's URL stays the same]
    #[arg(long, value_name = "IP:PORT")]
    pub http: Option<SocketAddr>,
    /// Allow a non-loopback --http address
    #[arg(long)]
    pub http_public: bool,
    /// Serve GET /metrics without the API token (only on a loopback --http)
    #[arg(long)]
    pub metrics_public: bool,
    /// Serve the browser build of Shoal (scripts/wasm-build.sh's pkg
    /// directory: shoal_web.js, shoal_web_bg.wasm) from this directory at
    /// /apps/pkg/, for the example apps under /apps/ (default: not served;
    /// the apps say so)
    #[arg(long, value_name = "DIR")]
    pub web_pkg: Option<PathBuf>,
    /// How the daemon logs to stderr: text, or json (one object per line);
    /// RUST_LOG sets the level (default: info)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What the dashboard calls this node (default: node- and the end of its peer id)
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,
    /// File holding the group secret: a passphrase, or 64 hex digits (a raw key)
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// Ask each peer for its changes at least this often, even without a push
    /// (a safety net: live pushes carry changes at once, including writes by
    /// other processes such as `shoal put`, noticed within a second)
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub resync: u64,
    /// Re-hash every held blob this often in the background (a bad one is
    /// moved to shoal.blobs/corrupt/ and fetched again); 0 turns it off
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub blob_scrub_interval: u64,
    /// Most MiB per second the background blob scrub reads
    #[arg(long, value_name = "MIB", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub blob_scrub_rate: u64,
    /// Drop, this often (and at start), the records that aged out of this
    /// node's partial filters that mention `now` (e.g. `date >= now-30d`);
    /// 0 turns it off (see docs/partial.md)
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub partial_sweep_interval: u64,
    /// Most established connections in all (peers and strangers alike: anyone
    /// can connect before proving membership)
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most incoming connections still in their transport handshake at once
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending: u32,
    /// Most established connections with any one peer
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_per_peer: u32,
    /// How far ahead of this machine's clock a peer's clock may be (e.g. 90s,
    /// 5m, 2h): changes further ahead are held back — shown by `shoal peers`
    /// as "clock ahead by …" — and merge once this clock catches up, while
    /// the rest keep syncing
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub max_clock_drift: std::time::Duration,
    /// The largest blob fetched through a relay, in KiB; a larger one is
    /// fetched only over a direct connection and waits for one (0: blobs
    /// never go through a relay)
    #[arg(long, value_name = "KIB", default_value_t = 4096)]
    pub relay_blob_max: u64,
    /// Testing: start hole punching this long after a relayed connection
    /// opens (e.g. 5s), so sync is seen starting over the relay
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration,
          hide = true)]
    pub punch_delay: std::time::Duration,
    /// Collect tombstones this often (e.g. 1h; 0 = never): those every known
    /// peer has acknowledged, and those older than --gc-horizon (`shoal gc`
    /// runs one pass by hand)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub gc_interval: std::time::Duration,
    /// Collect a tombstone a known peer has not acknowledged once its delete
    /// is older than this (e.g. 30d): a peer away longer gets the delete
    /// back only when its stale copy reaches a node that collected it
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    pub gc_horizon: std::time::Duration,
}

/// A duration as a number and a unit: `500ms`, `90s`, `5m`, `2h`, `30d` (a
/// bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 5m, 2h)"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m, h or d)"
            ));
        }
    };
    ms.map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Arguments of `invite`.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// Address for the invited node to dial [default: the running daemon's]
    #[arg(long, value_name = "MULTIADDR")]
    pub address: Option<Multiaddr>,
    /// A relay the invited node reaches this one through (repeatable;
    /// `/…/p2p/<relay id>`) [default: the running daemon's relays, else
    /// DIR/relays.txt]
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<Multiaddr>,
}

/// Arguments of `join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The invite code (`shoal2:KEY.SALT.CHECKSUM@MULTIADDR`, or `shoal3:…`
    /// with the relays after the address)
    pub code: String,
    /// Replace a different group key this node already has
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Give up after this many seconds (exit code 4)
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: u64,
}

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The peer: its id, or any start of it only one known peer's id has
    /// (`shoal peers` lists them; its shortened form works too)
    pub peer: String,
    /// Collection to report record by record; without it, counts per collection
    pub collection: Option<CollectionName>,
    /// At most this many records in the table
    #[arg(long, value_name = "N", default_value_t = 50, requires = "collection",
          value_parser = clap::value_parser!(u64).range(1..=crate::api::MAX_DIFF_PAGE as u64))]
    pub limit: u64,
    /// Only ids after this one (the previous page's last id)
    #[arg(long, value_name = "ID", requires = "collection")]
    pub after: Option<RecordId>,
}

/// Arguments of `pull` and `push`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The peer: its id, or any start of it only one known peer's id has
    /// (`shoal peers` lists them; its shortened form works too)
    pub peer: String,
    /// Collection name
    pub collection: CollectionName,
    /// Record id
    pub id: RecordId,
}

/// Arguments of `share`: a rule to set, or `--list`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true)
    .args(["send", "receive", "both", "none", "list"])))]
pub struct ShareArgs {
    /// The peer: its id, or any start of it only one known peer's id has
    /// (`shoal peers` lists them), or `*` for every peer without a rule of its own
    #[arg(required_unless_present = "list")]
    pub peer: Option<String>,
    /// Collection name
    #[arg(required_unless_present = "list")]
    pub collection: Option<CollectionName>,
    /// Send COLLECTION to PEER; do not accept its changes
    #[arg(long)]
    pub send: bool,
    /// Accept PEER's changes to COLLECTION; do not send ours
    #[arg(long)]
    pub receive: bool,
    /// Both ways (the default)
    #[arg(long)]
    pub both: bool,
    /// Neither way
    #[arg(long)]
    pub none: bool,
    /// Print the rules set on this node (and the local-only collections)
    #[arg(long, conflicts_with_all = ["peer", "collection"])]
    pub list: bool,
}

/// `shoal local-only`.
#[derive(Debug, Args)]
pub struct LocalOnlyArgs {
    /// Collection name
    pub collection: CollectionName,
    /// Lift the mark: the collection follows the sharing rules again
    #[arg(long)]
    pub off: bool,
}

/// Largest `--limit` accepted by `blob ls`.
pub const MAX_BLOB_LIMIT: u64 = 1000;

/// `shoal blob`: one of its subcommands.
#[derive(Debug, Args)]
pub struct BlobArgs {
    /// What to do with blobs.
    #[command(subcommand)]
    pub command: BlobCommand,
}

/// The subcommands of `shoal blob`.
#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Store a file as a blob and print its hash
    #[command(after_help = "\
Streams FILE into the blob store (memory stays bounded whatever its size) and
prints the blob's hash; with --json, the reference object to put in a record
field: {\"$blob\": HASH, \"size\": N} plus \"type\" when --type is given. Adding
the same bytes again stores nothing new. Shows a progress bar on a terminal for
files over 8 MiB. Exit code 2 if FILE cannot be read or is over the store's
blob size cap.

Examples:
  shoal blob add photo.png
  shoal --json blob add photo.png --type image/png")]
    Add(BlobAddArgs),

    /// Copy a blob held here to a file (or stdout)
    #[command(after_help = "\
Writes the blob to OUT.tmp-partial and renames it to OUT when complete, so a
failed copy leaves no half-written OUT; `-` writes to stdout. Shows a progress
bar on a terminal for blobs over 8 MiB. Exit code 1 if the blob is not here
(if a live record references it, the running daemon fetches it from peers that
have it), 2 if HASH is not 64 lowercase hex digits. With blobs on demand
(`blob on-demand on`) and a running daemon, a referenced blob not here is
fetched through the daemon first (exit code 4 if no connected peer sends it).

Examples:
  shoal blob get 5f0c… photo.png
  shoal blob get 5f0c… - | file -")]
    Get(BlobGetArgs),

    /// List the blobs held here, or those records reference but are missing
    #[command(after_help = "\
Blobs come in hash order as a table: HASH SIZE (bytes) REFS (live records
referencing it) ADDED; with --missing, the blobs live records reference that
are not here: HASH SIZE COLLECTIONS. When there is a next page, a line on
stderr gives the --after to pass for it. --json prints {\"blobs\": [...],
\"next\": HASH or null}, as the HTTP API's GET /api/blobs does.

Examples:
  shoal blob ls
  shoal blob ls --missing --limit 10
  shoal --json blob ls | jq '.blobs[] | select(.references == 0) | .hash'")]
    Ls(BlobLsArgs),

    /// Remove blobs no live record has referenced for a while
    #[command(after_help = "\
Each run marks the blobs no live record references (and unmarks those
referenced again); blobs marked at least --grace-secs ago are removed from the
index and from disk. With --grace-secs 0 an unreferenced blob goes at once.
Prints the removed hashes, one per line, and their count on stderr.

Examples:
  shoal blob gc
  shoal blob gc --grace-secs 0")]
    Gc(BlobGcArgs),

    /// Re-hash every blob held here; set bad ones aside to be fetched again
    #[command(after_help = "\
Reads every blob held here and checks that its bytes hash to its name (and
its outline matches). A bad one is moved to DIR/shoal.blobs/corrupt/HASH-MS
(kept for inspection, never served) and no longer counted as held: `blob ls
--missing` lists it, the integrity report shows its records as assets-missing,
and a running daemon fetches it again from peers. Prints each bad blob, then a
summary on stderr (--json: one object with checked, bytes and bad). Exit code
3 if any blob was bad. The daemon also does this slowly in the background
(`serve --blob-scrub-interval`).

Examples:
  shoal blob verify
  shoal --json blob verify")]
    Verify,

    /// Show or set blobs on demand: fetch a blob only when it is opened
    #[command(
        name = "on-demand",
        after_help = "\
With blobs on demand on, a running daemon no longer fetches the blobs records
reference as the records arrive: records arrive whole, their blobs stay on
the peers that hold them (`blob ls --missing` lists them) until one is opened
through the HTTP API (GET /api/blobs/HASH, which fetches it from a connected
peer that may send it, checks every byte against the hash, and answers 503
blob-fetching if it takes over 20 s, or 502 blob-unavailable if no connected
peer sent it) or the library (Store::open_blob_from). With a budget, once
blobs fetched on demand exceed it the least recently opened ones that another
peer holds are evicted (fetched again when next opened); blobs added on this
device are never evicted. The setting is kept in the database. Without
arguments, shows the setting and what is held.

Examples:
  shoal blob on-demand
  shoal blob on-demand on --budget-mib 512
  shoal blob on-demand --no-budget
  shoal --json blob on-demand off"
    )]
    OnDemand(crate::blob_demand::OnDemandArgs),
}

/// Arguments of `blob add`.
#[derive(Debug, Args)]
pub struct BlobAddArgs {
    /// The file to store
    pub file: PathBuf,
    /// Media type to put in the reference ("type"), e.g. image/png
    #[arg(long = "type", value_name = "MIME")]
    pub mime: Option<String>,
}

/// Arguments of `blob get`.
#[derive(Debug, Args)]
pub struct BlobGetArgs {
    /// The blob's hash (64 lowercase hex digits)
    #[arg(value_parser = parse_blob_hash)]
    pub hash: BlobHash,
    /// Where to write it; `-` for stdout
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
}

/// Arguments of `blob ls`.
#[derive(Debug, Args)]
pub struct BlobLsArgs {
    /// List the blobs live records reference that are not here
    #[arg(long)]
    pub missing: bool,
    /// Only hashes after this one (the previous page's last hash)
    #[arg(long, value_name = "HASH", value_parser = parse_blob_hash)]
    pub after: Option<BlobHash>,
    /// At most this many blobs
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BLOB_LIMIT))]
    pub limit: u64,
}

/// Arguments of `blob gc`.
#[derive(Debug, Args)]
pub struct BlobGcArgs {
    /// Keep unreferenced blobs until they have been unreferenced this long
    #[arg(long, value_name = "N", default_value_t = 3600)]
    pub grace_secs: u64,
}

/// A blob hash (64 lowercase hex digits).
fn parse_blob_hash(text: &str) -> Result<BlobHash, String> {
    text.parse::<BlobHash>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }
}
