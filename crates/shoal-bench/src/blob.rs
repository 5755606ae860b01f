//! The `blob` scenario: one blob of N MiB from node A to node B over
//! loopback TCP (Noise, Yamux, sealed requests, every piece verified against
//! the BLAKE3 outline, written to B's partial file and placed with fsync),
//! against the same bytes copied over a plain loopback TCP socket in the same
//! run — from A's blob file to a file on B's side, fsynced, like for like —
//! and memory to memory over the bare transport (`transport.rs`), the
//! ceiling of anything it carries, and, for scale, over a plain socket.
//!
//! Each round uses a fresh B that already holds a record referencing the
//! blob (so the fetch starts at B's first scan, every 5 ms); the clock runs
//! from both nodes seeing each other as members until B holds the verified
//! blob. Rounds alternate the order of the sides; the process's CPU time is
//! read around each; medians are reported.

use crate::peers::{cpu_seconds, loopback_config, scratch_dir, start_node_with, wait_connected};
use crate::report::{median, print_json_last, round_to, verdict};
use crate::transport;
use anyhow::{Context, Result, ensure};
use serde::Serialize;
use serde_json::json;
use shoal::{BlobHash, Store};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Target: blob throughput at least half of the plain socket's.
const TARGET_RATIO: f64 = 0.5;
const MIB: u64 = 1024 * 1024;
/// Longest wait for one transfer.
const LIMIT: Duration = Duration::from_secs(600);

/// Options of `shoal-bench blob`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the blob in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    mb: u64,
    /// Rounds (each side once per round); medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Directory for the temporary databases and blobs (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Carry the blob over QUIC instead of TCP + Noise + Yamux.
    #[arg(long)]
    quic: bool,
}

#[derive(Serialize)]
struct BlobResult {
    scenario: &'static str,
    mb: u64,
    mb_per_s: f64,
    raw_mb_per_s: f64,
    ratio: f64,
    raw_memory_mb_per_s: f64,
    transport_mb_per_s: f64,
    transport_ratio: f64,
    cpu_s: Option<f64>,
    raw_cpu_s: Option<f64>,
    transport_cpu_s: Option<f64>,
    cores: usize,
    transport_bound_ratio: Option<f64>,
    rounds: u64,
    transport: &'static str,
}

