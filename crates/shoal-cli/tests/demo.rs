//! `shoal demo` as a newcomer runs it: three real nodes on loopback converge,
//! and every replica prints the same state digest.

use std::process::Command;

#[test]
fn demo_converges_three_nodes() {
    let output = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("demo")
        .output()
        .expect("run shoal demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digests: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split("state digest ").nth(1))
        .collect();
    assert_eq!(digests.len(), 3, "{stdout}");
    assert!(digests.iter().all(|d| *d == digests[0]), "{stdout}");
    let shared: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("shared = {"))
        .collect();
    assert_eq!(shared.len(), 3);
    for line in shared {
        for field in [
            "\"title\":\"plan trip to Lisbon\"",
            "\"done\":true",
            "\"owner\":\"bo\"",
            "\"note\":\"book flights\"",
        ] {
            assert!(
                line.contains(field),
                "every concurrent edit survives: {line}"
            );
        }
    }
    assert_eq!(
        stdout.matches("old = deleted").count(),
        3,
        "the delete wins over the concurrent edit"
    );
}
