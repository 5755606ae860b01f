//! Runs `shoal-bench blob` on a small blob: it must finish, print its
//! readable lines, and end with one JSON object holding every figure the
//! README quotes, each a positive number. (Timings are not checked: this
//! says the benchmark works, not how fast.)

use std::process::Command;

#[test]
fn blob_scenario_ends_with_its_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args(["blob", "--mb", "4", "--rounds", "1", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run shoal-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "shoal-bench blob failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("libp2p stream memory to memory"),
        "{stdout}"
    );
    let last = stdout.lines().last().expect("some output");
    let figures: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    assert_eq!(figures["scenario"], "blob");
    assert_eq!(figures["mb"], 4);
    for key in [
        "mb_per_s",
        "raw_mb_per_s",
        "ratio",
        "raw_memory_mb_per_s",
        "transport_mb_per_s",
        "transport_ratio",
        "cpu_s",
        "raw_cpu_s",
        "transport_cpu_s",
        "transport_bound_ratio",
    ] {
        let value = figures[key].as_f64();
        assert!(
            value.is_some_and(|v| v >= 0.0),
            "{key} = {:?} in {last}",
            figures[key]
        );
    }
    assert!(
        figures["mb_per_s"].as_f64().is_some_and(|v| v > 0.0),
        "{last}"
    );
    assert!(figures["cores"].as_u64().is_some_and(|c| c >= 1), "{last}");
}
