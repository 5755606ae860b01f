//! Peer ids as people type them: the whole id, any prefix of it that only
//! one known peer's id starts with, or the shortened form `shoal peers`
//! prints (`12D3…4kx6nXTN`: a start and an end); and `*` (every peer) where a
//! sharing rule is meant.
//!
//! This module owns that resolution, for every command that takes a peer id
//! (`diff`, `pull`, `push`, `share`): the known peers are the running
//! daemon's peer table (when one answers), the addresses in `peers.txt` and
//! the peers sharing rules name. An unknown or ambiguous prefix is a usage
//! error (exit code 2) that lists the candidates. It must not dial anyone or
//! change anything.

use crate::daemon_client::Daemon;
use crate::datadir::DataDir;
use crate::exit::usage;
use crate::peer_file;
use anyhow::Result;
use shoal::{ANY_PEER, PeerId, Store};
use std::collections::BTreeSet;

/// What a peer argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRef {
    /// One peer.
    One(PeerId),
    /// Every peer without a rule of its own (`*`; sharing rules only).
    Every,
}

/// The peer ids this node knows: its daemon's peer table (if a daemon
/// answers), `peers.txt`, and the sharing rules (of `store`, else of the data
/// directory's database if it opens).
pub fn known_peers(
    data: &DataDir,
    daemon: Option<&Daemon>,
    store: Option<&Store>,
) -> BTreeSet<String> {
    let opened;
    let store = match store {
        Some(store) => Some(store),
        None => {
            opened = data.open().ok();
            opened.as_ref()
        }
    };
    let mut known = BTreeSet::new();
    if let Some(table) = daemon.and_then(|d| d.peers().ok()) {
        known.extend(table.peers.into_iter().map(|p| p.peer));
    }
    if let Ok(addresses) = peer_file::read(data) {
        known.extend(addresses.iter().filter_map(peer_of).map(|p| p.to_string()));
    }
    if let Some(rules) = store.and_then(|s| s.sharing().ok()) {
        known.extend(
            rules
                .explicit()
                .map(|(peer, _, _)| peer.to_string())
                .filter(|peer| peer != ANY_PEER),
        );
    }
    known
}

/// The peer id a multiaddr ends with (`/p2p/<id>`), if any.
pub fn peer_of(address: &shoal::Multiaddr) -> Option<PeerId> {
    let text = address.to_string();
    let (_, id) = text.rsplit_once("/p2p/")?;
    id.parse().ok()
}

/// The peer `given` names among `known`: a whole peer id (known or not), a
/// prefix only one known id starts with, or `START…END` as `shoal peers`
/// shortens ids (`...` works for `…`).
pub fn resolve(given: &str, known: &BTreeSet<String>) -> Result<PeerId> {
    let given = given.trim();
    if let Some(peer) = whole(given) {
        return Ok(peer);
    }
    check(given)?;
    let (start, end) = match given.split_once('…').or_else(|| given.split_once("...")) {
        Some((start, end)) => (start, end),
        None => (given, ""),
    };
    let matches: Vec<&String> = known
        .iter()
        .filter(|id| id.starts_with(start) && id.ends_with(end) && id.len() >= given.len())
        .collect();
    match matches.as_slice() {
        [one] => one.parse().map_err(|e| {
            usage(format!(
                "`{one}`, the known peer `{given}` names, is not a peer id: {e}"
            ))
        }),
        [] if known.is_empty() => Err(usage(format!(
            "`{given}` is not a peer id, and this node knows no peers to complete it from \
             (peer ids look like 12D3KooW…; `shoal peers` lists them while `shoal serve` runs)"
        ))),
        [] => Err(usage(format!(
            "`{given}` is not a peer id nor the start of a known one; known peers: {}",
            list(known.iter())
        ))),
        many => Err(usage(format!(
            "`{given}` is ambiguous: it matches {} known peer ids: {}; give more characters",
            many.len(),
            list(many.iter().copied())
        ))),
    }
}

/// The shortest whole peer id (a SHA-256 one, `Qm…`; Ed25519 ids are 52
/// characters). A shorter start of an id can parse as a peer id too (a
/// truncated identity multihash), so it is taken as a prefix.
const MIN_WHOLE: usize = 46;

/// `given` as a whole peer id, if it is one.
pub fn whole(given: &str) -> Option<PeerId> {
    let given = given.trim();
    if given.len() < MIN_WHOLE {
        return None;
    }
    given.parse().ok()
}

/// Refuses what cannot be (the start of) a peer id — empty, or with a
/// character outside base58 — before anything is contacted.
pub fn check(given: &str) -> Result<()> {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let given = given.trim();
    if given == ANY_PEER {
        return Ok(());
    }
    let elided = given.replacen('…', "", 1).replacen("...", "", 1);
    if elided.is_empty() || !elided.chars().all(|c| BASE58.contains(c)) {
        return Err(usage(format!(
            "`{given}` is not a peer id nor the start of one (peer ids look like \
             12D3KooW…, in base58; `shoal peers` lists them)"
        )));
    }
    Ok(())
}

/// The peer `given` names: a whole id at once, else [`resolve`]d among the
/// [`known_peers`] (asked for only then).
pub fn lookup(
    given: &str,
    data: &DataDir,
    daemon: Option<&Daemon>,
    store: Option<&Store>,
) -> Result<PeerId> {
    match whole(given) {
        Some(peer) => Ok(peer),
        None => resolve(given, &known_peers(data, daemon, store)),
    }
}

