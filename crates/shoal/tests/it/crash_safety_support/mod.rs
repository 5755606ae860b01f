//! The child side of the crash-safety test: the constants both processes
//! share, a replayable PRNG, the writes the child makes (with what each must
//! do to the model and how it runs against the store), how the child picks
//! them, and the line protocol it announces them with. The parent's checks
//! are in `checks`.

pub mod checks;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shoal::{DbVersion, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

/// Set (to the database path) in the child process only.
pub const CHILD_ENV: &str = "SHOAL_CRASH_CHILD";
/// Seed of the whole run (parent) or of one child.
pub const SEED_ENV: &str = "SHOAL_CRASH_SEED";
pub const COLLECTIONS: [&str; 2] = ["items", "extra"];
/// Record ids per collection the child picks from (`r000`..).
pub const POOL: u64 = 120;
pub const BATCH: usize = 20;
pub const ROUNDS: u64 = 15;
/// A child never outlives this, even if its parent vanished without killing it.
pub const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// A small deterministic PRNG (SplitMix64), so a failing run can be replayed.
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
        self.next() % n
    }

    pub fn word(&mut self) -> String {
        let len = self.below(12) as usize;
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

/// One write the child makes, as announced on its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Put {
        coll: String,
        id: String,
        body: Map<String, Value>,
    },
    Patch {
        coll: String,
        id: String,
        body: Map<String, Value>,
    },
    Delete {
        coll: String,
        id: String,
    },
    MapSet {
        coll: String,
        id: String,
        field: String,
        key: String,
        value: Value,
    },
    PutMany {
        coll: String,
        records: Vec<(String, Map<String, Value>)>,
    },
}

pub type Key = (String, String);
/// The live records and their fields, as the acknowledged writes say they must be.
pub type Model = BTreeMap<Key, Map<String, Value>>;

impl Op {
    pub fn touched(&self) -> Vec<Key> {
        match self {
            Op::Put { coll, id, .. }
            | Op::Patch { coll, id, .. }
            | Op::Delete { coll, id }
            | Op::MapSet { coll, id, .. } => vec![(coll.clone(), id.clone())],
            Op::PutMany { coll, records } => records
                .iter()
                .map(|(id, _)| (coll.clone(), id.clone()))
                .collect(),
        }
    }

    /// What the write does to the model: the documented semantics of each call.
    pub fn apply_to(&self, model: &mut Model) {
        match self {
            Op::Put { coll, id, body } => {
                model.insert((coll.clone(), id.clone()), body.clone());
            }
            Op::Patch { coll, id, body } => {
                let record = model
                    .get_mut(&(coll.clone(), id.clone()))
                    .expect("the child patches live records only");
                for (field, value) in body {
                    if value.is_null() {
                        record.remove(field);
                    } else {
                        record.insert(field.clone(), value.clone());
                    }
                }
            }
            Op::Delete { coll, id } => {
                model.remove(&(coll.clone(), id.clone()));
            }
            Op::MapSet {
                coll,
                id,
                field,
                key,
                value,
            } => {
                let record = model.entry((coll.clone(), id.clone())).or_default();
                let map = record
                    .entry(field.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                map.as_object_mut()
                    .expect("map fields are only written by map_set")
                    .insert(key.clone(), value.clone());
            }
            Op::PutMany { coll, records } => {
                for (id, body) in records {
                    model.insert((coll.clone(), id.clone()), body.clone());
                }
            }
        }
    }

    /// Runs the write against the store.
    pub fn run(&self, store: &Store) -> Result<Option<DbVersion>, shoal::Error> {
        match self {
            Op::Put { coll, id, body } => {
                store.collection(coll)?.put(id, Value::Object(body.clone()))
            }
            Op::Patch { coll, id, body } => store
                .collection(coll)?
                .patch(id, Value::Object(body.clone())),
            Op::Delete { coll, id } => store.collection(coll)?.delete(id),
            Op::MapSet {
                coll,
                id,
                field,
                key,
                value,
            } => store
                .collection(coll)?
                .map_set(id, field, key, value.clone()),
            Op::PutMany { coll, records } => store.collection(coll)?.put_many(
                records
                    .iter()
                    .map(|(id, body)| (id.clone(), Value::Object(body.clone()))),
            ),
        }
    }
}

pub fn body(rng: &mut Rng, seq: u64) -> Map<String, Value> {
    let value = json!({
        "title": rng.word(),
        "n": seq,
        "note": {"seq": seq, "quarter": seq as f64 / 4.0, "ok": rng.below(2) == 0, "list": [seq, rng.word()]},
    });
    value.as_object().expect("an object").clone()
}

pub fn patch_body(rng: &mut Rng, seq: u64) -> Map<String, Value> {
    let full = body(rng, seq);
    let mut out = Map::new();
    for (field, value) in full {
        match rng.below(4) {
            0 => {}
            1 => {
                out.insert(field, Value::Null);
            }
            _ => {
                out.insert(field, value);
            }
        }
    }
    if out.is_empty() {
        out.insert("n".into(), json!(seq));
    }
    out
}

/// Picks the next write; reads the store so patches and deletes hit live records.
pub fn choose(store: &Store, rng: &mut Rng, seq: u64) -> Op {
    let coll = COLLECTIONS[usize::from(rng.below(4) == 0)].to_string();
    let id = format!("r{:03}", rng.below(POOL));
    let live = store
        .collection(&coll)
        .and_then(|c| c.get(&id))
        .expect("child read")
        .is_some();
    match rng.below(100) {
        0..30 => Op::Put {
            coll,
            id,
            body: body(rng, seq),
        },
        30..55 if live => Op::Patch {
            coll,
            id,
            body: patch_body(rng, seq),
        },
        55..67 if live => Op::Delete { coll, id },
        30..67 => Op::Put {
            coll,
            id,
            body: body(rng, seq),
        },
        67..80 => Op::MapSet {
            coll,
            id,
            field: "tags".into(),
            key: format!("k{}", rng.below(5)),
            value: json!({"seq": seq, "w": rng.word()}),
        },
        _ => {
            let mut ids = BTreeSet::new();
            while ids.len() < BATCH {
                ids.insert(format!("r{:03}", rng.below(POOL)));
            }
            let records = ids.into_iter().map(|id| (id, body(rng, seq))).collect();
            Op::PutMany { coll, records }
        }
    }
}

pub fn emit(out: &mut impl Write, line: &str) {
    // One write per line; a line cut short by the kill has no newline and is
    // ignored by the parent.
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    out.write_all(text.as_bytes()).expect("child stdout");
    out.flush().expect("child stdout");
}
