//! Blob commands: `blob add`, `blob get`, `blob ls`, `blob gc` and
//! `blob verify` (`blob on-demand` is `blob_demand.rs`'s).
//!
//! Files go in and out as streams (never held whole in memory), with a
//! progress bar on a terminal for large ones; hashing, the size cap and
//! garbage collection are the library's; `blob ls --missing` adds, when a
//! daemon runs, where its fetch of each blob stands (from its API).

use crate::api::BlobTransferInfo;
use crate::args::{BlobAddArgs, BlobArgs, BlobCommand, BlobGcArgs, BlobGetArgs, BlobLsArgs};
use crate::daemon_client::Daemon;
use crate::datadir::DataDir;
use crate::exit::{not_found, usage};
use crate::output::{Output, hint, pad};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use shoal::{BlobHash, BlobRef, Scrubbed, Store};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read};
use std::path::{Path, PathBuf};

/// Files larger than this get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// `shoal blob ...`.
pub fn run(store: &Store, data: &DataDir, args: BlobArgs, out: &mut Output) -> Result<()> {
    match args.command {
        BlobCommand::Add(a) => add(store, a, out),
        BlobCommand::Get(a) => get(store, data, a, out),
        BlobCommand::Ls(a) => ls(store, data, a, out),
        BlobCommand::Gc(a) => gc(store, a, out),
        BlobCommand::Verify => verify(store, out),
        BlobCommand::OnDemand(a) => crate::blob_demand::run(store, a, out),
    }
}

/// `shoal blob add`.
fn add(store: &Store, args: BlobAddArgs, out: &mut Output) -> Result<()> {
    let name = args.file.display().to_string();
    if let Some(mime) = &args.mime {
        // Checked before storing anything, with the library's own rule.
        let probe = json!({"$blob": BlobHash::of(b"").to_hex(), "size": 0, "type": mime});
        BlobRef::from_json(&probe).map_err(|e| usage(format!("invalid --type: {e}")))?;
    }
    let file = File::open(&args.file).map_err(|e| usage(format!("cannot read {name}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| usage(format!("cannot read {name}: {e}")))?;
    if meta.is_dir() {
        return Err(usage(format!("cannot read {name}: it is a directory")));
    }
    let mut reader = Progress::new(file, meta.len(), "adding");
    let added = store.add_blob(&mut reader);
    reader.finish();
    let mut blob = match (added, reader.error.take()) {
        (Ok(blob), _) => blob,
        // The input failed, not the store: the user's file is the problem.
        (Err(_), Some(e)) => return Err(usage(format!("cannot read {name}: {e}"))),
        (Err(e), None) => return Err(e).with_context(|| format!("cannot add {name}")),
    };
    blob.mime = args.mime;
    if out.is_json() {
        out.json(&blob.to_json())?;
    } else {
        out.line(blob.hash)?;
    }
    Ok(())
}

/// `shoal blob get`.
fn get(store: &Store, data: &DataDir, args: BlobGetArgs, out: &mut Output) -> Result<()> {
    let hash = args.hash;
    let mut opened = store
        .open_blob(&hash)
        .with_context(|| format!("cannot read blob {hash}"))?;
    let referenced = opened.is_none() && is_referenced_missing(store, &hash)?;
    let on_demand = store
        .blobs_on_demand()
        .context("cannot read the blobs-on-demand setting")?
        .enabled;
    let daemon = match referenced && on_demand {
        true => Daemon::find(data)?,
        false => None,
    };
    if let Some(daemon) = &daemon {
        // Blobs on demand: the daemon fetches it into the shared directory.
        daemon.fetch_blob(&hash.to_hex())?;
        opened = store
            .open_blob(&hash)
            .with_context(|| format!("cannot read blob {hash}"))?;
    }
    let Some(blob) = opened else {
        let why = match (referenced, on_demand) {
            (false, _) => "",
            (true, true) => " (blobs on demand: start `shoal serve` to fetch it from peers)",
            (true, false) => " (referenced; the daemon fetches it from peers that have it)",
        };
        return Err(not_found(format!("blob {hash} is not here{why}")));
    };
    let size = blob
        .metadata()
        .with_context(|| format!("cannot read blob {hash}"))?
        .len();
    let mut reader = Progress::new(blob, size, "copying");
    if args.out.as_os_str() == "-" {
        let copied = io::copy(&mut reader, out.writer());
        reader.finish();
        copied.with_context(|| format!("cannot copy blob {hash} to stdout"))?;
        return Ok(());
    }
    let target = args.out;
    let partial = partial_path(&target);
    let copied = copy_to(&mut reader, &partial).and_then(|n| {
        std::fs::rename(&partial, &target)?;
        Ok(n)
    });
    reader.finish();
    let written = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let e = match reader.error.take() {
                Some(read) => anyhow::Error::new(read).context(format!("cannot read blob {hash}")),
                None => usage(format!("cannot write {}: {e}", target.display())),
            };
            return Err(e);
        }
    };
    if out.is_json() {
        out.json(&json!({"hash": hash.to_hex(), "size": written, "path": target}))?;
    } else {
        out.line(format_args!(
            "wrote {written} bytes to {}",
            target.display()
        ))?;
    }
    Ok(())
}

/// Copies everything `reader` yields into a new file at `path`, synced.
fn copy_to(reader: &mut impl Read, path: &Path) -> io::Result<u64> {
    let mut file = BufWriter::new(File::create(path)?);
    let n = io::copy(reader, &mut file)?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(n)
}

/// `OUT.tmp-partial`, beside OUT.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = OsString::from(target.as_os_str());
    name.push(".tmp-partial");
    PathBuf::from(name)
}

