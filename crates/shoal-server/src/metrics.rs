//! `GET /metrics`' text: what the node, its peer table and the store report,
//! as Prometheus metric families (the `prometheus-client` crate's text
//! encoding, OpenMetrics 1.0, which Prometheus scrapes).
//!
//! This module owns the names, labels and help texts (Prometheus
//! conventions: `shoal_` prefix, `_total` on counters — added by the
//! encoder —, base units in the name: `_seconds`, `_bytes`). It reads
//! snapshots taken by the caller ([`Readings`]) and builds a fresh registry
//! per scrape, so nothing is counted twice; it must not count events itself.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use shoal::{
    BlobTotals, BlobTransfer, CollectionStatus, HistogramSnapshot, NetMetrics, PeerPath, PeerState,
    PeerStatus, Rejection,
};
use std::sync::atomic::AtomicU64;

/// The content type of the text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything one scrape shows, read at one moment.
pub struct Readings {
    /// The peer table.
    pub peers: Vec<PeerStatus>,
    /// The node's counters.
    pub net: NetMetrics,
    /// Blob transfers in progress or failed, and totals.
    pub blobs: (Vec<BlobTransfer>, BlobTotals),
    /// Counts per collection.
    pub collections: Vec<CollectionStatus>,
    /// The database's bytes on disk.
    pub disk_bytes: u64,
    /// The store's db_version.
    pub db_version: u64,
    /// How long local writes took.
    pub writes: HistogramSnapshot,
    /// Now, in ms since the Unix epoch (for last-sync ages).
    pub now_ms: u64,
}

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// Every connection state a peer can be in (`shoal_peer_state` has one
/// series per state, 1 for the current one).
const STATES: [&str; 6] = [
    "connected",
    "connecting",
    "disconnected",
    "rejected",
    "incompatible",
    "unreachable",
];

/// Every way a peer can be reached (`shoal_peer_path` has one series per
/// path, 1 for the current one).
const PATHS: [&str; 3] = ["direct", "relayed", "none"];

fn path_name(path: &PeerPath) -> &'static str {
    match path {
        PeerPath::Direct => "direct",
        PeerPath::Relayed { .. } => "relayed",
        PeerPath::None => "none",
    }
}

fn state_name(state: &PeerState) -> &'static str {
    match state {
        PeerState::Connected => "connected",
        PeerState::Connecting => "connecting",
        PeerState::Disconnected => "disconnected",
        PeerState::Rejected { .. } => "rejected",
        PeerState::Incompatible { .. } => "incompatible",
        PeerState::Unreachable { .. } => "unreachable",
    }
}

/// A rejection reason as a label value.
fn reason_name(reason: Rejection) -> &'static str {
    match reason {
        Rejection::WrongSecret => "wrong_secret",
        Rejection::BadMac => "bad_mac",
        Rejection::UnsupportedVersion => "unsupported_version",
        Rejection::ProtocolViolation => "protocol_violation",
        Rejection::Garbage => "garbage",
        Rejection::TooLarge => "too_large",
        Rejection::Timeout => "timeout",
        Rejection::Unapplicable => "unapplicable",
        Rejection::NotAdmitted => "not_admitted",
        Rejection::Revoked => "revoked",
    }
}

/// A histogram read from a snapshot (the events were counted elsewhere).
#[derive(Debug)]
struct Snapshot(HistogramSnapshot);

impl EncodeMetric for Snapshot {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder sums the buckets itself: give it one count per bucket.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = self
            .0
            .buckets
            .iter()
            .map(|(bound, cumulative)| {
                let own = cumulative.saturating_sub(below);
                below = *cumulative;
                (*bound, own)
            })
            .collect();
        buckets.push((f64::INFINITY, self.0.count.saturating_sub(below)));
        encoder.encode_histogram::<NoLabelSet>(self.0.sum_seconds, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A family of counters, one per label set.
fn counters(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, u64)>) {
    let family = Family::<Labels, Counter>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).inc_by(value);
    }
    registry.register(name, help, family);
}

/// A family of gauges, one per label set.
fn gauges(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, f64)>) {
    let family = Family::<Labels, GaugeF>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    registry.register(name, help, family);
}

/// One counter without labels.
fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter = Counter::<u64>::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

