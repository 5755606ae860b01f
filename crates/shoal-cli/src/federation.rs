//! Federation commands: `shoal diff` (the integrity report against a peer),
//! `shoal pull` / `shoal push` (one record's full state, either way) and
//! `shoal share` (the sharing rules).
//!
//! This module owns how their results read — the report's counts and table,
//! the transfer reasons — and which exit code each result gets (through
//! `exit.rs`). `diff`, `pull` and `push` go through the running daemon's
//! control API, which owns the libp2p node: this module must not start a node
//! of its own or talk to peers directly. Collection names and record ids
//! are checked by clap before anything is contacted; a peer is a whole id or
//! any unique start of one (`peer_ref.rs` resolves it among the known peers). `share` writes the
//! rules straight into the store file (the daemon reads them on every use),
//! so it works with or without a daemon.

use crate::api::{ApiError, CollectionDiff, DiffCounts, DiffReply};
use crate::args::{DiffArgs, LocalOnlyArgs, ShareArgs, TransferArgs};
use crate::daemon_client::Daemon;
use crate::datadir::DataDir;
use crate::exit;
use crate::output::{Output, hint, pad};
use crate::peer_ref::{self, PeerRef};
use crate::peers::short_peer;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use shoal::{ANY_PEER, ShareMode, Store};

/// `shoal diff PEER [COLLECTION]`.
pub fn diff(data: &DataDir, args: DiffArgs, out: &mut Output) -> Result<()> {
    peer_ref::check(&args.peer)?;
    let daemon = Daemon::connect(data)?;
    let peer = peer_ref::lookup(&args.peer, data, Some(&daemon), None)?.to_string();
    let collection = args.collection.as_ref().map(|c| c.as_str());
    let after = args.after.as_ref().map(|id| id.as_str());
    let what = match collection {
        Some(c) => format!("cannot compare {c} with {peer}"),
        None => format!("cannot compare with {peer}"),
    };
    let raw = daemon
        .diff_raw(&peer, collection, args.limit, after)?
        .map_err(|e| refusal(&what, &e))?;
    if out.is_json() {
        out.json(&raw)?;
        return Ok(());
    }
    let reply: DiffReply = daemon.typed(raw)?;
    match collection {
        Some(_) => {
            let Some(report) = reply.collections.first() else {
                return Err(exit::network("the daemon sent no report"));
            };
            if let Some(error) = &report.error {
                return Err(refusal(&what, error));
            }
            print_collection(out, &peer, report)?;
            if let Some(next) = &report.next {
                hint(next_page_hint(&peer, &args, next));
            }
        }
        None => print_collections(out, &reply)?,
    }
    Ok(())
}

/// The report for one collection: a summary, the counts, the table.
fn print_collection(out: &mut Output, peer: &str, report: &CollectionDiff) -> Result<()> {
    let counts = report.counts.unwrap_or_default();
    let short = short_peer(peer);
    let cost = format!(
        "{} round trip{}, {} bytes",
        report.round_trips,
        if report.round_trips == 1 { "" } else { "s" },
        report.bytes
    );
    // A filtered collection was compared only over what the filter admits.
    let scope = match report.filtered {
        Some(f) => format!(
            " over the {} record{} its partial filter covers",
            f.local.max(f.peer),
            if f.local.max(f.peer) == 1 { "" } else { "s" }
        ),
        None => String::new(),
    };
    if counts.total == 0 {
        out.line(format_args!(
            "{} is in sync with {short}{scope} ({cost})",
            report.collection
        ))?;
        return Ok(());
    }
    out.line(format_args!(
        "{}: {} record{} differ{} from {short}{scope} ({cost})",
        report.collection,
        counts.total,
        if counts.total == 1 { "" } else { "s" },
        if counts.total == 1 { "s" } else { "" }
    ))?;
    for (status, n) in statuses(&counts) {
        out.line(format_args!("  {}  {n}", pad(status, 14)))?;
    }
    if report.records.is_empty() {
        return Ok(());
    }
    let width = report
        .records
        .iter()
        .map(|row| row.id.len())
        .max()
        .unwrap_or(0)
        .max(2);
    out.line("")?;
    out.line(format_args!("{}  STATUS", pad("ID", width)))?;
    for row in &report.records {
        out.line(format_args!("{}  {}", pad(&row.id, width), row.status))?;
    }
    if report.unlisted > 0 {
        hint(format_args!(
            "{} more differences were found but not listed (over the report's cap); \
             pull or push the listed ones and run `shoal diff` again",
            report.unlisted
        ));
    }
    Ok(())
}

