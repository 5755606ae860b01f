//! Deterministic simulation of the sync protocol: 2–5 real stores in one
//! process, connected by sans-IO sessions over a simulated network that drops,
//! duplicates and reorders frames, cuts connections and partitions nodes, while
//! the nodes write concurrently. After healing, every replica must hold
//! identical records and clocks.
//!
//! Everything random comes from one seed; a failure prints it, and
//! `SHOAL_SIM_SEED=<n> cargo test -p shoal-store --test sync_sim` replays it.
//! `SHOAL_SIM_SEEDS=<n>` runs more seeds.

use serde_json::{Map, json};
use shoal_core::sync::{Action, GroupKey, Rejection, Role, Session, SyncConfig};
use shoal_core::{CollectionName, FieldName, Intent, RecordId, SyncCursor};
use shoal_store::{Store, StoreConfig, WriteOp};
use std::collections::BTreeMap;

/// SplitMix64: small, seedable, good enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        out
    }
}

#[derive(Clone, Copy)]
struct Faults {
    drop: u64,
    duplicate: u64,
    reorder: u64,
}

const NO_FAULTS: Faults = Faults {
    drop: 0,
    duplicate: 0,
    reorder: 0,
};

struct Node {
    name: String,
    store: Store,
    key: GroupKey,
}

struct Conn {
    a: usize,
    b: usize,
    /// Sessions of `a` (dialer) and `b` (listener).
    sessions: [Session; 2],
    /// Last scheduled delivery time per direction (0: a→b, 1: b→a), for in-order delivery.
    last_delivery: [u64; 2],
}

struct Frame {
    conn: u64,
    /// Receiving side: 0 is `a`, 1 is `b`.
    to: usize,
    payload: Vec<u8>,
    at: u64,
}

struct Sim {
    rng: Rng,
    now: u64,
    nodes: Vec<Node>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    frames: Vec<Frame>,
    faults: Faults,
    /// Pairs that may connect (the topology); partitioned pairs are removed while cut.
    links: Vec<(usize, usize)>,
    partitioned: Vec<bool>,
    closes: BTreeMap<Rejection, u64>,
    config: SyncConfig,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn new(seed: u64, nodes: usize, line: bool, wrong_key_for: Option<usize>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = GroupKey::from_random([42; 32]);
        let nodes: Vec<Node> = (0..nodes)
            .map(|i| Node {
                name: format!("n{i}"),
                store: Store::open(dir.path().join(format!("n{i}.db")), StoreConfig::default())
                    .unwrap(),
                key: if wrong_key_for == Some(i) {
                    GroupKey::from_random([7; 32])
                } else {
                    key.clone()
                },
            })
            .collect();
        let n = nodes.len();
        let links = if line {
            (1..n).map(|i| (i - 1, i)).collect()
        } else {
            (0..n)
                .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                .collect()
        };
        let config = SyncConfig {
            max_changes: 7,
            max_bytes: 600,
            ..SyncConfig::default()
        };
        Sim {
            rng: Rng(seed),
            now: 1_000,
            nodes,
            conns: BTreeMap::new(),
            next_conn: 0,
            frames: Vec::new(),
            faults: NO_FAULTS,
            links,
            partitioned: vec![false; n],
            closes: BTreeMap::new(),
            config,
            _dir: dir,
        }
    }

    fn peer_bytes(&self, node: usize) -> Vec<u8> {
        self.nodes[node].name.as_bytes().to_vec()
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.conns
            .values()
            .any(|c| (c.a, c.b) == (a, b) || (c.a, c.b) == (b, a))
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.partitioned[a] == self.partitioned[b]
    }