/// Whether some live record references `hash` (and it is not here).
fn is_referenced_missing(store: &Store, hash: &BlobHash) -> Result<bool> {
    // The hash just before `hash`, so the page starts at `hash` itself.
    let mut before = *hash.as_bytes();
    let after = match before.iter().rposition(|&b| b != 0) {
        None => None,
        Some(i) => {
            before[i] -= 1;
            before[i + 1..].fill(0xff);
            Some(BlobHash::from_bytes(before))
        }
    };
    let page = store
        .missing_blobs(after.as_ref(), 1)
        .context("cannot list the missing blobs")?;
    Ok(page.first().is_some_and(|m| m.hash == *hash))
}

/// `shoal blob ls`.
fn ls(store: &Store, data: &DataDir, args: BlobLsArgs, out: &mut Output) -> Result<()> {
    let limit = args.limit as usize;
    let next = if args.missing {
        let mut page = store
            .missing_blobs(args.after.as_ref(), limit + 1)
            .context("cannot list the missing blobs")?;
        let more = page.len() > limit;
        page.truncate(limit);
        let next = page.last().filter(|_| more).map(|m| m.hash);
        let transfers = daemon_transfers(data, &args);
        let transfer = |hash: &BlobHash| transfers.as_ref().and_then(|t| t.get(&hash.to_hex()));
        // Blobs on demand: a blob not tried is remote until it is opened.
        let on_demand = store.blobs_on_demand().is_ok_and(|s| s.enabled);
        let untried = match on_demand {
            true => "remote: fetched when opened",
            false => "not tried yet",
        };
        if out.is_json() {
            let rows: Vec<Value> = page
                .iter()
                .map(|m| {
                    let collections: Vec<&str> = m.collections.iter().map(|c| c.as_str()).collect();
                    let mut row =
                        json!({"hash": m.hash.to_hex(), "size": m.size, "collections": collections});
                    if let Some(t) = transfer(&m.hash) {
                        row["transfer"] = serde_json::to_value(t)?;
                    }
                    if on_demand {
                        row["on_demand"] = json!(true);
                    }
                    Ok(row)
                })
                .collect::<Result<_>>()?;
            out.json(&json!({"blobs": rows, "next": next.map(|h| h.to_hex())}))?;
        } else if page.is_empty() {
            hint("no missing blobs: every blob live records reference is here");
        } else {
            let rows: Vec<[String; 4]> = page
                .iter()
                .map(|m| {
                    let collections: Vec<&str> = m.collections.iter().map(|c| c.as_str()).collect();
                    let state = transfer(&m.hash).map_or_else(|| untried.into(), transfer_text);
                    [
                        m.hash.to_hex(),
                        m.size.to_string(),
                        collections.join(","),
                        state,
                    ]
                })
                .collect();
            if transfers.is_some() {
                table(out, ["HASH", "SIZE", "COLLECTIONS", "FETCH"], &rows)?;
            } else {
                // No daemon: nothing is being fetched; no FETCH column.
                let rows: Vec<[String; 3]> =
                    rows.into_iter().map(|[h, s, c, _]| [h, s, c]).collect();
                table(out, ["HASH", "SIZE", "COLLECTIONS"], &rows)?;
            }
        }
        next
    } else {
        let mut page = store
            .list_blobs(args.after.as_ref(), limit + 1)
            .context("cannot list the blobs")?;
        let more = page.len() > limit;
        page.truncate(limit);
        let next = page.last().filter(|_| more).map(|b| b.hash);
        if out.is_json() {
            let rows: Vec<Value> = page
                .iter()
                .map(|b| {
                    json!({
                        "hash": b.hash.to_hex(),
                        "size": b.size,
                        "references": b.references,
                        "added_ms": b.added_ms,
                    })
                })
                .collect();
            out.json(&json!({"blobs": rows, "next": next.map(|h| h.to_hex())}))?;
        } else if page.is_empty() {
            hint("no blobs here; add one with `shoal blob add FILE`");
        } else {
            let now = crate::api::now_ms();
            let rows: Vec<[String; 4]> = page
                .iter()
                .map(|b| {
                    [
                        b.hash.to_hex(),
                        b.size.to_string(),
                        b.references.to_string(),
                        crate::peers::ago(now.saturating_sub(b.added_ms)),
                    ]
                })
                .collect();
            table(out, ["HASH", "SIZE", "REFS", "ADDED"], &rows)?;
        }
        next
    };
    if let Some(next) = next {
        let mut command = String::from("more blobs: shoal blob ls");
        if args.missing {
            command.push_str(" --missing");
        }
        if args.limit != 50 {
            command.push_str(&format!(" --limit {}", args.limit));
        }
        command.push_str(&format!(" --after {next}"));
        hint(command);
    }
    Ok(())
}

