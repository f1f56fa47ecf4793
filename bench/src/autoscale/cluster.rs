//! The simulated cluster of `mlsim autoscale run`: a generated tree of nodes, and the two schedulers that
//! place pods on it. The hybrid modes run mlsched's own scheduler profile, the one the live scheduler
//! builds from its default config ([`scheduler_profile`]: the default policy plus `NetworkProximityScore`,
//! which pulls pods carrying `mlsched.io/near-workload` towards their workload's nodes). The HPA and VPA
//! baselines run kube-scheduler's default NodeResourcesFit scoring, LeastAllocated (CPU and memory weight 1),
//! with the core's filters; kube's other default scorers (BalancedAllocation, soft PodTopologySpread,
//! ImageLocality) are left out.

use mlsched::core::{MIB, Node, NodeId, Pod, Resources, Snapshot};
use mlsched::framework::{Profile, ScorePlugin, schedule_one};
use mlsched::plugins::NetworkProximityScore;
use mlsched::plugins::policy::{
    DEFAULT_POLICY, DEFAULT_SCORE_WEIGHT, PolicyInputs, default_filters, scheduler_profile,
};
use mlsched::topology::HOSTNAME_LABEL;

use super::run::RunConfig;
use crate::jobs::cluster::{RACK_LABEL, SPINE_LABEL};

/// The topology levels, top down, as the scheduler's default `topologyLevels`.
pub const LEVELS: [&str; 3] = [SPINE_LABEL, RACK_LABEL, HOSTNAME_LABEL];

/// kube-scheduler's default NodeResourcesFit score: LeastAllocated, CPU and memory weight 1, 0..100.
pub struct LeastAllocated;

impl ScorePlugin for LeastAllocated {
    fn name(&self) -> &'static str {
        "LeastAllocated"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        let n = &snapshot.nodes()[node];
        let frac =
            |free: i64, want: i64, cap: i64| if cap <= 0 { 0.0 } else { (free - want).max(0) as f64 / cap as f64 };
        let cpu = frac(n.free_cpu_milli(), pod.requests.cpu_milli, n.allocatable.cpu_milli);
        let mem = frac(n.free_memory_bytes(), pod.requests.memory_bytes, n.allocatable.memory_bytes);
        ((cpu + mem) * 50.0).round() as i64
    }
}

/// Which scheduler places a mode's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// mlsched with its default config; `near-workload` pods are placed near their workload.
    Mlsched,
    /// kube-scheduler's default scoring; it knows nothing of workloads.
    KubeDefault,
}

/// A scheduler with its profile, placing one pod at a time on the snapshot as the live scheduler does.
pub struct Placer {
    profile: Profile,
    scheduler: Scheduler,
}

impl Placer {
    pub fn new(scheduler: Scheduler) -> anyhow::Result<Placer> {
        let profile = match scheduler {
            Scheduler::Mlsched => {
                let proximity = NetworkProximityScore::from_labels(&LEVELS)?;
                scheduler_profile(DEFAULT_POLICY, PolicyInputs::default(), DEFAULT_SCORE_WEIGHT, Some(proximity))
            }
            Scheduler::KubeDefault => default_filters(Profile::new("kube-default")).score(LeastAllocated, 1),
        };
        Ok(Placer { profile, scheduler })
    }

    /// Places `pod` and books it on `snapshot`; `None` when no node fits. `near_nodes` are the nodes of the
    /// workload's pods, used only by mlsched and only for pods whose template carries `near-workload`.
    /// `arrival`: the pod is new (the live scheduler shows a pod to its learning policy once, not per retry).
    pub fn place(
        &mut self,
        snapshot: &mut Snapshot,
        mut pod: Pod,
        near_nodes: Vec<String>,
        arrival: bool,
    ) -> Option<NodeId> {
        if self.scheduler == Scheduler::Mlsched {
            pod.near_nodes = near_nodes;
            pod.near_nodes.sort();
        }
        if arrival {
            self.profile.observe_arrival(&pod);
        }
        let decision = schedule_one(&self.profile, snapshot, &pod).ok()?;
        snapshot.assume_decision(&pod, &decision).ok()?;
        Some(decision.node)
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `nodes` nodes, `nodes_per_rack` per rack, `racks_per_spine` per spine, with hashed names (the name
/// tie-break does not follow racks).
pub fn build_nodes(cfg: &RunConfig) -> Vec<Node> {
    (0..cfg.nodes)
        .map(|i| {
            let rack = i / cfg.nodes_per_rack;
            let spine = rack / cfg.racks_per_spine;
            let name = format!("n{:016x}", splitmix64(i as u64));
            Node::new(name.clone(), Resources::new(cfg.node_cpu_milli, cfg.node_memory_gib * 1024 * MIB, 110))
                .with_label(SPINE_LABEL, format!("s{spine}"))
                .with_label(RACK_LABEL, format!("s{spine}-r{rack}"))
                .with_label(HOSTNAME_LABEL, name)
        })
        .collect()
}
