//! How much longer a gang runs when its members are spread over the network.
//!
//! Model: `actual = duration × factor(level)`, where `level` is the loosest topology level the gang's
//! nodes span, judged on the *real* fat tree (whatever topology the policy planned with):
//!
//! | spread | factor |
//! |---|---|
//! | one node (or a one-pod job) | 1.0 |
//! | several nodes, one rack | 1.0 |
//! | several racks, one spine | 1 + α_rack = **1.3** |
//! | several spines | 1 + α_spine = **1.6** |
//!
//! The trace durations are taken as the rack-local run time: the traces do not say where jobs ran, and
//! a multi-node job of a production cluster scheduled with locality in mind (Philly's scheduler, ITP)
//! mostly ran rack-local. Why these α, from the literature (the traces carry no model names, so the α
//! are a mix over communication-heavy and -light jobs, not the worst case):
//! - Tiresias (Gu et al., NSDI'19, §2.3 "consolidation"): models with large, skewed tensors (VGG,
//!   AlexNet) train markedly slower (up to about 2× in its measurements) when the same GPUs are spread
//!   over machines instead of consolidated, while ResNet/Inception-style models lose only a few percent.
//! - Gandiva (Xiao et al., OSDI'18) and Themis (Mahajan et al., NSDI'20) report the same split:
//!   placement-sensitive models slow down by tens of percent up to about 2× when spread across servers
//!   or racks, insensitive ones by under 10 %.
//! - Philly's own analysis (Jeon et al., ATC'19) attributes lower GPU utilisation of distributed jobs to
//!   spreading across servers and racks.
//!
//! With roughly a third of multi-node jobs communication-heavy (≈ 2× when crossing the oversubscribed
//! rack uplinks) and the rest near 1.05×, a mean of ≈ 1.3 across racks follows; crossing the spine
//! (another oversubscribed tier) doubles the penalty to 1.6. These are modelling choices, exposed as
//! `--alpha-rack` / `--alpha-spine`, not measured constants.

use mlsched::core::NodeId;
use mlsched::topology::Topology;
use serde::Serialize;

pub const DEFAULT_ALPHA_RACK: f64 = 0.3;
pub const DEFAULT_ALPHA_SPINE: f64 = 0.6;

/// The loosest level a placement spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Spread {
    SingleNode,
    Rack,
    CrossRack,
    CrossSpine,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SlowdownModel {
    pub alpha_rack: f64,
    pub alpha_spine: f64,
}

impl Default for SlowdownModel {
    fn default() -> Self {
        SlowdownModel { alpha_rack: DEFAULT_ALPHA_RACK, alpha_spine: DEFAULT_ALPHA_SPINE }
    }
}

impl SlowdownModel {
    pub fn factor(&self, spread: Spread) -> f64 {
        match spread {
            Spread::SingleNode | Spread::Rack => 1.0,
            Spread::CrossRack => 1.0 + self.alpha_rack,
            Spread::CrossSpine => 1.0 + self.alpha_spine,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (name, a) in [("alpha-rack", self.alpha_rack), ("alpha-spine", self.alpha_spine)] {
            if !(a.is_finite() && a >= 0.0) {
                return Err(format!("--{name} must be a non-negative number, got {a}"));
            }
        }
        Ok(())
    }
}

/// The spread of `nodes` in a topology whose levels are `[spine, rack, hostname]`.
pub fn spread_of(topology: &Topology, nodes: &[NodeId]) -> Spread {
    let Some((&first, rest)) = nodes.split_first() else { return Spread::SingleNode };
    let same_at = |level: usize| {
        let d = topology.domain_of(first, level);
        rest.iter().all(|&n| topology.domain_of(n, level) == d)
    };
    if rest.iter().all(|&n| n == first) {
        Spread::SingleNode
    } else if same_at(1) {
        Spread::Rack
    } else if same_at(0) {
        Spread::CrossRack
    } else {
        Spread::CrossSpine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::cluster::{ClusterSpec, RACK_LABEL, SPINE_LABEL};
    use mlsched::topology::HOSTNAME_LABEL;

    #[test]
    fn factors_follow_the_loosest_level() {
        let m = SlowdownModel::default();
        assert_eq!(m.factor(Spread::SingleNode), 1.0);
        assert_eq!(m.factor(Spread::Rack), 1.0);
        assert!((m.factor(Spread::CrossRack) - 1.3).abs() < 1e-12);
        assert!((m.factor(Spread::CrossSpine) - 1.6).abs() < 1e-12);
        assert!(SlowdownModel { alpha_rack: -0.1, alpha_spine: 0.0 }.validate().is_err());
        assert!(m.validate().is_ok());
    }

    #[test]
    fn spread_is_read_from_the_fat_tree() {
        // 4 nodes per rack, 2 racks per spine: nodes 0-3 rack 0, 4-7 rack 1 (spine 0), 8-11 rack 2 (spine 1).
        let nodes = "12x8x4x2".parse::<ClusterSpec>().unwrap().build();
        let topo = Topology::from_labels(&[SPINE_LABEL, RACK_LABEL, HOSTNAME_LABEL], &nodes).unwrap();
        assert_eq!(spread_of(&topo, &[]), Spread::SingleNode);
        assert_eq!(spread_of(&topo, &[3, 3]), Spread::SingleNode);
        assert_eq!(spread_of(&topo, &[0, 3]), Spread::Rack);
        assert_eq!(spread_of(&topo, &[0, 3, 5]), Spread::CrossRack);
        assert_eq!(spread_of(&topo, &[0, 9]), Spread::CrossSpine);
    }
}