/// Deterministic pseudo-random content, streamed (never whole in memory).
struct Content {
    left: u64,
    x: u64,
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize / 8 * 8;
        let n = if n == 0 {
            self.left.min(buf.len() as u64) as usize
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            chunk.copy_from_slice(&self.x.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let temp = scratch_dir(args.dir.as_deref())?;
    let size = args.mb * MIB;
    println!(
        "blob: one {} MiB blob A -> B over loopback TCP + Noise + Yamux, verified per 1 MiB piece, vs the same bytes over a plain loopback socket (file to file, fsynced); {} rounds",
        args.mb, args.rounds
    );
    let a = Store::open(temp.path().join("a.db"))?;
    let added = Instant::now();
    let blob = a.add_blob(Content {
        left: size,
        x: 0x9E37_79B9_7F4A_7C15,
    })?;
    a.collection("media")?
        .put("m1", json!({"title": "bench", "file": blob.to_json()}))?;
    println!(
        "A added the blob in {:.2}s (hashing and outlining on the way; not measured)",
        added.elapsed().as_secs_f64()
    );
    let source = a
        .open_blob(&blob.hash)?
        .context("the blob A just added is not there")?;
    drop(source);
    let a_file = temp
        .path()
        .join("a.blobs")
        .join(&blob.hash.to_hex()[..2])
        .join(blob.hash.to_hex());

    let runtime = tokio::runtime::Runtime::new()?;
    let mut samples: [Samples; 4] = Default::default();
    for round in 0..args.rounds {
        // Alternated, so that neither side always runs first.
        let order = if round % 2 == 0 {
            [Side::Shoal, Side::Raw, Side::Transport, Side::Memory]
        } else {
            [Side::Raw, Side::Shoal, Side::Memory, Side::Transport]
        };
        for side in order {
            let cpu_before = cpu_seconds();
            let seconds = match side {
                Side::Shoal => runtime.block_on(shoal_round(
                    &a,
                    &blob.hash,
                    &blob.to_json(),
                    temp.path(),
                    round,
                    args.quic,
                ))?,
                Side::Raw => {
                    let out = temp.path().join(format!("raw-{round}.bin"));
                    let seconds = runtime.block_on(raw_round(&a_file, &out))?;
                    std::fs::remove_file(&out).ok();
                    seconds
                }
                Side::Memory => runtime.block_on(memory_round(size))?,
                Side::Transport => runtime.block_on(transport::memory_round(size))?,
            };
            let cpu = cpu_seconds()
                .zip(cpu_before)
                .map(|(after, before)| after - before);
            let mb_per_s = args.mb as f64 / seconds;
            let cpu_text = cpu.map_or(String::new(), |c| format!(", {c:.2} s of CPU"));
            println!(
                "round {}: {:>32} {mb_per_s:8.1} MiB/s{cpu_text}",
                round + 1,
                side.name()
            );
            samples[side as usize].push(mb_per_s, cpu);
        }
    }
    let [shoal, raw, memory, transport] = samples.map(|s| s.medians());
    let ratio = shoal.rate / raw.rate;
    println!(
        "median: shoal {:.1} MiB/s, plain socket file to file {:.1} MiB/s, ratio {ratio:.3}; plain socket memory to memory {:.1} MiB/s (ratio {:.3})",
        shoal.rate,
        raw.rate,
        memory.rate,
        shoal.rate / memory.rate
    );
    println!(
        "the transport alone (TCP + Noise + Yamux, one libp2p stream, memory to memory, no disk, no verification): {:.1} MiB/s, ratio {:.3} to the plain socket file to file",
        transport.rate,
        transport.rate / raw.rate
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Both ends share this machine's cores: even using all of them all the
    // time, the transport alone cannot beat its CPU time spread over them.
    let bound = transport
        .cpu
        .map(|cpu| args.mb as f64 / (cpu / cores as f64) / raw.rate);
    if let (Some(shoal_cpu), Some(raw_cpu), Some(transport_cpu), Some(bound)) =
        (shoal.cpu, raw.cpu, transport.cpu, bound)
    {
        println!(
            "CPU per transfer: shoal {shoal_cpu:.2} s, transport alone {transport_cpu:.2} s, plain socket file to file {raw_cpu:.2} s; on {cores} cores kept fully busy the transport alone could reach ratio {bound:.3} at most"
        );
    }
    println!(
        "target ratio >= {TARGET_RATIO} (vs file to file): {}",
        verdict(ratio >= TARGET_RATIO)
    );
    print_json_last(&BlobResult {
        scenario: "blob",
        mb: args.mb,
        mb_per_s: round_to(shoal.rate, 1),
        raw_mb_per_s: round_to(raw.rate, 1),
        ratio: round_to(ratio, 3),
        raw_memory_mb_per_s: round_to(memory.rate, 1),
        transport_mb_per_s: round_to(transport.rate, 1),
        transport_ratio: round_to(transport.rate / raw.rate, 3),
        cpu_s: shoal.cpu.map(|c| round_to(c, 2)),
        raw_cpu_s: raw.cpu.map(|c| round_to(c, 2)),
        transport_cpu_s: transport.cpu.map(|c| round_to(c, 2)),
        cores,
        transport_bound_ratio: bound.map(|b| round_to(b, 3)),
        rounds: args.rounds,
        transport: if args.quic { "quic" } else { "tcp" },
    })
}

/// What one round measures.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// The blob from node A to node B.
    Shoal = 0,
    /// The blob's file over a plain socket into a file.
    Raw = 1,
    /// Memory to memory over a plain socket.
    Memory = 2,
    /// Memory to memory over a bare libp2p stream.
    Transport = 3,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Shoal => "shoal",
            Side::Raw => "plain socket file to file",
            Side::Memory => "plain socket memory to memory",
            Side::Transport => "libp2p stream memory to memory",
        }
    }
}