    fn connect(&mut self, a: usize, b: usize) {
        if self.connected(a, b) || !self.reachable(a, b) {
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let make = |sim: &mut Sim, local: usize, remote: usize, role: Role| {
            let cursor = sim.nodes[local]
                .store
                .peer_cursor(&sim.nodes[remote].name)
                .unwrap();
            Session::new(
                role,
                sim.peer_bytes(local),
                sim.peer_bytes(remote),
                sim.nodes[local].key.clone(),
                sim.rng.bytes(),
                cursor,
                sim.config.clone(),
            )
        };
        let sa = make(self, a, b, Role::Dialer);
        let sb = make(self, b, a, Role::Listener);
        self.conns.insert(
            id,
            Conn {
                a,
                b,
                sessions: [sa, sb],
                last_delivery: [0; 2],
            },
        );
        for side in 0..2 {
            let now = self.now;
            let actions = self.conns.get_mut(&id).unwrap().sessions[side].start(now);
            self.run(id, side, actions);
        }
    }

    fn disconnect(&mut self, conn: u64) {
        self.conns.remove(&conn);
        self.frames.retain(|f| f.conn != conn);
    }

    fn node_of(&self, conn: u64, side: usize) -> Option<usize> {
        self.conns
            .get(&conn)
            .map(|c| if side == 0 { c.a } else { c.b })
    }

    /// Performs a session's actions (and the actions they lead to) in order.
    fn run(&mut self, conn: u64, side: usize, actions: Vec<Action>) {
        // First in, first out: see the contract on `Action`.
        let mut work: std::collections::VecDeque<(u64, usize, Action)> =
            actions.into_iter().map(|a| (conn, side, a)).collect();
        while let Some((conn, side, action)) = work.pop_front() {
            let Some(node) = self.node_of(conn, side) else {
                continue;
            };
            let remote = self.node_of(conn, 1 - side).unwrap();
            let now = self.now;
            let next: Vec<Action> = match action {
                Action::Send(frame) => {
                    self.schedule(conn, 1 - side, frame[4..].to_vec());
                    Vec::new()
                }
                Action::ReadChanges {
                    purpose,
                    after,
                    max_changes,
                    max_bytes,
                } => {
                    let remote_name = self.nodes[remote].name.clone();
                    let (changes, upto, more) = self.nodes[node]
                        .store
                        .read_for_peer(&remote_name, after, max_changes, max_bytes)
                        .unwrap();
                    let session = &mut self.conns.get_mut(&conn).unwrap().sessions[side];
                    session.changes_read(purpose, after, changes, upto, more, now)
                }
                Action::Apply { changes, cursor } => {
                    let remote_name = self.nodes[remote].name.clone();
                    match self.nodes[node]
                        .store
                        .apply_from(&remote_name, &changes, cursor)
                    {
                        Ok(report) => {
                            if report.version.is_some() {
                                for (other, other_side) in self.sessions_of(node) {
                                    if other != conn {
                                        let head = self.head(node);
                                        let more = self.conns.get_mut(&other).unwrap().sessions
                                            [other_side]
                                            .local_committed(head);
                                        work.extend(
                                            more.into_iter().map(|a| (other, other_side, a)),
                                        );
                                    }
                                }
                            }
                            let head = self.head(node);
                            let session = &mut self.conns.get_mut(&conn).unwrap().sessions[side];
                            let mut out = session.applied(cursor);
                            out.extend(session.local_committed(head));
                            out
                        }
                        Err(_) => self.conns.get_mut(&conn).unwrap().sessions[side].apply_failed(),
                    }
                }
                Action::Serve { id, request } => {
                    let remote_name = self.nodes[remote].name.clone();
                    let limits = shoal_core::recon::ReconLimits::default();
                    let (response, _) =
                        self.nodes[node]
                            .store
                            .serve_request(&remote_name, request, &limits);
                    self.conns.get_mut(&conn).unwrap().sessions[side].respond(id, response)
                }
                // This simulation makes no federation requests of its own.
                Action::Authenticated
                | Action::CaughtUp { .. }
                | Action::Answer { .. }
                | Action::Unanswered { .. } => Vec::new(),
                Action::Close { reason, .. } => {
                    *self.closes.entry(reason).or_default() += 1;
                    // The frames sent before the close still reach the peer (it
                    // learns why); the connection then ends on both sides.
                    self.deliver_closing(conn);
                    self.disconnect(conn);
                    Vec::new()
                }
            };
            work.extend(next.into_iter().map(|a| (conn, side, a)));
        }
    }

    /// Hands the peer the frames already in flight on a closing connection.
    fn deliver_closing(&mut self, conn: u64) {
        let mut pending: Vec<Frame> = Vec::new();
        self.frames.retain_mut(|f| {
            if f.conn == conn {
                pending.push(Frame {
                    conn: f.conn,
                    to: f.to,
                    payload: std::mem::take(&mut f.payload),
                    at: f.at,
                });
                false
            } else {
                true
            }
        });
        pending.sort_by_key(|f| f.at);
        for frame in pending {
            if let Some(c) = self.conns.get_mut(&conn) {
                let now = self.now;
                let _ = c.sessions[frame.to].handle_payload(&frame.payload, now);
            }
        }
    }

    fn head(&self, node: usize) -> shoal_core::DbVersion {
        self.nodes[node].store.db_version()
    }

    fn sessions_of(&self, node: usize) -> Vec<(u64, usize)> {
        self.conns
            .iter()
            .flat_map(|(id, c)| {
                let mut v = Vec::new();
                if c.a == node {
                    v.push((*id, 0));
                }
                if c.b == node {
                    v.push((*id, 1));
                }
                v
            })
            .collect()
    }

    fn schedule(&mut self, conn: u64, to: usize, payload: Vec<u8>) {
        if self.rng.chance(self.faults.drop) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.rng.below(20);
            let c = self.conns.get_mut(&conn).unwrap();
            let at = if self.rng.chance(self.faults.reorder) {
                self.now + delay
            } else {
                (self.now + delay).max(c.last_delivery[to] + 1)
            };
            c.last_delivery[to] = c.last_delivery[to].max(at);
            self.frames.push(Frame {
                conn,
                to,
                payload: payload.clone(),
                at,
            });
        }
    }

