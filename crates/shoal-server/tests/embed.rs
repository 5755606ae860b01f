//! Runs the `embed` example's own code in the test suite: this file
//! includes `examples/embed.rs` as a module and calls its `run` with
//! `--self-test`, exactly what `cargo run --example embed -- --self-test`
//! does (cargo builds the example binary itself with `cargo test` too, but
//! does not run it). The self-test serves the app's route and Shoal's
//! routes from one axum app over a real socket and checks each answer.

#[path = "../examples/embed.rs"]
#[allow(dead_code)] // its `main` is the binary's, unused here
mod embed;

#[tokio::test(flavor = "multi_thread")]
async fn the_embed_example_serves_its_own_route_and_shoals() {
    let dir = tempfile::tempdir().unwrap();
    let args = vec![
        "--self-test".to_string(),
        dir.path().to_string_lossy().into_owned(),
    ];
    if let Err(e) = embed::run(args).await {
        panic!("the embed example's self-test failed: {e}");
    }
    assert!(
        dir.path().join("app.db").exists(),
        "the app's store is where it was asked"
    );
}
