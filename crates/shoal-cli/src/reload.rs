//! What a running daemon re-reads on SIGHUP (and applies once at start): the
//! config file's sharing rules (`[[share]]`, `local-only`) and its peers
//! (the file's `peer` key and `DATA/peers.txt`).
//!
//! A reload changes only what changed: rules are written to the store,
//! where running sessions read them at their next batch (no session is
//! dropped), and a rule or local-only mark the file no longer has is removed
//! from the store (the pair goes back to the default, even if `shoal share`
//! had set it too); a new peer address is dialled; a peer whose addresses are all
//! gone from the files is forgotten (`Node::forget_peer`). Every file is
//! read and checked before anything is applied, so a bad edit changes
//! nothing and is logged. Other keys (listen addresses, limits) take effect
//! at the next start, which the log says. It owns no config syntax
//! (`config.rs` does) and never writes the files.

use crate::config::{self, ConfigFile, Rules};
use crate::datadir::DataDir;
use crate::peer_file;
use crate::peer_ref::peer_of;
use anyhow::{Context, Result};
use shoal::{Multiaddr, Node, PeerId, Store};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// What the daemon was started with, to tell what a reload changes.
#[derive(Debug, Clone)]
pub struct Reloader {
    data: DataDir,
    /// `--config PATH`, if given (else `DATA/shoal.toml` is looked for).
    flag: Option<PathBuf>,
    /// `--peer` flags given on the command line (they replace the file's key).
    cli_peers: Vec<Multiaddr>,
    /// The peers dialled so far from the command line and the files.
    peers: BTreeSet<Multiaddr>,
    /// The file's `serve` flags at start (or the last reload).
    flags: Vec<std::ffi::OsString>,
    /// The file's rules as last applied.
    rules: Rules,
}

/// What one reload read: the rules and the peer addresses.
#[derive(Debug)]
struct Read {
    rules: Rules,
    peers: BTreeSet<Multiaddr>,
    flags: Vec<std::ffi::OsString>,
}

impl Reloader {
    /// Reads the files and applies their rules to `store` (before the node
    /// starts, so no session ever runs under the old ones). `peers` are the
    /// `serve` arguments' (from the command line, or the file's key).
    pub fn start(
        data: &DataDir,
        flag: Option<PathBuf>,
        peers: &[Multiaddr],
        store: &Store,
    ) -> Result<Self> {
        let from_file = match config::locate(flag.as_deref(), data)? {
            Some(file) => file.peers()?,
            None => Vec::new(),
        };
        let cli_peers = peers
            .iter()
            .filter(|p| !from_file.contains(p))
            .cloned()
            .collect();
        let mut reloader = Self {
            data: data.clone(),
            flag,
            cli_peers,
            peers: BTreeSet::new(),
            flags: Vec::new(),
            rules: Rules::default(),
        };
        let read = reloader.read()?;
        apply_rules(store, &read.rules)?;
        reloader.peers = read.peers;
        reloader.flags = read.flags;
        reloader.rules = read.rules;
        Ok(reloader)
    }

    fn read(&self) -> Result<Read> {
        let file = config::locate(self.flag.as_deref(), &self.data)?;
        let rules = match &file {
            Some(file) => file.rules()?,
            None => Rules::default(),
        };
        let mut peers: BTreeSet<Multiaddr> = self.cli_peers.iter().cloned().collect();
        if self.cli_peers.is_empty()
            && let Some(file) = &file
        {
            peers.extend(file.peers()?);
        }
        peers.extend(peer_file::read(&self.data)?);
        let flags = match &file {
            Some(file) => file.serve_flags(|key| key == "peer")?,
            None => Vec::new(),
        };
        Ok(Read {
            rules,
            peers,
            flags,
        })
    }

