//! Placements made knowing every pod in advance, to show how close to the bound a placement is known to
//! get: the GPU pods that arrived, in arrival order or largest first (GPU, then share, then CPU), placed one
//! by one by a packing policy of the scheduling core. CPU-only pods are left out: the bound's relaxation
//! may leave them out too, and they only take room from GPU pods.

use std::cmp::Reverse;

use mlsched::core::{Node, Snapshot};
use mlsched::frag::TypicalShapes;
use mlsched::framework::schedule_one;
use mlsched::plugins::policy::{Policy, PolicyInputs, profile_for};
use serde::Serialize;

use crate::trace::TracePod;

/// The policies tried offline.
pub const OFFLINE_POLICIES: [Policy; 3] = [Policy::BestFit, Policy::Fgd, Policy::Mlsched];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Order {
    Arrival,
    LargestFirst,
}

/// GPU milli placed by one policy on the GPU pods in one order.
pub fn place(
    nodes: &[Node],
    pods: &[TracePod],
    order: Order,
    policy: Policy,
    typical: &TypicalShapes,
    seed: u64,
) -> i64 {
    let mut gpu_pods: Vec<&TracePod> = pods.iter().filter(|p| p.gpu_milli_total > 0).collect();
    if order == Order::LargestFirst {
        gpu_pods.sort_by_key(|p| {
            (Reverse(p.gpu_milli_total), Reverse(p.pod.gpu.milli_per_gpu), Reverse(p.pod.requests.cpu_milli))
        });
    }
    let mut snapshot = Snapshot::new(nodes.to_vec()).expect("the trace's node names are unique");
    let mut profile = profile_for(policy, PolicyInputs { seed, typical: typical.clone() });
    let mut placed = 0;
    for p in gpu_pods {
        // mlsched re-measures the competition for shares as pods arrive; it must see them arrive.
        profile.observe_arrival(&p.pod);
        if let Ok(decision) = schedule_one(&profile, &snapshot, &p.pod) {
            snapshot.assume_decision(&p.pod, &decision).expect("a feasible decision can be assumed");
            placed += p.gpu_milli_total;
        }
    }
    placed
}

/// The best of every order × [`OFFLINE_POLICIES`]: how it was made and the GPU milli it placed.
pub fn best_offline(nodes: &[Node], pods: &[TracePod], typical: &TypicalShapes, seed: u64) -> (String, i64) {
    [Order::Arrival, Order::LargestFirst]
        .iter()
        .flat_map(|&order| OFFLINE_POLICIES.iter().map(move |&policy| (order, policy)))
        .map(|(order, policy)| (format!("{policy}, {order:?}"), place(nodes, pods, order, policy, typical, seed)))
        .max_by_key(|(_, placed)| *placed)
        .expect("at least one placement")
}