/// One side's rates (MiB/s) and CPU seconds, a pair per round.
#[derive(Debug, Default)]
struct Samples {
    rates: Vec<f64>,
    cpu: Vec<f64>,
}

/// Medians of one side's [`Samples`].
struct Medians {
    rate: f64,
    cpu: Option<f64>,
}

impl Samples {
    fn push(&mut self, rate: f64, cpu: Option<f64>) {
        self.rates.push(rate);
        self.cpu.extend(cpu);
    }

    fn medians(self) -> Medians {
        Medians {
            rate: median(&self.rates),
            cpu: (!self.cpu.is_empty()).then(|| median(&self.cpu)),
        }
    }
}

/// One transfer to a fresh B; seconds from membership to the verified blob.
async fn shoal_round(
    a: &Store,
    hash: &BlobHash,
    reference: &serde_json::Value,
    dir: &Path,
    round: u64,
    quic: bool,
) -> Result<f64> {
    let b = Store::open(dir.join(format!("b{round}.db")))?;
    b.collection("media")?
        .put("m1", json!({"title": "bench", "file": reference}))?;
    let manual = |peers| {
        let mut config = loopback_config(peers);
        if quic {
            config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("multiaddr")];
        }
        config.auto_sync = false;
        config.anti_entropy = None;
        config.blobs.scan_interval = Duration::from_millis(5);
        config
    };
    let (node_a, address) = start_node_with(a, manual(vec![])).await?;
    let (node_b, _) = start_node_with(&b, manual(vec![address])).await?;
    wait_connected(&node_a, &node_b, Duration::from_secs(30)).await?;
    let start = Instant::now();
    while !b.has_blob(hash)? {
        ensure!(
            start.elapsed() < LIMIT,
            "B did not get the blob: {:?}",
            node_b.blob_transfers()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let (_, totals) = node_b.blob_transfers();
    ensure!(totals.bad_pieces == 0, "bad pieces in a clean transfer");
    node_b.shutdown().await;
    node_a.shutdown().await;
    drop(b);
    for suffix in ["db", "db-wal", "db-shm"] {
        std::fs::remove_file(dir.join(format!("b{round}.{suffix}"))).ok();
    }
    std::fs::remove_dir_all(dir.join(format!("b{round}.blobs"))).ok();
    Ok(seconds)
}

/// The same file over a plain loopback socket into a file, fsynced.
async fn raw_round(from: &Path, to: &Path) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let to = to.to_path_buf();
    let receiver = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut out = std::fs::File::create(&to)?;
        let mut buffer = vec![0u8; MIB as usize];
        loop {
            let n = socket.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buffer[..n])?;
        }
        out.sync_all()?;
        Ok::<_, anyhow::Error>(())
    });
    let start = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(address).await?;
    socket.set_nodelay(true)?;
    let mut file = std::fs::File::open(from)?;
    let mut buffer = vec![0u8; MIB as usize];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        socket.write_all(&buffer[..n]).await?;
    }
    socket.shutdown().await?;
    receiver.await??;
    Ok(start.elapsed().as_secs_f64())
}

/// `size` bytes memory to memory over a plain loopback socket.
async fn memory_round(size: u64) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let receiver = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut buffer = vec![0u8; MIB as usize];
        let mut total = 0u64;
        loop {
            let n = socket.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok::<_, anyhow::Error>(total)
    });
    let start = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(address).await?;
    let buffer = vec![7u8; MIB as usize];
    let mut sent = 0;
    while sent < size {
        let n = (size - sent).min(MIB) as usize;
        socket.write_all(&buffer[..n]).await?;
        sent += n as u64;
    }
    socket.shutdown().await?;
    ensure!(receiver.await?? == size, "the plain socket lost bytes");
    Ok(start.elapsed().as_secs_f64())
}
