//! The handshake figure of the `partial` scenario: one session set-up in
//! memory (two sans-IO sessions: hello, PAKE, proofs, and the `Filters`
//! message each sends once authenticated), and what the partial-filter
//! exchange adds to it, timed on its own work (see [`measure`]). No socket
//! and no node start-up in either figure.

use anyhow::{Context, Result, ensure};
use shoal_core::partial::PartialFilters;
use shoal_core::sync::codec::{self, ChangeLayout};
use shoal_core::sync::{Action, GroupKey, Message, Role, Session, SyncConfig};
use shoal_core::{CollectionName, SyncCursor};
use std::path::Path;
use std::time::Instant;

/// The frames among `actions`, without their length prefixes; whether a
/// `PeerFilters` action was among them.
fn frames(actions: Vec<Action>, out: &mut Vec<Vec<u8>>) -> Result<bool> {
    let mut filters = false;
    for action in actions {
        match action {
            Action::Send(frame) => out.push(frame[4..].to_vec()),
            Action::PeerFilters { .. } => filters = true,
            Action::Close { reason, .. } => anyhow::bail!("handshake closed: {reason}"),
            _ => {}
        }
    }
    Ok(filters)
}

/// One in-memory handshake; the dialer declares `filters`.
fn shake(key: &GroupKey, filters: &PartialFilters, round: u64) -> Result<()> {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&round.to_le_bytes());
    let mut dialer = Session::new(
        Role::Dialer,
        b"dialer".to_vec(),
        b"listener".to_vec(),
        key.clone(),
        seed,
        SyncCursor::default(),
        SyncConfig::default(),
    );
    seed[31] = 1;
    let mut listener = Session::new(
        Role::Listener,
        b"listener".to_vec(),
        b"dialer".to_vec(),
        key.clone(),
        seed,
        SyncCursor::default(),
        SyncConfig::default(),
    );
    dialer.set_own_filters(filters);
    let (mut to_l, mut to_d) = (Vec::new(), Vec::new());
    frames(dialer.start(0), &mut to_l)?;
    frames(listener.start(0), &mut to_d)?;
    let mut got = false;
    for _ in 0..16 {
        for payload in std::mem::take(&mut to_l) {
            got |= frames(listener.handle_payload(&payload, 0), &mut to_d)?;
        }
        for payload in std::mem::take(&mut to_d) {
            frames(dialer.handle_payload(&payload, 0), &mut to_l)?;
        }
        if got && dialer.is_authenticated() && listener.is_authenticated() {
            return Ok(());
        }
    }
    anyhow::bail!("the handshake did not finish")
}

/// Milliseconds per session set-up, and what the partial-filter exchange
/// adds to one: (handshake with filters, added). The handshake (hello,
/// PAKE, proofs — this branch's admission check — and the filters) is
/// timed whole in memory; the added part is timed on its own work, since
/// it is far below the handshake's noise: encoding the `Filters` message,
/// decoding and parsing it on the other side, and the one SQLite write
/// that keeps it (`set_peer_filters`).
pub fn measure(dir: &Path, filter: &str, rounds: u64) -> Result<(f64, f64)> {
    let key = GroupKey::from_hex(&"5c".repeat(32)).context("group key")?;
    let mut filters = PartialFilters::default();
    filters.set(CollectionName::new(crate::peers::COLLECTION)?, filter)?;
    let start = Instant::now();
    for round in 0..rounds {
        shake(&key, &filters, round)?;
    }
    let handshake = start.elapsed().as_secs_f64() * 1000.0 / rounds as f64;

    let mut store = shoal_store::Store::open(
        dir.join("handshake.db"),
        shoal_store::StoreConfig::default(),
    )?;
    let layout = ChangeLayout::WithPredecessors;
    let start = Instant::now();
    for round in 0..rounds {
        let message = Message::Filters {
            filters: filters.to_texts(),
        };
        let frame = codec::encode(&message, layout, None);
        let opened = codec::decode(&frame[codec::LEN_PREFIX..], layout, None)?;
        let Message::Filters { filters: texts } = opened.message else {
            anyhow::bail!("decoded another message");
        };
        let parsed = PartialFilters::from_texts(&texts)?;
        store.set_peer_filters(&format!("peer-{round}"), &parsed)?;
    }
    let added = start.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    ensure!(store.peer_filters("peer-0")? == filters, "filters not kept");
    Ok((handshake, added))
}
