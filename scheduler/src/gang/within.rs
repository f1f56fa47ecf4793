//! One member placed through the normal framework, but only among the nodes of the domain the gang plan
//! chose: the profile's filters, its score plugins (`score_nodes`), `select_host`, and its GPU picker,
//! exactly as `schedule_one` does for the whole cluster, so GPU packing policies still apply inside a
//! rack.

use crate::core::gpu::best_fit_gpus;
use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::cycle::{score_nodes, select_host};
use crate::framework::{FailureReasons, Profile};

/// The node and GPUs the framework chose for `pod` among `candidates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChoice {
    pub node: NodeId,
    pub gpus: Vec<usize>,
}

/// The candidates every filter of `profile` accepts, and the reasons for the others.
pub fn feasible_among(profile: &Profile, snapshot: &Snapshot, pod: &Pod, candidates: &[NodeId]) -> (Vec<NodeId>, FailureReasons) {
    let mut feasible = Vec::with_capacity(candidates.len());
    let mut reasons = FailureReasons::new(candidates.len());
    let nodes = snapshot.nodes();
    'nodes: for &id in candidates {
        for filter in &profile.filters {
            if let Err(reason) = filter.filter(pod, &nodes[id]) {
                reasons.add(reason);
                continue 'nodes;
            }
        }
        feasible.push(id);
    }
    (feasible, reasons)
}

/// The framework's choice for `pod` among the already-filtered `feasible` nodes; `None` if there are
/// none or no GPUs fit on the chosen node.
pub fn choose_among(profile: &Profile, snapshot: &Snapshot, pod: &Pod, feasible: &[NodeId]) -> Option<MemberChoice> {
    let scored = score_nodes(profile, snapshot, pod, feasible);
    let (node, _) = select_host(snapshot, &scored)?;
    let picked = profile.gpu_picker.and_then(|i| profile.scores.get(i)?.plugin.pick_gpus(snapshot, pod, node));
    let gpus = match picked {
        Some(gpus) => gpus,
        None => best_fit_gpus(&snapshot.nodes()[node].gpus, &pod.gpu)?,
    };
    Some(MemberChoice { node, gpus })
}