/// The running daemon's fetch state of the missing blobs on the page
/// `args` asks for, by hash; `None` when no daemon answers.
fn daemon_transfers(
    data: &DataDir,
    args: &BlobLsArgs,
) -> Option<std::collections::HashMap<String, BlobTransferInfo>> {
    let daemon = Daemon::find(data).ok().flatten()?;
    let after = args.after.as_ref().map(|h| h.to_hex());
    // The API's pages are smaller than the CLI's: the rest show no state.
    let limit = args.limit.min(500) as u32;
    let reply = daemon.missing_blobs(after.as_deref(), limit).ok()?;
    Some(
        reply
            .blobs
            .into_iter()
            .filter_map(|row| Some((row.hash, row.transfer?)))
            .collect(),
    )
}

/// A fetch state for people: "fetching from 12D3…", "waiting for a direct
/// connection (over the relay cap of 64 KiB)", "failed: …".
fn transfer_text(t: &BlobTransferInfo) -> String {
    match t.state.as_str() {
        "fetching" => format!(
            "fetching from {}",
            crate::peers::short_peer(t.peer.as_deref().unwrap_or("?"))
        ),
        "awaiting-direct" => format!(
            "waiting for a direct connection (over the relay cap of {} KiB)",
            t.relay_max.unwrap_or(0) / 1024
        ),
        "failed" => format!("failed: {}", t.error.as_deref().unwrap_or("unknown")),
        other => other.to_string(),
    }
}