/// One gauge without labels.
fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let gauge = GaugeF::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// The text of one scrape.
pub fn encode(readings: &Readings) -> String {
    let mut r = Registry::default();
    peer_families(&mut r, readings);
    let net = &readings.net;
    counters(
        &mut r,
        "shoal_rejections",
        "Sync sessions rejected, by reason and by which side refused",
        net.rejections
            .iter()
            .map(|c| {
                let side = if c.by_peer { "peer" } else { "local" };
                let labels = vec![
                    ("reason", reason_name(c.reason).to_string()),
                    ("rejected_by", side.to_string()),
                ];
                (labels, c.count)
            })
            .collect(),
    );
    r.register(
        "shoal_catchup_duration_seconds",
        "How long catch-ups took, from asking a peer for its changes to holding them all",
        Snapshot(net.catchup.clone()),
    );
    r.register(
        "shoal_reconciliation_duration_seconds",
        "How long reconciliations with a peer took (reports, anti-entropy, levelling)",
        Snapshot(net.reconciliation.clone()),
    );
    counter(
        &mut r,
        "shoal_hole_punch_attempts",
        "Hole punches (relayed connections upgraded to direct ones) that ended, with any peer",
        net.punch_attempts,
    );
    counter(
        &mut r,
        "shoal_hole_punch_successes",
        "Hole punches that opened a direct connection, with any peer",
        net.punch_successes,
    );
    blob_families(&mut r, readings);
    store_families(&mut r, readings);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &r)
        .expect("writing to a String cannot fail");
    text
}

fn peer_families(r: &mut Registry, readings: &Readings) {
    let peer = |p: &PeerStatus| vec![("peer", p.peer.to_string())];
    let peers = &readings.peers;
    gauges(
        r,
        "shoal_peer_state",
        "1 for the state each known peer is in, 0 for the others",
        peers
            .iter()
            .flat_map(|p| {
                let now = state_name(&p.state);
                STATES.iter().map(move |state| {
                    let mut labels = vec![("peer", p.peer.to_string())];
                    labels.push(("state", state.to_string()));
                    (labels, if *state == now { 1.0 } else { 0.0 })
                })
            })
            .collect(),
    );
    gauges(
        r,
        "shoal_peer_lag_versions",
        "Versions of the peer's log not yet applied here",
        peers.iter().map(|p| (peer(p), p.lag() as f64)).collect(),
    );
    gauges(
        r,
        "shoal_peer_last_sync_age_seconds",
        "Seconds since a catch-up with the peer last completed (peers that completed one)",
        peers
            .iter()
            .filter_map(|p| {
                let at = p.last_sync_ms?;
                let age = readings.now_ms.saturating_sub(at) as f64 / 1000.0;
                Some((peer(p), age))
            })
            .collect(),
    );
    let traffic = |f: fn(&PeerStatus) -> (u64, u64)| -> Vec<(Labels, u64)> {
        peers
            .iter()
            .flat_map(|p| {
                let (received, sent) = f(p);
                [("in", received), ("out", sent)].map(|(direction, value)| {
                    let labels = vec![
                        ("peer", p.peer.to_string()),
                        ("direction", direction.to_string()),
                    ];
                    (labels, value)
                })
            })
            .collect()
    };
    counters(
        r,
        "shoal_sync_bytes",
        "Sync protocol bytes exchanged with each peer since the node started",
        traffic(|p| (p.totals.bytes_in, p.totals.bytes_out)),
    );
    gauges(
        r,
        "shoal_peer_path",
        "1 for how each known peer is reached now (direct, relayed, none), 0 for the others",
        peers
            .iter()
            .flat_map(|p| {
                let now = path_name(&p.path);
                PATHS.iter().map(move |path| {
                    let labels = vec![("peer", p.peer.to_string()), ("path", path.to_string())];
                    (labels, if *path == now { 1.0 } else { 0.0 })
                })
            })
            .collect(),
    );
    counters(
        r,
        "shoal_peer_hole_punch_attempts",
        "Hole punches with each peer that ended (succeeded or gave up) since the node started",
        peers.iter().map(|p| (peer(p), p.punch.attempts)).collect(),
    );
    counters(
        r,
        "shoal_peer_hole_punch_successes",
        "Hole punches with each peer that opened a direct connection since the node started",
        peers.iter().map(|p| (peer(p), p.punch.successes)).collect(),
    );
    counters(
        r,
        "shoal_sync_changes",
        "Changes exchanged with each peer (catch-up chunks and pushes) since the node started",
        traffic(|p| (p.totals.changes_in, p.totals.changes_out)),
    );
}

