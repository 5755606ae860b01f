//! `DATA/peers.txt`: the peers `shoal serve` dials, one multiaddr per line
//! (blank lines and `#` comments allowed), written by `shoal join` and by the
//! daemon's `POST /api/peers`; and `DATA/relays.txt`, the relays it holds
//! reservations on besides `--relay`, in the same form, written by `shoal
//! join` from an invite that carries relays.
//!
//! This module owns reading the file (every bad line is an error naming the
//! line), adding an address to it without duplicates, and removing a peer's
//! addresses (`DELETE /api/peers/{peer}`), also as the HTTP API's
//! [`PeerBook`].

use crate::datadir::DataDir;
use crate::exit::usage;
use crate::http::PeerBook;
use crate::secrets::{open_private_append, write_private};
use anyhow::{Context, Result};
use shoal::{Multiaddr, PeerId};
use std::io::Write;

/// The file's name in the data directory.
pub const PEERS_FILE: &str = "peers.txt";

/// The relays file's name in the data directory.
pub const RELAYS_FILE: &str = "relays.txt";

/// Every address in the peers file (none if it does not exist).
pub fn read(data: &DataDir) -> Result<Vec<Multiaddr>> {
    read_list(data, PEERS_FILE)
}

/// Every relay in the relays file (none if it does not exist).
pub fn read_relays(data: &DataDir) -> Result<Vec<Multiaddr>> {
    read_list(data, RELAYS_FILE)
}

/// Appends a relay to the relays file unless it lists it; whether it was added.
pub fn add_relay(data: &DataDir, relay: &Multiaddr) -> Result<bool> {
    add_to(data, RELAYS_FILE, relay)
}

/// Every address in the file `name` (none if it does not exist).
fn read_list(data: &DataDir, name: &str) -> Result<Vec<Multiaddr>> {
    let path = data.file(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut addresses = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let address: Multiaddr = line.parse().map_err(|e| {
            usage(format!(
                "{} line {}: `{line}` is not a multiaddr ({e})",
                path.display(),
                number + 1
            ))
        })?;
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    Ok(addresses)
}

/// Appends `address` unless the file already lists it; returns whether it was added.
pub fn add(data: &DataDir, address: &Multiaddr) -> Result<bool> {
    add_to(data, PEERS_FILE, address)
}

/// Appends `address` to the file `name` unless it lists it already.
fn add_to(data: &DataDir, name: &str, address: &Multiaddr) -> Result<bool> {
    if read_list(data, name)?.contains(address) {
        return Ok(false);
    }
    let path = data.file(name);
    let mut file =
        open_private_append(&path).with_context(|| format!("cannot write {}", path.display()))?;
    // A file whose last line has no line break must not swallow the new one.
    let needs_break = std::fs::read(&path)
        .map(|bytes| bytes.last().is_some_and(|b| *b != b'\n'))
        .unwrap_or(false);
    let line = format!("{}{address}\n", if needs_break { "\n" } else { "" });
    file.write_all(line.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// Removes every line whose address names `peer` (ends in `/p2p/<peer>`),
/// keeping the others, comments included; returns how many were removed.
/// The file is rewritten whole (mode 0600), or left alone if none matched.
pub fn remove(data: &DataDir, peer: &PeerId) -> Result<usize> {
    let path = data.file(PEERS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let suffix = format!("/p2p/{peer}");
    let names = |line: &str| {
        line.trim()
            .parse::<Multiaddr>()
            .is_ok_and(|a| a.to_string().ends_with(&suffix))
    };
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.lines() {
        if names(line) {
            removed += 1;
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if removed > 0 {
        write_private(&path, kept.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(removed)
}

/// `peers.txt` of a data directory as the HTTP API's [`PeerBook`].
pub struct PeerFile(pub DataDir);

impl PeerBook for PeerFile {
    fn add(&self, address: &Multiaddr) -> Result<bool, String> {
        add(&self.0, address).map_err(|e| crate::exit::message(&e))
    }

    fn remove(&self, peer: &PeerId) -> Result<usize, String> {
        remove(&self.0, peer).map_err(|e| crate::exit::message(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_once_and_reads_back_skipping_comments() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::resolve(Some(dir.path().as_os_str().to_owned())).unwrap();
        std::fs::write(
            data.file(PEERS_FILE),
            "# my peers\n\n/ip4/10.0.0.1/tcp/4040",
        )
        .unwrap();
        let a: Multiaddr = "/ip4/127.0.0.1/tcp/4041".parse().unwrap();
        assert!(add(&data, &a).unwrap());
        assert!(!add(&data, &a).unwrap());
        let all = read(&data).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], a);
    }

    #[test]
    fn removes_only_the_peers_lines() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::resolve(Some(dir.path().as_os_str().to_owned())).unwrap();
        let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        let text = format!(
            "# mine\n/ip4/10.0.0.1/tcp/4040/p2p/{peer}\n/ip4/10.0.0.2/tcp/4040\n\
             /ip4/10.0.0.3/udp/4040/quic-v1/p2p/{peer}\n"
        );
        std::fs::write(data.file(PEERS_FILE), text).unwrap();
        let id: PeerId = peer.parse().unwrap();
        assert_eq!(remove(&data, &id).unwrap(), 2);
        let left = std::fs::read_to_string(data.file(PEERS_FILE)).unwrap();
        assert_eq!(left, "# mine\n/ip4/10.0.0.2/tcp/4040\n");
        assert_eq!(remove(&data, &id).unwrap(), 0);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::resolve(Some(dir.path().as_os_str().to_owned())).unwrap();
        std::fs::write(data.file(PEERS_FILE), "/ip4/10.0.0.1/tcp/4040\nnonsense\n").unwrap();
        let err = read(&data).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