    /// Re-reads the files and applies what changed (see the module doc).
    pub async fn reload(&mut self, node: &Node, store: &Store) -> Result<()> {
        let read = self.read()?;
        let lifted = lift_dropped_rules(store, &self.rules, &read.rules)?;
        apply_rules(store, &read.rules)?;
        let added: Vec<Multiaddr> = read.peers.difference(&self.peers).cloned().collect();
        for address in &added {
            node.dial(address.clone())
                .await
                .with_context(|| format!("cannot dial {address}"))?;
        }
        let kept: BTreeSet<PeerId> = read.peers.iter().filter_map(peer_of).collect();
        let gone: BTreeSet<PeerId> = self
            .peers
            .difference(&read.peers)
            .filter_map(peer_of)
            .filter(|peer| !kept.contains(peer))
            .collect();
        for peer in &gone {
            node.forget_peer(*peer)
                .await
                .with_context(|| format!("cannot forget {peer}"))?;
        }
        if read.flags != self.flags {
            tracing::warn!(
                "the config file's other settings changed; they take effect when the daemon \
                 restarts"
            );
        }
        tracing::info!(
            rules = read.rules.share.len(),
            local_only = read.rules.local_only.len(),
            lifted,
            dialled = added.len(),
            forgotten = gone.len(),
            "reloaded sharing rules and peers"
        );
        self.peers = read.peers;
        self.flags = read.flags;
        self.rules = read.rules;
        Ok(())
    }
}

/// Removes from the store the rules and local-only marks that `before` had
/// and `now` no longer has; returns how many.
fn lift_dropped_rules(store: &Store, before: &Rules, now: &Rules) -> Result<usize> {
    let kept: BTreeSet<(&str, &str)> = now
        .share
        .iter()
        .map(|r| (r.peer.as_str(), r.collection.as_str()))
        .collect();
    let mut lifted = 0;
    for rule in &before.share {
        if !kept.contains(&(rule.peer.as_str(), rule.collection.as_str())) {
            store
                .unshare(&rule.peer, rule.collection.as_str())
                .with_context(|| format!("cannot remove the rule for {}", rule.collection))?;
            lifted += 1;
        }
    }
    for collection in &before.local_only {
        if !now.local_only.contains(collection) {
            store
                .set_local_only(collection.as_str(), false)
                .with_context(|| format!("cannot lift local-only from {collection}"))?;
            lifted += 1;
        }
    }
    Ok(lifted)
}

/// Writes the file's rules to the store.
fn apply_rules(store: &Store, rules: &Rules) -> Result<()> {
    for rule in &rules.share {
        store
            .share(&rule.peer, rule.collection.as_str(), rule.mode.into())
            .with_context(|| format!("cannot set the rule for {}", rule.collection))?;
    }
    for collection in &rules.local_only {
        store
            .set_local_only(collection.as_str(), true)
            .with_context(|| format!("cannot mark {collection} local-only"))?;
    }
    Ok(())
}

/// SIGHUP, watched from now on (its default action, ending the process,
/// is replaced at once). Needs the tokio runtime.
#[cfg(unix)]
pub fn watch_sighup() -> Result<SigHup> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(SigHup(
        signal(SignalKind::hangup()).context("cannot watch SIGHUP")?,
    ))
}

/// Without Unix signals there is nothing to watch.
#[cfg(not(unix))]
pub fn watch_sighup() -> Result<SigHup> {
    Ok(SigHup(()))
}

/// A watched SIGHUP.
#[cfg(unix)]
pub struct SigHup(tokio::signal::unix::Signal);

/// A watched SIGHUP (none without Unix signals).
#[cfg(not(unix))]
pub struct SigHup(());

/// Reloads on every SIGHUP until the process ends; a failed reload is
/// logged and changes nothing it had not applied.
pub async fn on_sighup(hup: SigHup, mut reloader: Reloader, node: Arc<Node>, store: Store) {
    #[cfg(unix)]
    {
        let mut hup = hup.0;
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP, reloading");
            if let Err(e) = reloader.reload(&node, &store).await {
                tracing::error!("reload failed: {e:#}");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (hup, &mut reloader, node, store);
    }
}

impl ConfigFile {
    /// The file's `peer` key, parsed.
    pub fn peers(&self) -> Result<Vec<Multiaddr>> {
        self.peer_texts()?
            .into_iter()
            .map(|text| {
                text.parse().map_err(|e| {
                    crate::exit::usage(format!(
                        "{}: peer {text:?} is not a multiaddr ({e})",
                        self.path().display()
                    ))
                })
            })
            .collect()
    }
}