fn blob_families(r: &mut Registry, readings: &Readings) {
    let (transfers, totals) = &readings.blobs;
    counter(
        r,
        "shoal_blob_fetches",
        "Blobs fetched from peers completely",
        totals.fetched,
    );
    counter(
        r,
        "shoal_blob_received_bytes",
        "Blob piece bytes received from peers",
        totals.bytes_received,
    );
    counter(
        r,
        "shoal_blob_bad_pieces",
        "Blob pieces that failed verification",
        totals.bad_pieces,
    );
    counter(
        r,
        "shoal_blob_serves",
        "Blob transfers served to peers",
        readings.net.blobs_served,
    );
    counter(
        r,
        "shoal_blob_sent_bytes",
        "Blob piece bytes sent to peers",
        readings.net.blob_bytes_sent,
    );
    let count =
        |f: fn(&shoal::BlobState) -> bool| transfers.iter().filter(|t| f(&t.state)).count() as f64;
    let fetching = count(|s| matches!(s, shoal::BlobState::Fetching { .. }));
    let awaiting = count(|s| matches!(s, shoal::BlobState::AwaitingDirect { .. }));
    let failed = count(|s| matches!(s, shoal::BlobState::Failed { .. }));
    gauges(
        r,
        "shoal_blob_transfers",
        "Blob transfers known to the node now, by state (awaiting_direct: too large for a relay)",
        vec![
            (vec![("state", "fetching".to_string())], fetching),
            (vec![("state", "awaiting_direct".to_string())], awaiting),
            (vec![("state", "failed".to_string())], failed),
        ],
    );
}

fn store_families(r: &mut Registry, readings: &Readings) {
    gauge(
        r,
        "shoal_store_size_bytes",
        "Bytes the database takes on disk (file and write-ahead log)",
        readings.disk_bytes as f64,
    );
    gauge(
        r,
        "shoal_store_db_version",
        "The version of the store's last committed transaction",
        readings.db_version as f64,
    );
    let per = |f: fn(&CollectionStatus) -> u64| -> Vec<(Labels, f64)> {
        readings
            .collections
            .iter()
            .map(|c| (vec![("collection", c.name.to_string())], f(c) as f64))
            .collect()
    };
    gauges(
        r,
        "shoal_records",
        "Live records, by collection",
        per(|c| c.live),
    );
    gauges(
        r,
        "shoal_tombstones",
        "Deleted records kept as tombstones, by collection",
        per(|c| c.deleted),
    );
    r.register(
        "shoal_write_duration_seconds",
        "How long local writes took, waiting for the database included",
        Snapshot(readings.writes.clone()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal::DurationHistogram;
    use std::time::Duration;

    fn readings(writes: HistogramSnapshot) -> Readings {
        let empty = DurationHistogram::default().snapshot();
        Readings {
            peers: Vec::new(),
            net: NetMetrics {
                rejections: Vec::new(),
                catchup: empty.clone(),
                reconciliation: empty,
                blobs_served: 0,
                blob_bytes_sent: 0,
                punch_attempts: 3,
                punch_successes: 2,
            },
            blobs: (Vec::new(), BlobTotals::default()),
            collections: Vec::new(),
            disk_bytes: 4096,
            db_version: 7,
            writes,
            now_ms: 0,
        }
    }

    /// The snapshot's cumulative buckets come out cumulative, once each,
    /// with `+Inf` equal to the count (the encoder sums what it is given).
    #[test]
    fn histogram_buckets_stay_cumulative_and_inf_is_the_count() {
        let writes = DurationHistogram::default();
        writes.observe(Duration::from_micros(400));
        writes.observe(Duration::from_micros(700));
        writes.observe(Duration::from_millis(3));
        writes.observe(Duration::from_secs(400));
        let text = encode(&readings(writes.snapshot()));
        let line = |series: &str| {
            text.lines()
                .find(|l| l.starts_with(series))
                .unwrap_or_else(|| panic!("no {series} in {text}"))
                .to_string()
        };
        let bucket = |le: &str| {
            line(&format!(
                "shoal_write_duration_seconds_bucket{{le=\"{le}\"}}"
            ))
        };
        assert!(bucket("0.001").ends_with(" 2"), "{text}");
        assert!(bucket("0.005").ends_with(" 3"), "{text}");
        assert!(bucket("300.0").ends_with(" 3"), "{text}");
        assert!(bucket("+Inf").ends_with(" 4"), "{text}");
        assert!(line("shoal_write_duration_seconds_count").ends_with(" 4"));
        assert!(
            line("shoal_store_size_bytes ").ends_with(" 4096.0"),
            "{text}"
        );
        assert!(
            line("shoal_hole_punch_attempts_total ").ends_with(" 3"),
            "{text}"
        );
        assert!(
            line("shoal_hole_punch_successes_total ").ends_with(" 2"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