/// [`lookup`] for a sharing rule: `*` is [`PeerRef::Every`].
pub fn lookup_rule(
    given: &str,
    data: &DataDir,
    daemon: Option<&Daemon>,
    store: Option<&Store>,
) -> Result<PeerRef> {
    match whole(given) {
        Some(peer) => Ok(PeerRef::One(peer)),
        None if given.trim() == ANY_PEER => Ok(PeerRef::Every),
        None => resolve_rule(given, &known_peers(data, daemon, store)),
    }
}

/// Like [`resolve`], but `*` is [`PeerRef::Every`].
pub fn resolve_rule(given: &str, known: &BTreeSet<String>) -> Result<PeerRef> {
    if given.trim() == ANY_PEER {
        return Ok(PeerRef::Every);
    }
    resolve(given, known).map(PeerRef::One)
}

/// Ids for an error message: all of them, or the first ten and a count.
fn list<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    const SHOWN: usize = 10;
    let ids: Vec<&String> = ids.collect();
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(|id| id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    /// Three real peer ids, and the shortest prefix of each no other starts with.
    fn known() -> (Vec<String>, BTreeSet<String>) {
        let ids: Vec<String> = (0..3).map(|_| PeerId::random().to_string()).collect();
        let set = ids.iter().cloned().collect();
        (ids, set)
    }

    fn unique_prefix(id: &str, known: &BTreeSet<String>) -> String {
        (1..=id.len())
            .map(|n| &id[..n])
            .find(|p| known.iter().filter(|k| k.starts_with(p)).count() == 1)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_unique_prefix_names_its_peer() {
        let (ids, known) = known();
        for id in &ids {
            let prefix = unique_prefix(id, &known);
            assert!(prefix.len() < id.len());
            assert_eq!(&resolve(&prefix, &known).unwrap().to_string(), id);
            assert_eq!(&resolve(id, &known).unwrap().to_string(), id);
        }
    }

    #[test]
    fn a_start_that_parses_as_a_peer_id_is_still_a_prefix() {
        let (ids, known) = known();
        let real = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".to_string();
        let mut known = known;
        known.insert(real.clone());
        // A dozen characters of an Ed25519 id may decode as a (short) peer id.
        assert_eq!(resolve(&real[..12], &known).unwrap().to_string(), real);
        assert_eq!(whole(&ids[0]).unwrap().to_string(), ids[0]);
    }

    #[test]
    fn the_short_form_of_shoal_peers_names_its_peer() {
        let (ids, known) = known();
        let short = crate::peers::short_peer(&ids[1]);
        assert!(short.contains('…'), "{short}");
        assert_eq!(resolve(&short, &known).unwrap().to_string(), ids[1]);
        let ascii = short.replace('…', "...");
        assert_eq!(resolve(&ascii, &known).unwrap().to_string(), ids[1]);
    }

    #[test]
    fn a_whole_id_needs_not_be_known() {
        let id = PeerId::random();
        assert_eq!(resolve(&id.to_string(), &BTreeSet::new()).unwrap(), id);
    }

    #[test]
    fn ambiguous_and_unknown_prefixes_are_usage_errors_naming_candidates() {
        let (ids, known) = known();
        // The start all three share (as every Ed25519 id starts `12D3KooW`).
        let shared: String = ids[0]
            .chars()
            .enumerate()
            .take_while(|(i, c)| ids.iter().all(|id| id.chars().nth(*i) == Some(*c)))
            .map(|(_, c)| c)
            .collect();
        assert!(!shared.is_empty(), "{ids:?}");
        let ambiguous = resolve(&shared, &known).unwrap_err();
        assert_eq!(exit::code(&ambiguous), exit::USAGE);
        let text = ambiguous.to_string();
        assert!(text.contains("ambiguous"), "{text}");
        assert!(ids.iter().all(|id| text.contains(id)), "{text}");

        assert!(ids.iter().all(|id| !id.starts_with("zzz")));
        let unknown = resolve("zzz", &known).unwrap_err();
        assert_eq!(exit::code(&unknown), exit::USAGE);
        let text = unknown.to_string();
        assert!(
            text.contains("not a peer id nor the start of a known one"),
            "{text}"
        );
        assert!(ids.iter().all(|id| text.contains(id)), "{text}");

        let nothing = resolve("12D3", &BTreeSet::new()).unwrap_err();
        assert_eq!(exit::code(&nothing), exit::USAGE);
        assert_eq!(exit::code(&resolve(" ", &known).unwrap_err()), exit::USAGE);
        // Not base58: refused before any lookup.
        for bad in ["not-a-peer", "12D3KooW0", "…", "12D3 Koo"] {
            assert_eq!(exit::code(&check(bad).unwrap_err()), exit::USAGE, "{bad}");
        }
        check("12D3…4kx6nXTN").unwrap();
    }

    #[test]
    fn a_star_is_every_peer_only_for_rules() {
        let (ids, known) = known();
        assert_eq!(resolve_rule("*", &known).unwrap(), PeerRef::Every);
        let prefix = unique_prefix(&ids[2], &known);
        assert_eq!(
            resolve_rule(&prefix, &known).unwrap(),
            PeerRef::One(ids[2].parse().unwrap())
        );
        assert_eq!(exit::code(&resolve("*", &known).unwrap_err()), exit::USAGE);
    }
}