    /// Delivers the earliest frame in flight; false if none.
    fn deliver_one(&mut self) -> bool {
        let Some(i) = (0..self.frames.len()).min_by_key(|&i| (self.frames[i].at, i)) else {
            return false;
        };
        let frame = self.frames.swap_remove(i);
        self.now = self.now.max(frame.at);
        let now = self.now;
        let Some(c) = self.conns.get_mut(&frame.conn) else {
            return true;
        };
        let actions = c.sessions[frame.to].handle_payload(&frame.payload, now);
        self.run(frame.conn, frame.to, actions);
        true
    }

    fn tick_all(&mut self, advance: u64) {
        self.now += advance;
        let now = self.now;
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            for side in 0..2 {
                let Some(c) = self.conns.get_mut(&id) else {
                    break;
                };
                let actions = c.sessions[side].tick(now);
                self.run(id, side, actions);
            }
        }
    }

    fn local_write(&mut self, node: usize) {
        let collection =
            CollectionName::new(["tasks", "notes"][self.rng.below(2) as usize]).unwrap();
        let id = RecordId::new(format!("r{}", self.rng.below(6))).unwrap();
        let field = |rng: &mut Rng| ["a", "b", "c"][rng.below(3) as usize].to_string();
        let value = |rng: &mut Rng| json!(rng.below(1000));
        let intent = match self.rng.below(6) {
            0 | 1 => {
                let mut object = Map::new();
                for _ in 0..=self.rng.below(3) {
                    object.insert(field(&mut self.rng), value(&mut self.rng));
                }
                Intent::Put(object)
            }
            2 => Intent::Patch(Map::from_iter([(
                field(&mut self.rng),
                value(&mut self.rng),
            )])),
            3 => Intent::Delete,
            4 => Intent::MapSet {
                field: FieldName::new("tags").unwrap(),
                key: format!("k{}", self.rng.below(4)),
                value: value(&mut self.rng),
            },
            _ => Intent::MapRemove {
                field: FieldName::new("tags").unwrap(),
                key: format!("k{}", self.rng.below(4)),
            },
        };
        let outcome = self.nodes[node].store.write(vec![WriteOp {
            collection,
            id,
            intent,
        }]);
        match outcome {
            Ok(outcome) if outcome.version.is_some() => {
                let head = self.head(node);
                for (conn, side) in self.sessions_of(node) {
                    let actions =
                        self.conns.get_mut(&conn).unwrap().sessions[side].local_committed(head);
                    self.run(conn, side, actions);
                }
            }
            Ok(_) => {}
            Err(shoal_store::StoreError::Invalid(shoal_core::CoreError::RecordNotFound)) => {}
            Err(e) => panic!("local write failed: {e}"),
        }
    }

    /// Random writes and faults for `steps` steps.
    fn chaos(&mut self, steps: usize, faults: Faults) {
        self.faults = faults;
        let n = self.nodes.len();
        for _ in 0..steps {
            match self.rng.below(100) {
                0..=29 => {
                    let node = self.rng.below(n as u64) as usize;
                    self.local_write(node);
                }
                30..=74 => {
                    if !self.deliver_one() {
                        let advance = 1 + self.rng.below(2_000);
                        self.tick_all(advance);
                    }
                }
                75..=84 => {
                    let advance = 1 + self.rng.below(5_000);
                    self.tick_all(advance);
                }
                85..=92 => {
                    let (a, b) = self.links[self.rng.below(self.links.len() as u64) as usize];
                    self.connect(a, b);
                }
                93..=95 => {
                    let ids: Vec<u64> = self.conns.keys().copied().collect();
                    if !ids.is_empty() {
                        let id = ids[self.rng.below(ids.len() as u64) as usize];
                        self.disconnect(id);
                    }
                }
                _ => {
                    let node = self.rng.below(n as u64) as usize;
                    self.partitioned[node] = !self.partitioned[node];
                    let cut: Vec<u64> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| !self.reachable(c.a, c.b))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in cut {
                        self.disconnect(id);
                    }
                }
            }
        }
    }

    /// Heals the network and runs until every replica agrees (or gives up).
    fn heal(&mut self) -> bool {
        self.faults = NO_FAULTS;
        self.partitioned.iter_mut().for_each(|p| *p = false);
        for round in 0..40 {
            for (a, b) in self.links.clone() {
                self.connect(a, b);
            }
            while self.deliver_one() {}
            if round > 0 && self.converged() {
                return true;
            }
            self.tick_all(self.config.resync_interval_ms);
        }
        false
    }

    fn converged(&self) -> bool {
        let first = self.nodes[0].store.full_state().unwrap();
        self.nodes[1..]
            .iter()
            .all(|n| n.store.full_state().unwrap() == first)
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SHOAL_SIM_SEED") {
        return vec![seed.parse().expect("SHOAL_SIM_SEED must be a number")];
    }
    let count = std::env::var("SHOAL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    (1..=count).collect()
}

