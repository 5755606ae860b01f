//! The parent side of the crash-safety test: killing a leftover child,
//! reading back every live record, checking the change log and a replica fed
//! with it, and parsing the child's announcements.

use super::{COLLECTIONS, Key, Model, Op};
use serde_json::{Map, Value};
use shoal::{Change, DbVersion, ListOptions, Store};
use shoal_core::{RecordState, SlotVersion};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;

/// Kills the child if the parent test fails before doing so itself.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The live records of every collection the child writes, read through `list`.
pub fn read_all(store: &Store) -> Model {
    let mut out = Model::new();
    for name in COLLECTIONS {
        let coll = store.collection(name).unwrap();
        let mut after = None;
        loop {
            let page = coll
                .list(&ListOptions {
                    after: after.clone(),
                    limit: 257,
                    ..Default::default()
                })
                .unwrap();
            for (id, fields) in page.records {
                out.insert((name.to_string(), id.to_string()), fields);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    out
}

pub fn get(store: &Store, (coll, id): &Key) -> Option<Map<String, Value>> {
    store.collection(coll).unwrap().get(id).unwrap()
}

/// Checks the change log: positions increasing (slots of one record share its
/// position; different records never do), ending at
/// `db_version`, and per record, replaying its slot versions gives exactly the
/// stored record. Returns the log.
pub fn check_log(store: &Store, model: &Model, round: u64) -> Vec<Change> {
    let log: Vec<Change> = store
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("round {round}: reading the change log failed: {e}"));
    for pair in log.windows(2) {
        let same_record = pair[0].collection == pair[1].collection && pair[0].id == pair[1].id;
        let ordered = if same_record {
            pair[0].position == pair[1].position
        } else {
            pair[0].position < pair[1].position
        };
        assert!(
            ordered,
            "round {round}: log out of order: {}/{} at {} then {}/{} at {}",
            pair[0].collection,
            pair[0].id,
            pair[0].position,
            pair[1].collection,
            pair[1].id,
            pair[1].position
        );
    }
    if let Some(last) = log.last() {
        assert_eq!(
            last.position.version,
            store.db_version(),
            "round {round}: the last logged change is not at db_version"
        );
    }
    let mut by_record: BTreeMap<Key, Vec<&Change>> = BTreeMap::new();
    for change in &log {
        by_record
            .entry((change.collection.to_string(), change.id.to_string()))
            .or_default()
            .push(change);
    }
    for key in model.keys() {
        assert!(
            by_record.contains_key(key),
            "round {round}: live record {key:?} has no change in the log"
        );
    }
    for (key, changes) in &by_record {
        let state = RecordState::from_slots(changes.iter().map(|c| {
            (
                c.slot.clone(),
                SlotVersion {
                    value: c.value.clone(),
                    clock: c.clock,
                    life: c.life,
                    pred: c.pred,
                },
            )
        }));
        assert_eq!(
            state.render().as_ref(),
            model.get(key),
            "round {round}: replaying the log of {key:?} does not give the stored record"
        );
    }
    log
}

/// Applies the whole log to a brand-new replica and checks it ends up equal.
pub fn check_syncs(dir: &Path, log: &[Change], model: &Model, round: u64) {
    let replica = Store::open(dir.join(format!("replica-{round}.db"))).unwrap();
    for chunk in log.chunks(500) {
        replica
            .apply(chunk)
            .unwrap_or_else(|e| panic!("round {round}: a replica refused the log: {e}"));
    }
    assert_eq!(
        &read_all(&replica),
        model,
        "round {round}: a replica fed the change log differs"
    );
}

#[derive(Debug)]
pub enum Line {
    Ready,
    Intent(u64, Op),
    Ack(u64, Option<u64>),
}

pub fn parse(line: &str) -> Option<Line> {
    let start = line.find("@@")?;
    let line = line[start..].trim_end();
    if line == "@@ready" {
        return Some(Line::Ready);
    }
    if let Some(rest) = line.strip_prefix("@@error") {
        panic!("the child writer failed:{rest}");
    }
    if let Some(rest) = line.strip_prefix("@@intent ") {
        let (seq, op) = rest.split_once(' ').expect("intent line");
        let op = serde_json::from_str(op).expect("intent op");
        return Some(Line::Intent(seq.parse().expect("seq"), op));
    }
    if let Some(rest) = line.strip_prefix("@@ack ") {
        let (seq, version) = rest.split_once(' ').expect("ack line");
        let version = (version != "-").then(|| version.parse().expect("version"));
        return Some(Line::Ack(seq.parse().expect("seq"), version));
    }
    panic!("unexpected line from the child: {line:?}");
}
