//! The simulated network of the sync simulation tests: 2–5 real stores in
//! one process, connected by sans-IO sessions over a network that drops,
//! duplicates and reorders frames, cuts connections and partitions nodes, all
//! driven by one seeded random generator. Not every test file uses every part.
#![allow(dead_code)]

mod workload;

use shoal_core::sync::{Action, GroupKey, Rejection, Role, Session, SyncConfig};
use shoal_store::{Store, StoreConfig};
use std::collections::BTreeMap;

/// SplitMix64: small, seedable, good enough for a simulation.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        out
    }
}

#[derive(Clone, Copy)]
pub struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    pub reorder: u64,
}

pub const NO_FAULTS: Faults = Faults {
    drop: 0,
    duplicate: 0,
    reorder: 0,
};

pub struct Node {
    pub name: String,
    pub store: Store,
    pub key: GroupKey,
}

pub struct Conn {
    pub a: usize,
    pub b: usize,
    /// Sessions of `a` (dialer) and `b` (listener).
    pub sessions: [Session; 2],
    /// Last scheduled delivery time per direction (0: a→b, 1: b→a), for in-order delivery.
    pub last_delivery: [u64; 2],
}

pub struct Frame {
    pub conn: u64,
    /// Receiving side: 0 is `a`, 1 is `b`.
    pub to: usize,
    pub payload: Vec<u8>,
    pub at: u64,
}

pub struct Sim {
    pub rng: Rng,
    pub now: u64,
    pub nodes: Vec<Node>,
    pub conns: BTreeMap<u64, Conn>,
    pub next_conn: u64,
    pub frames: Vec<Frame>,
    pub faults: Faults,
    /// Pairs that may connect (the topology); partitioned pairs are removed while cut.
    pub links: Vec<(usize, usize)>,
    pub partitioned: Vec<bool>,
    pub closes: BTreeMap<Rejection, u64>,
    pub config: SyncConfig,
    /// What a node announces in its hellos, when not `config.offer`.
    pub offers: BTreeMap<usize, shoal_core::sync::Offer>,
    pub _dir: tempfile::TempDir,
}

impl Sim {
    pub fn new(seed: u64, nodes: usize, line: bool, wrong_key_for: Option<usize>) -> Self {
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
            offers: BTreeMap::new(),
            _dir: dir,
        }
    }

    pub fn peer_bytes(&self, node: usize) -> Vec<u8> {
        self.nodes[node].name.as_bytes().to_vec()
    }

    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.conns
            .values()
            .any(|c| (c.a, c.b) == (a, b) || (c.a, c.b) == (b, a))
    }

    pub fn reachable(&self, a: usize, b: usize) -> bool {
        self.partitioned[a] == self.partitioned[b]
    }

    pub fn connect(&mut self, a: usize, b: usize) {
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
                SyncConfig {
                    offer: sim.offers.get(&local).copied().unwrap_or(sim.config.offer),
                    ..sim.config.clone()
                },
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

    pub fn disconnect(&mut self, conn: u64) {
        self.conns.remove(&conn);
        self.frames.retain(|f| f.conn != conn);
    }

    pub fn node_of(&self, conn: u64, side: usize) -> Option<usize> {
        self.conns
            .get(&conn)
            .map(|c| if side == 0 { c.a } else { c.b })
    }

    /// Performs a session's actions (and the actions they lead to) in order.
    pub fn run(&mut self, conn: u64, side: usize, actions: Vec<Action>) {
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
                    let read = self.nodes[node]
                        .store
                        .read_for_peer(&remote_name, after, max_changes, max_bytes)
                        .unwrap();
                    let session = &mut self.conns.get_mut(&conn).unwrap().sessions[side];
                    session.changes_read(purpose, after, read, now)
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
                Action::PeerFilters { filters } => {
                    let remote_name = self.nodes[remote].name.clone();
                    self.nodes[node]
                        .store
                        .set_peer_filters(&remote_name, &filters)
                        .expect("peer filters");
                    Vec::new()
                }
                Action::Leave { records } => {
                    let remote_name = self.nodes[remote].name.clone();
                    self.nodes[node]
                        .store
                        .leave_records(&remote_name, &records)
                        .expect("leave");
                    Vec::new()
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
    pub fn deliver_closing(&mut self, conn: u64) {
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

    pub fn head(&self, node: usize) -> shoal_core::DbVersion {
        self.nodes[node].store.db_version()
    }

    pub fn sessions_of(&self, node: usize) -> Vec<(u64, usize)> {
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

    pub fn schedule(&mut self, conn: u64, to: usize, payload: Vec<u8>) {
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
    pub fn deliver_one(&mut self) -> bool {
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

    pub fn tick_all(&mut self, advance: u64) {
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
}