fn check_seed(seed: u64, line: bool) {
    let nodes = 2 + (seed % 4) as usize;
    let mut sim = Sim::new(seed, nodes, line, None);
    let faults = Faults {
        drop: 3,
        duplicate: 2,
        reorder: 3,
    };
    sim.chaos(400, faults);
    let healed = sim.heal();
    assert!(
        healed,
        "seed {seed} ({nodes} nodes, line={line}) did not converge; closes {:?}; replay with SHOAL_SIM_SEED={seed}",
        sim.closes
    );
    assert!(
        !sim.closes.contains_key(&Rejection::WrongSecret),
        "seed {seed}: spurious wrong-secret rejection"
    );
    let records: usize = sim.nodes[0].store.full_state().unwrap().len();
    assert!(records > 0, "seed {seed}: the simulation wrote nothing");
}

#[test]
fn mesh_converges_under_loss_duplication_reordering_and_partitions() {
    for seed in seeds() {
        check_seed(seed, false);
    }
}

#[test]
fn line_topology_relays_changes_end_to_end() {
    for seed in seeds().into_iter().take(15) {
        check_seed(seed + 1_000, true);
    }
}

#[test]
fn clean_network_needs_no_timeouts_and_no_gaps() {
    let mut sim = Sim::new(7, 3, false, None);
    for (a, b) in sim.links.clone() {
        sim.connect(a, b);
    }
    for _ in 0..300 {
        let node = sim.rng.below(3) as usize;
        sim.local_write(node);
        while sim.deliver_one() {}
    }
    assert!(sim.converged(), "live pushes alone keep replicas equal");
    assert!(sim.closes.is_empty(), "no session closed: {:?}", sim.closes);
    let gaps: u64 = sim
        .conns
        .values()
        .flat_map(|c| c.sessions.iter())
        .map(|s| s.stats().gaps)
        .sum();
    assert_eq!(gaps, 0, "a clean network never shows a push gap");
}

