//! The workload of the simulated network: random local writes, the chaos
//! phase that mixes them with faults, cuts and partitions, and healing until
//! every replica agrees.

use super::{Faults, NO_FAULTS, Rng, Sim};
use serde_json::{Map, json};
use shoal_core::{CollectionName, FieldName, Intent, RecordId};
use shoal_store::WriteOp;

impl Sim {
    pub fn local_write(&mut self, node: usize) {
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
    pub fn chaos(&mut self, steps: usize, faults: Faults) {
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
    pub fn heal(&mut self) -> bool {
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

    pub fn converged(&self) -> bool {
        let first = self.nodes[0].store.full_state().unwrap();
        self.nodes[1..]
            .iter()
            .all(|n| n.store.full_state().unwrap() == first)
    }
}