/// One line of counts per collection.
fn print_collections(out: &mut Output, reply: &DiffReply) -> Result<()> {
    if reply.collections.is_empty() {
        hint("no collections here yet; nothing to compare");
        return Ok(());
    }
    let width = reply
        .collections
        .iter()
        .map(|c| c.collection.len())
        .max()
        .unwrap_or(0);
    for c in &reply.collections {
        let detail = match (&c.counts, &c.error) {
            (Some(counts), _) => statuses(counts)
                .iter()
                .map(|(status, n)| format!("{n} {status}"))
                .collect::<Vec<_>>()
                .join("  "),
            (None, Some(error)) => format!("not compared: {}", error.message),
            (None, None) => "not compared".to_string(),
        };
        out.line(format_args!("{}  {detail}", pad(&c.collection, width)))?;
    }
    Ok(())
}

fn statuses(counts: &DiffCounts) -> [(&'static str, u64); 4] {
    [
        ("local-only", counts.local_only),
        ("peer-only", counts.peer_only),
        ("diverged", counts.diverged),
        ("assets-missing", counts.assets_missing),
    ]
}

/// The command line that fetches the page after `next`.
fn next_page_hint(peer: &str, args: &DiffArgs, next: &str) -> String {
    let mut command = format!("more records: shoal diff {peer}");
    if let Some(collection) = &args.collection {
        command.push_str(&format!(" {collection}"));
    }
    if args.limit != 50 {
        command.push_str(&format!(" --limit {}", args.limit));
    }
    command.push_str(&format!(" --after {next}"));
    command
}

/// A daemon's refusal of a federation request, with the exit code its code
/// calls for.
fn refusal(what: &str, error: &ApiError) -> anyhow::Error {
    exit::federation(&error.code, format!("{what}: {}", error.message))
}

/// Which way a record goes.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    /// From the peer to here.
    Pull,
    /// From here to the peer.
    Push,
}

/// `shoal pull` / `shoal push`.
pub fn transfer(data: &DataDir, way: Way, args: TransferArgs, out: &mut Output) -> Result<()> {
    peer_ref::check(&args.peer)?;
    let daemon = Daemon::connect(data)?;
    let peer = peer_ref::lookup(&args.peer, data, Some(&daemon), None)?.to_string();
    let push = matches!(way, Way::Push);
    let reply = daemon.transfer(push, &peer, args.collection.as_str(), args.id.as_str())?;
    let what = match way {
        Way::Pull => format!("pull {}/{} from {peer}", args.collection, args.id),
        Way::Push => format!("push {}/{} to {peer}", args.collection, args.id),
    };
    if out.is_json() {
        out.json(&serde_json::to_value(&reply)?)?;
    } else if reply.ok {
        out.line(format_args!("{what}: {}", reply.reason))?;
    }
    if reply.ok {
        return Ok(());
    }
    // The JSON document (if any) goes out before the error line.
    out.flush()?;
    Err(exit::federation(
        &reply.result,
        format!("{what}: {}", reply.reason),
    ))
}