#[test]
fn reconnect_transfers_only_what_was_missed() {
    let mut sim = Sim::new(11, 2, false, None);
    sim.connect(0, 1);
    for _ in 0..200 {
        sim.local_write(0);
    }
    while sim.deliver_one() {}
    assert!(sim.converged());
    let ids: Vec<u64> = sim.conns.keys().copied().collect();
    ids.into_iter().for_each(|id| sim.disconnect(id));
    let before = sim.nodes[0].store.db_version();
    let mut missed = 0;
    while missed == 0 {
        for _ in 0..5 {
            sim.local_write(0);
        }
        missed = sim.nodes[0].store.changes_since(before).count() as u64;
    }
    sim.connect(0, 1);
    while sim.deliver_one() {}
    assert!(sim.converged());
    let received: u64 = sim
        .conns
        .values()
        .map(|c| c.sessions[1].stats().changes_in)
        .sum();
    assert_eq!(
        received, missed,
        "only the changes made while apart crossed"
    );
}

#[test]
fn wrong_secret_is_rejected_and_receives_nothing() {
    let mut sim = Sim::new(3, 2, false, Some(1));
    sim.local_write(0);
    sim.local_write(0);
    sim.connect(0, 1);
    while sim.deliver_one() {}
    assert!(sim.conns.is_empty(), "the connection was closed");
    assert!(
        sim.closes
            .get(&Rejection::WrongSecret)
            .copied()
            .unwrap_or(0)
            >= 1,
        "{:?}",
        sim.closes
    );
    assert!(
        sim.nodes[1].store.full_state().unwrap().is_empty(),
        "zero records reached the outsider"
    );
    assert!(sim.nodes[0].store.full_state().unwrap().len() <= 2);
}

/// A listener session that has sent its hello and waits for the peer's.
fn started_session() -> Session {
    let key = GroupKey::from_random([1; 32]);
    let mut session = Session::new(
        Role::Listener,
        b"me".to_vec(),
        b"them".to_vec(),
        key,
        [0; 32],
        SyncCursor::default(),
        SyncConfig::default(),
    );
    session.start(0);
    session
}

#[test]
fn garbage_and_oversized_frames_close_with_a_named_reason() {
    let mut session = started_session();
    let actions = session.handle_payload(&[0, 0xde, 0xad, 0xbe, 0xef], 1);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Close {
                reason: Rejection::Garbage,
                by_peer: false
            }
        )),
        "{actions:?}"
    );
    assert!(session.is_closed());
    assert!(
        session.handle_payload(&[0], 2).is_empty(),
        "a closed session ignores input"
    );

    let mut session = started_session();
    let actions = session.frame_too_large();
    assert!(matches!(
        actions.last(),
        Some(Action::Close {
            reason: Rejection::TooLarge,
            ..
        })
    ));

    let mut session = started_session();
    assert!(session.tick(29_999).is_empty());
    let actions = session.tick(30_000);
    assert!(
        matches!(
            actions.last(),
            Some(Action::Close {
                reason: Rejection::Timeout,
                ..
            })
        ),
        "a silent peer times out"
    );
}
