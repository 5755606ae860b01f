//! Crash safety under SIGKILL: a child process (this test binary re-executed
//! into the ignored `child_writer` test) writes in a loop — single puts,
//! patches, deletes, re-creates, map entries and 20-record `put_many` batches —
//! announcing each write before it starts and acknowledging it after it
//! returns, and is killed with SIGKILL at a random moment, round after round on
//! the same database. After every kill the parent reopens the file and checks:
//! every acknowledged write is there; the one write in flight is all-or-nothing
//! (a batch never half-applied); `db_version()` is at least every acknowledged
//! version; the change log is ordered and replays (and syncs to a fresh
//! replica) to exactly the stored records; the node identity survives; and a
//! new write gets a higher version and a later clock than everything before.
//!
//! Reproduce a run with `SHOAL_CRASH_SEED=<seed printed on failure>`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shoal::{Change, DbVersion, ListOptions, Store};
use shoal_core::{RecordState, SlotVersion};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set (to the database path) in the child process only.
const CHILD_ENV: &str = "SHOAL_CRASH_CHILD";
/// Seed of the whole run (parent) or of one child.
const SEED_ENV: &str = "SHOAL_CRASH_SEED";
const COLLECTIONS: [&str; 2] = ["items", "extra"];
/// Record ids per collection the child picks from (`r000`..).
const POOL: u64 = 120;
const BATCH: usize = 20;
const ROUNDS: u64 = 15;
/// A child never outlives this, even if its parent vanished without killing it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// A small deterministic PRNG (SplitMix64), so a failing run can be replayed.
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
        self.next() % n
    }

    fn word(&mut self) -> String {
        let len = self.below(12) as usize;
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

/// One write the child makes, as announced on its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
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

type Key = (String, String);
/// The live records and their fields, as the acknowledged writes say they must be.
type Model = BTreeMap<Key, Map<String, Value>>;

impl Op {
    fn touched(&self) -> Vec<Key> {
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
    fn apply_to(&self, model: &mut Model) {
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
    fn run(&self, store: &Store) -> Result<Option<DbVersion>, shoal::Error> {
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

fn body(rng: &mut Rng, seq: u64) -> Map<String, Value> {
    let value = json!({
        "title": rng.word(),
        "n": seq,
        "note": {"seq": seq, "quarter": seq as f64 / 4.0, "ok": rng.below(2) == 0, "list": [seq, rng.word()]},
    });
    value.as_object().expect("an object").clone()
}

fn patch_body(rng: &mut Rng, seq: u64) -> Map<String, Value> {
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
fn choose(store: &Store, rng: &mut Rng, seq: u64) -> Op {
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

fn emit(out: &mut impl Write, line: &str) {
    // One write per line; a line cut short by the kill has no newline and is
    // ignored by the parent.
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    out.write_all(text.as_bytes()).expect("child stdout");
    out.flush().expect("child stdout");
}

/// The writer, run only as a child of `crash_safety_under_sigkill` (which sets
/// `SHOAL_CRASH_CHILD`); a no-op when run any other way.
#[test]
#[ignore = "child process of crash_safety_under_sigkill"]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed);
    let mut out = std::io::stdout().lock();
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => {
            emit(&mut out, &format!("@@error open: {e}"));
            std::process::exit(3);
        }
    };
    emit(&mut out, "@@ready");
    let deadline = Instant::now() + CHILD_LIFETIME;
    let mut seq = seed % 1_000_000 * 1_000_000;
    while Instant::now() < deadline {
        seq += 1;
        let op = choose(&store, &mut rng, seq);
        let text = serde_json::to_string(&op).expect("encode op");
        emit(&mut out, &format!("@@intent {seq} {text}"));
        match op.run(&store) {
            Ok(Some(version)) => emit(&mut out, &format!("@@ack {seq} {}", version.0)),
            Ok(None) => emit(&mut out, &format!("@@ack {seq} -")),
            Err(e) => {
                emit(&mut out, &format!("@@error {seq}: {e} ({e:?})"));
                std::process::exit(3);
            }
        }
    }
}

/// Kills the child if the parent test fails before doing so itself.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The live records of every collection the child writes, read through `list`.
fn read_all(store: &Store) -> Model {
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

fn get(store: &Store, (coll, id): &Key) -> Option<Map<String, Value>> {
    store.collection(coll).unwrap().get(id).unwrap()
}

/// Checks the change log: positions increasing (slots of one record share its
/// position; different records never do), ending at
/// `db_version`, and per record, replaying its slot versions gives exactly the
/// stored record. Returns the log.
fn check_log(store: &Store, model: &Model, round: u64) -> Vec<Change> {
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
fn check_syncs(dir: &Path, log: &[Change], model: &Model, round: u64) {
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
enum Line {
    Ready,
    Intent(u64, Op),
    Ack(u64, Option<u64>),
}

fn parse(line: &str) -> Option<Line> {
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

#[test]
fn crash_safety_under_sigkill() {
    let started = Instant::now();
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash_safety seed: {SEED_ENV}={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();

    let mut model = Model::new();
    let mut max_version = 0u64;
    let mut site = None;
    let (mut acked_total, mut in_flight_committed, mut in_flight_lost) = (0, 0, 0);

    for round in 0..ROUNDS {
        // Every fourth round is killed right after spawning, possibly while
        // it is still opening (or creating) the database.
        let early = round % 4 == 3;
        let mut guard = ChildGuard(
            Command::new(&exe)
                .args([
                    "child_writer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &db)
                .env(SEED_ENV, rng.next().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the child writer"),
        );
        let stdout = guard.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    // A last line without its newline was cut by the kill.
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.ends_with(b"\n") => {
                        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
                    }
                    Ok(_) => break,
                }
            }
        });

        let mut lines = Vec::new();
        if early {
            std::thread::sleep(Duration::from_millis(rng.below(16)));
        } else {
            let wait_until = Instant::now() + Duration::from_secs(20);
            loop {
                let left = wait_until.saturating_duration_since(Instant::now());
                let line = rx
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("round {round}: the child never became ready"));
                let ready = matches!(parse(&line), Some(Line::Ready));
                lines.push(line);
                if ready {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20 + rng.below(281)));
        }
        guard.0.kill().expect("SIGKILL the child");
        let status = guard.0.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if status.signal() != Some(9) {
                let tail: Vec<_> = lines.iter().rev().take(5).collect();
                panic!("round {round}: the child ended by itself ({status}); last lines: {tail:?}");
            }
        }
        #[cfg(not(unix))]
        let _ = status;

        // Replay the child's announcements into the model.
        let mut pending: Option<(u64, Op)> = None;
        let mut acked = 0;
        for line in &lines {
            match parse(line) {
                None | Some(Line::Ready) => {}
                Some(Line::Intent(seq, op)) => {
                    assert!(pending.is_none(), "two writes in flight");
                    pending = Some((seq, op));
                }
                Some(Line::Ack(seq, version)) => {
                    let (intent_seq, op) = pending.take().expect("ack without intent");
                    assert_eq!(intent_seq, seq, "ack of another write");
                    op.apply_to(&mut model);
                    if let Some(v) = version {
                        assert!(
                            v > max_version,
                            "round {round}: write {seq} acknowledged at version {v}, not above {max_version}"
                        );
                        max_version = v;
                    }
                    acked += 1;
                }
            }
        }
        acked_total += acked;

        let store = Store::open(&db)
            .unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL failed: {e}"));
        let version = store.db_version().0;
        assert!(
            version >= max_version,
            "round {round}: db_version {version} is below the acknowledged version {max_version}"
        );
        match site {
            None => site = Some(store.site_id()),
            Some(s) => assert_eq!(store.site_id(), s, "round {round}: the site id changed"),
        }

        // The write in flight at the kill: entirely there or entirely absent.
        if let Some((seq, op)) = pending {
            let mut after = model.clone();
            op.apply_to(&mut after);
            let keys = op.touched();
            let actual: Vec<_> = keys.iter().map(|k| get(&store, k)).collect();
            let was: Vec<_> = keys.iter().map(|k| model.get(k).cloned()).collect();
            let now: Vec<_> = keys.iter().map(|k| after.get(k).cloned()).collect();
            if actual == now {
                if actual != was {
                    in_flight_committed += 1;
                }
                model = after;
            } else {
                let applied = keys
                    .iter()
                    .zip(&actual)
                    .zip(&now)
                    .filter(|((_, a), n)| a == n)
                    .count();
                assert_eq!(
                    actual,
                    was,
                    "round {round}: write {seq} in flight at the kill is half-applied \
                     ({applied} of {} records as written): {op:?}",
                    keys.len()
                );
                in_flight_lost += 1;
            }
        }

        assert_eq!(
            read_all(&store),
            model,
            "round {round}: stored records differ from the acknowledged writes"
        );
        let log = check_log(&store, &model, round);
        check_syncs(dir.path(), &log, &model, round);

        // A fresh write after the crash orders after everything before it.
        let last_clock = log.iter().map(|c| c.clock).max();
        let body = json!({"round": round, "after": "crash"});
        let id = format!("p{round:02}");
        let v = store
            .collection("items")
            .unwrap()
            .put(&id, body.clone())
            .unwrap()
            .expect("a new record is a change");
        assert!(
            v.0 > version && v.0 > max_version,
            "round {round}: fresh write got version {v}, db_version was {version}"
        );
        max_version = v.0;
        let fresh: Vec<Change> = store
            .changes_since(DbVersion(version))
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!fresh.is_empty());
        for change in &fresh {
            assert_eq!(change.position.version, v);
            assert!(
                Some(change.clock) > last_clock,
                "round {round}: fresh write's clock {} is not after {last_clock:?}",
                change.clock
            );
        }
        model.insert(
            ("items".into(), id),
            body.as_object().expect("object").clone(),
        );
        drop(store);
        eprintln!(
            "round {round}: {acked} writes acknowledged, {} lines, db_version {version}{}",
            lines.len(),
            if early { " (early kill)" } else { "" }
        );
    }
    eprintln!(
        "crash_safety: {ROUNDS} rounds, {acked_total} acknowledged writes, in-flight writes \
         committed {in_flight_committed} / lost {in_flight_lost}, {} live records, {:?}",
        model.len(),
        started.elapsed()
    );
    assert!(
        acked_total > 0,
        "the children never acknowledged a write: nothing was tested"
    );
}
