//! `shoal gc` and the tombstone lines of `shoal status`, run as the built
//! binary against a fresh data directory: what a pass reports in text and
//! JSON, what status shows before and after, and a bad `--horizon` refused
//! by name with nothing changed.

use crate::cli_support;
use cli_support::Shoal;

#[test]
fn gc_collects_past_the_horizon_and_status_shows_tombstones() {
    let s = Shoal::init();
    for id in ["t1", "t2", "t3"] {
        s.run(&["put", "tasks", id, r#"{"title": "x"}"#]).ok();
    }
    s.run(&["del", "tasks", "t1"]).ok();
    s.run(&["del", "tasks", "t2"]).ok();

    let status = s.run(&["--json", "status"]).ok().json();
    assert_eq!(status["tombstones"]["held"], 2, "{status}");
    assert_eq!(status["tombstones"]["collected"], 0);
    assert!(status["tombstones"]["oldest_age_ms"].as_u64().is_some());
    let text = s.run(&["status"]).ok();
    assert!(
        text.stdout.contains("tombstones  2 held, oldest"),
        "{}",
        text.stdout
    );

    // No peer was ever met: within the 30-day default nothing goes.
    let kept = s.run(&["--json", "gc"]).ok().json();
    assert_eq!(kept["rows_reclaimed"], 0, "{kept}");
    assert_eq!(kept["kept"], 2);

    std::thread::sleep(std::time::Duration::from_millis(5));
    let done = s.run(&["--json", "gc", "--horizon", "1ms"]).ok().json();
    assert_eq!(done["rows_reclaimed"], 2, "{done}");
    assert_eq!(done["examined"], 2);
    assert_eq!(done["collected_total"], 2);
    assert!(done["bytes_reclaimed"].as_u64().is_some());
    let status = s.run(&["--json", "status"]).ok().json();
    assert_eq!(status["tombstones"]["held"], 0);
    assert_eq!(status["tombstones"]["collected"], 2);
    assert!(status["tombstones"]["oldest_age_ms"].is_null());

    // A collected record re-created starts its next life and is alive.
    s.run(&["put", "tasks", "t1", r#"{"title": "again"}"#]).ok();
    assert_eq!(s.run(&["get", "tasks", "t1"]).ok().json()["title"], "again");
    let text = s.run(&["gc"]).ok();
    assert!(
        text.stdout.contains("collected 0 of 0 tombstones"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_bad_horizon_is_refused_by_name() {
    let s = Shoal::init();
    s.run(&["put", "tasks", "t1", r#"{"title": "x"}"#]).ok();
    s.run(&["del", "tasks", "t1"]).ok();
    let bad = s.run(&["gc", "--horizon", "3 weeks"]).code(2);
    assert!(bad.stderr.contains("--horizon"), "{}", bad.stderr);
    let status = s.run(&["--json", "status"]).ok().json();
    assert_eq!(status["tombstones"]["held"], 1, "nothing collected");
    let help = s.run(&["gc", "--help"]).ok();
    assert!(help.stdout.contains("acknowledged"), "{}", help.stdout);
    assert!(help.stdout.contains("--horizon"), "{}", help.stdout);
}
