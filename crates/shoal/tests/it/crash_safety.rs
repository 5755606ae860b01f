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

use serde_json::json;
use shoal::{Change, DbVersion, Store};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::crash_safety_support;
use crash_safety_support::checks::*;
use crash_safety_support::*;

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
    // This test binary again, running only the child test below (its path
    // in the binary: tests/it/main.rs holds every file as a module).
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
                    "crash_safety::child_writer",
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