/// `shoal share PEER COLLECTION --send|--receive|--both|--none` and
/// `shoal share --list`.
pub fn share(data: &DataDir, store: &Store, args: ShareArgs, out: &mut Output) -> Result<()> {
    if args.list {
        return list_rules(store, out);
    }
    let mode = match (args.send, args.receive, args.both, args.none) {
        (true, _, _, _) => ShareMode::Send,
        (_, true, _, _) => ShareMode::Receive,
        (_, _, true, _) => ShareMode::Both,
        _ => ShareMode::None,
    };
    let (Some(peer), Some(collection)) = (args.peer, args.collection) else {
        return Err(exit::usage("share needs PEER and COLLECTION (or --list)"));
    };
    // The daemon's peer table completes a prefix too, when one runs.
    let daemon = match peer_ref::whole(&peer) {
        Some(_) => None,
        None => Daemon::find(data).ok().flatten(),
    };
    let peer = match peer_ref::lookup_rule(&peer, data, daemon.as_ref(), Some(store))? {
        PeerRef::One(peer) => peer.to_string(),
        PeerRef::Every => ANY_PEER.to_string(),
    };
    store
        .share(&peer, collection.as_str(), mode)
        .with_context(|| format!("cannot set the rule for {collection} with {peer}"))?;
    let local_only = store
        .sharing()
        .context("cannot read the sharing rules")?
        .is_local_only(&collection);
    if out.is_json() {
        out.json(&json!({
            "peer": peer,
            "collection": collection.as_str(),
            "mode": mode.as_str(),
            "local_only": local_only,
        }))?;
        return Ok(());
    }
    let meaning = match mode {
        ShareMode::None => "nothing flows either way",
        ShareMode::Send => "this node sends its changes and does not accept the peer's",
        ShareMode::Receive => "this node accepts the peer's changes and does not send its own",
        ShareMode::Both => "changes flow both ways",
    };
    let with = if peer == ANY_PEER {
        "every peer without a rule of its own".to_string()
    } else {
        peer.clone()
    };
    out.line(format_args!("{collection} with {with}: {mode} ({meaning})"))?;
    if local_only {
        hint(format_args!(
            "{collection} is local-only on this node: nothing flows until that mark is lifted"
        ));
    }
    Ok(())
}

/// The stored rules: one line per (peer, collection), then the local-only
/// collections.
/// `shoal local-only COLLECTION [--off]`.
pub fn local_only(store: &Store, args: LocalOnlyArgs, out: &mut Output) -> Result<()> {
    let marked = !args.off;
    store
        .set_local_only(args.collection.as_str(), marked)
        .with_context(|| format!("cannot mark {}", args.collection))?;
    if out.is_json() {
        out.json(&json!({"collection": args.collection.as_str(), "local_only": marked}))?;
    } else if marked {
        out.line(format_args!(
            "{}: local-only (never leaves this node, takes nothing from peers)",
            args.collection
        ))?;
    } else {
        out.line(format_args!(
            "{}: follows the sharing rules again",
            args.collection
        ))?;
    }
    Ok(())
}

fn list_rules(store: &Store, out: &mut Output) -> Result<()> {
    let rules = store.sharing().context("cannot read the sharing rules")?;
    let explicit: Vec<_> = rules.explicit().collect();
    let local_only: Vec<&str> = rules.local_only().map(|c| c.as_str()).collect();
    if out.is_json() {
        let modes: Vec<Value> = explicit
            .iter()
            .map(|(peer, collection, mode)| {
                json!({"peer": peer, "collection": collection.as_str(), "mode": mode.as_str()})
            })
            .collect();
        // GET /api/sharing's shape.
        out.json(&json!({
            "default": ShareMode::Both.as_str(),
            "local_only": local_only,
            "rules": modes,
        }))?;
        return Ok(());
    }
    if explicit.is_empty() && local_only.is_empty() {
        hint("no sharing rules set: every collection flows both ways with every peer");
        return Ok(());
    }
    if !explicit.is_empty() {
        let peer_width = explicit.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let name_width = explicit
            .iter()
            .map(|r| r.1.as_str().len())
            .max()
            .unwrap_or(0)
            .max("COLLECTION".len());
        out.line(format_args!(
            "{}  {}  MODE",
            pad("PEER", peer_width),
            pad("COLLECTION", name_width)
        ))?;
        for (peer, collection, mode) in &explicit {
            out.line(format_args!(
                "{}  {}  {mode}",
                pad(peer, peer_width),
                pad(collection.as_str(), name_width)
            ))?;
        }
    }
    if !local_only.is_empty() {
        out.line(format_args!("local-only: {}", local_only.join(", ")))?;
    }
    Ok(())
}
