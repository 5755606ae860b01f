//! The record-grouped layout of changes (`Feature::GroupedChanges`) on the
//! deterministic simulated network of `sync_sim.rs`: a node that offers it
//! and one that does not (the layout before it) catch up from the same
//! writer, in chunks far smaller than a record's changes, and every replica
//! ends identical — records, clocks and predecessors — whichever layout
//! each link used; then all three write concurrently over lossy links and
//! still converge.

use proptest::prelude::*;
use shoal_core::sync::{Feature, FeatureSet, Offer};

use crate::sync_sim_support;
use sync_sim_support::{Faults, Sim};

/// Every feature but grouped changes: a build from before them.
fn without_grouping() -> Offer {
    Offer {
        features: FeatureSet::NONE
            .with(Feature::About)
            .with(Feature::Predecessors),
        ..Offer::current()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn a_catch_up_grouped_yields_the_same_replica_as_one_without(
        seed in any::<u64>(),
        writes in 20usize..120,
    ) {
        let mut sim = Sim::new(seed, 3, false, None);
        sim.offers.insert(2, without_grouping());
        for _ in 0..writes {
            sim.local_write(0);
        }
        // Node 1 catches up grouped, node 2 in the layout before it.
        sim.connect(0, 1);
        sim.connect(0, 2);
        while sim.deliver_one() {}
        prop_assert!(sim.closes.is_empty(), "closes: {:?}", sim.closes);
        let writer = sim.nodes[0].store.full_state().unwrap();
        prop_assert_eq!(&sim.nodes[1].store.full_state().unwrap(), &writer);
        prop_assert_eq!(&sim.nodes[2].store.full_state().unwrap(), &writer);
        // Then everyone writes, over a lossy mesh with partitions.
        sim.chaos(150, Faults { drop: 3, duplicate: 2, reorder: 3 });
        prop_assert!(sim.heal(), "seed {} did not converge: {:?}", seed, sim.closes);
    }
}