/// Prints a header and rows, columns padded to their widest cell.
fn table<const N: usize>(out: &mut Output, header: [&str; N], rows: &[[String; N]]) -> Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| pad(c, w)).collect();
        padded.join("  ").trim_end().to_string()
    };
    out.line(line(header))?;
    for row in rows {
        out.line(line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

/// `shoal blob gc`.
fn gc(store: &Store, args: BlobGcArgs, out: &mut Output) -> Result<()> {
    let removed = store
        .collect_garbage(args.grace_secs.saturating_mul(1000))
        .context("cannot collect garbage")?;
    if out.is_json() {
        let hashes: Vec<String> = removed.iter().map(BlobHash::to_hex).collect();
        out.json(&json!({"removed": hashes, "count": removed.len()}))?;
    } else {
        for hash in &removed {
            out.line(hash)?;
        }
        let s = if removed.len() == 1 { "" } else { "s" };
        hint(format_args!("removed {} blob{s}", removed.len()));
    }
    Ok(())
}

/// Blobs listed per page by `blob verify`.
const VERIFY_PAGE: usize = 500;

/// `shoal blob verify`: re-hashes every held blob, sets bad ones aside.
fn verify(store: &Store, out: &mut Output) -> Result<()> {
    let mut held = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_blobs(after.as_ref(), VERIFY_PAGE)
            .context("cannot list the blobs")?;
        let Some(last) = page.last() else { break };
        after = Some(last.hash);
        held.extend(page.into_iter().map(|b| (b.hash, b.size)));
    }
    let total: u64 = held.iter().map(|(_, size)| size).sum();
    let bar = (total > PROGRESS_MIN_BYTES && io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "verifying [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let mut bad = Vec::new();
    for (hash, _) in &held {
        let mut advance = |n: u64| {
            if let Some(bar) = &bar {
                bar.inc(n);
            }
        };
        let verdict = store
            .verify_blob(hash, &mut advance)
            .with_context(|| format!("cannot verify blob {hash}"))?;
        if let Scrubbed::SetAside { detail, moved_to } = verdict {
            if !out.is_json() {
                let place = moved_to.as_ref().map_or_else(
                    || "nothing to move".to_string(),
                    |p| format!("moved to {}", p.display()),
                );
                out.line(format_args!("{hash}  bad: {detail}; {place}"))?;
            }
            bad.push(json!({"hash": hash.to_hex(), "detail": detail, "moved_to": moved_to}));
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if out.is_json() {
        out.json(&json!({"checked": held.len(), "bytes": total, "bad": bad}))?;
    } else {
        let s = if held.len() == 1 { "" } else { "s" };
        hint(format_args!(
            "checked {} blob{s} ({total} bytes): {} bad",
            held.len(),
            bad.len()
        ));
    }
    if !bad.is_empty() {
        return Err(anyhow::anyhow!(
            "{} bad blob(s) set aside; they are listed by `shoal blob ls --missing` and a running daemon fetches them again",
            bad.len()
        ));
    }
    Ok(())
}

/// A reader that advances a progress bar (large inputs on a terminal only)
/// and keeps the first read error, so a failing input can be told apart from
/// a failing store.
struct Progress<R> {
    inner: R,
    bar: Option<ProgressBar>,
    error: Option<io::Error>,
}

impl<R: Read> Progress<R> {
    fn new(inner: R, len: u64, verb: &str) -> Self {
        let bar = (len > PROGRESS_MIN_BYTES && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(len);
            let template =
                format!("{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}");
            let style = ProgressStyle::with_template(&template)
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            inner,
            bar,
            error: None,
        }
    }

    /// Removes the bar from the terminal.
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if let Some(bar) = &self.bar {
                    bar.inc(n as u64);
                }
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}
