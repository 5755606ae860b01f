//! `shoal` on a database an older build made: a command says, before its
//! open upgrades the file's schema (long for a big file: step 13 rewrites
//! every record), that it is upgrading it and then how long it took, and
//! says nothing of it on the next run.

use std::path::Path;

use crate::cli_support::Shoal;

#[test]
fn a_command_on_an_older_file_says_it_upgrades_it_once() {
    let s = Shoal::new();
    std::fs::create_dir_all(&s.data).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shoal-store/tests/fixtures/schema-12")
        .join("shoal.db");
    std::fs::copy(&fixture, s.db()).unwrap();
    let first = s.run(&["status"]).ok();
    let upgrading = format!(
        "upgrading {} from schema version 12 to {} (",
        s.db().display(),
        shoal::SCHEMA_VERSION
    );
    assert!(first.stderr.contains(&upgrading), "{}", first.stderr);
    assert!(first.stderr.contains(" records; "), "{}", first.stderr);
    assert!(first.stderr.contains("upgraded in "), "{}", first.stderr);
    assert!(first.stdout.contains("db_version"), "{}", first.stdout);
    let again = s.run(&["status"]).ok();
    assert!(!again.stderr.contains("upgrad"), "{}", again.stderr);
    assert_eq!(
        again.stdout, first.stdout,
        "the upgrade changed what status shows"
    );
}
