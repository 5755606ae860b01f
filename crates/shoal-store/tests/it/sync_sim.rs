//! Deterministic simulation of the sync protocol: 2–5 real stores in one
//! process, connected by sans-IO sessions over a simulated network that drops,
//! duplicates and reorders frames, cuts connections and partitions nodes, while
//! the nodes write concurrently. After healing, every replica must hold
//! identical records and clocks.
//!
//! Everything random comes from one seed; a failure prints it, and
//! `SHOAL_SIM_SEED=<n> cargo test -p shoal-store --test it sync_sim::` replays it.
//! `SHOAL_SIM_SEEDS=<n>` runs more seeds.//!
//! The fixed scenarios on the same simulated network are in
//! `sync_sim_cases.rs`.

use shoal_core::sync::Rejection;

use crate::sync_sim_support;
use sync_sim_support::{Faults, Sim};

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SHOAL_SIM_SEED") {
        return vec![seed.parse().expect("SHOAL_SIM_SEED must be a number")];
    }
    let count = std::env::var("SHOAL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    (1..=count).collect()
}

fn check_seed(seed: u64, line: bool) {
    let nodes = 2 + (seed % 4) as usize;
    let mut sim = Sim::new(seed, nodes, line, None);
    let faults = Faults {
        drop: 3,
        duplicate: 2,
        reorder: 3,
    };
    sim.chaos(400, faults);
    let healed = sim.heal();
    assert!(
        healed,
        "seed {seed} ({nodes} nodes, line={line}) did not converge; closes {:?}; replay with SHOAL_SIM_SEED={seed}",
        sim.closes
    );
    assert!(
        !sim.closes.contains_key(&Rejection::WrongSecret),
        "seed {seed}: spurious wrong-secret rejection"
    );
    let records: usize = sim.nodes[0].store.full_state().unwrap().len();
    assert!(records > 0, "seed {seed}: the simulation wrote nothing");
}

#[test]
fn mesh_converges_under_loss_duplication_reordering_and_partitions() {
    for seed in seeds() {
        check_seed(seed, false);
    }
}

#[test]
fn line_topology_relays_changes_end_to_end() {
    for seed in seeds().into_iter().take(15) {
        check_seed(seed + 1_000, true);
    }
}
