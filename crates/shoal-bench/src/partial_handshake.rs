//! The handshake figure of the `partial` scenario: one session set-up in
//! memory (two sans-IO sessions: hello, PAKE, proofs, and the `Filters`
//! message each sends once authenticated), and what a connection's
//! admission checks add to it — the partial-filter exchange and the device
//! admission check (issue 19 §1) — each timed on its own work (see
//! [`measure`]). No socket and no node start-up in any figure.

use anyhow::{Context, Result, ensure};
use shoal::PeerId;
use shoal::devices::{DeviceCheck, DeviceRole};
use shoal_core::partial::PartialFilters;
use shoal_core::sync::codec::{self, ChangeLayout};
use shoal_core::sync::{Action, GroupKey, Message, Role, Session, SyncConfig};
use shoal_core::{CollectionName, SyncCursor};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Devices admitted in the group whose admission check is timed.
pub const DEVICES: usize = 100;

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

/// What one connection's set-up costs, in milliseconds.
pub struct Handshake {
    /// The whole in-memory handshake with filters (hello, PAKE, proofs,
    /// the `Filters` message).
    pub session_ms: f64,
    /// The partial-filter exchange's own work: encoding the `Filters`
    /// message, decoding and parsing it on the other side, and the one
    /// SQLite write that keeps it (`set_peer_filters`).
    pub filters_ms: f64,
    /// The device admission check as the session authenticates
    /// (`Store::admission_check`) in a group with an owner and
    /// [`DEVICES`] admitted devices, the peer among them.
    pub device_ms: f64,
}

impl Handshake {
    /// What the admission checks add to one connection: the filters'
    /// exchange and the device check (both far below the handshake's own
    /// noise, so each is timed on its own work).
    pub fn admission_ms(&self) -> f64 {
        self.filters_ms + self.device_ms
    }
}

/// Times `rounds` of each part of a connection's set-up (see [`Handshake`]);
/// the databases go in `dir`.
pub fn measure(dir: &Path, filter: &str, rounds: u64) -> Result<Handshake> {
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
    let filters_ms = start.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    ensure!(store.peer_filters("peer-0")? == filters, "filters not kept");
    Ok(Handshake {
        session_ms: handshake,
        filters_ms,
        device_ms: device_check_ms(dir, rounds)?,
    })
}

/// Milliseconds per device admission check of an admitted peer, in a group
/// whose owner admitted [`DEVICES`] devices; checks that a stranger is
/// refused, so the figure is of a check that decides.
fn device_check_ms(dir: &Path, rounds: u64) -> Result<f64> {
    let store = shoal::Store::open(dir.join("devices.db"))?;
    let owner = store.device_key()?;
    store.make_owner(&owner, &[])?;
    let peers: Vec<PeerId> = (0..DEVICES).map(|_| PeerId::random()).collect();
    for peer in &peers {
        store.admit_device(&owner, peer, DeviceRole::Member, BTreeMap::new(), "")?;
    }
    ensure!(
        matches!(
            store.admission_check(&PeerId::random())?,
            DeviceCheck::Refused(_)
        ),
        "a stranger was not refused"
    );
    let start = Instant::now();
    for round in 0..rounds {
        let peer = &peers[round as usize % DEVICES];
        ensure!(
            store.admission_check(peer)? == DeviceCheck::Allowed,
            "admitted device {peer} refused"
        );
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0 / rounds as f64)
}
