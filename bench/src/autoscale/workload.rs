//! One simulated workload: its pods as the API server would list them, and what the sidecar remembers of it
//! between periods. [`Workload::observe`] builds the decision's input the way the sidecar builds it from
//! the target, its pods and their PodMetrics: one container `app` per pod, its usage sampled from the load,
//! its p90 from the same [`UsageWindow`] the sidecar keeps.

use std::collections::BTreeMap;

use mlsched::core::{GpuRequest, MIB, NodeId, Pod, Resources, Snapshot};
use mlsched_autoscale::{ContainerSample, Headroom, PodSample, ReplicaHistory, Res, UsageWindow};

/// The one container of every simulated pod.
pub const CONTAINER: &str = "app";

/// A pod of the workload. `node` is `None` while it is pending (no node fits); it serves from `ready_at`.
#[derive(Debug, Clone)]
pub struct Replica {
    pub key: String,
    pub node: Option<NodeId>,
    pub cpu_milli: i64,
    pub ready_at: f64,
    /// It starts empty and copies the workload's state from the nearest ready replica once it is ready.
    pub needs_state: bool,
    /// Creation order, for the ReplicaSet's choice of which pods to remove.
    pub seq: usize,
}

impl Replica {
    pub fn ready(&self, t: f64) -> bool {
        self.node.is_some() && self.ready_at <= t
    }
}

/// The workload's pods and the controller's memory of it.
#[derive(Debug)]
pub struct Workload {
    pub name: String,
    /// Oldest first; index 0 is the primary of the sync model.
    pub replicas: Vec<Replica>,
    /// `spec.replicas` of the target.
    pub spec_replicas: u32,
    /// The pod template's CPU request (the recreate path rewrites it).
    pub template_milli: i64,
    /// The template's request before any recreate: the no-fight rule's baseline.
    pub baseline_milli: i64,
    pub memory_bytes: i64,
    /// The template carries `mlsched.io/near-workload` (written before the first scale-out).
    pub near_annotated: bool,
    /// A recreate rollout is replacing the pods that still run an old request.
    pub rollout: bool,
    pub usage: BTreeMap<String, UsageWindow>,
    pub replicas_history: ReplicaHistory,
    pub last_grow_at: Option<f64>,
    pub overload_since: Option<f64>,
    next_seq: usize,
}

/// What one period observed: the pods as the decision sees them, the scheduler's headroom, the baseline.
pub struct Observation {
    pub pods: Vec<PodSample>,
    pub headroom: Headroom,
    pub baseline: BTreeMap<String, Res>,
}

impl Workload {
    pub fn new(name: String, template_milli: i64, memory_gib: i64) -> Workload {
        Workload {
            name,
            replicas: Vec::new(),
            spec_replicas: 0,
            template_milli,
            baseline_milli: template_milli,
            memory_bytes: memory_gib * 1024 * MIB,
            near_annotated: false,
            rollout: false,
            usage: BTreeMap::new(),
            replicas_history: ReplicaHistory::default(),
            last_grow_at: None,
            overload_since: None,
            next_seq: 0,
        }
    }

    /// A new pod name and its creation rank.
    pub fn next_pod(&mut self) -> (String, usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (format!("{}/p{seq}", self.name), seq)
    }

    /// The core pod of one of the workload's pods: `cpu_milli` and the template's memory.
    pub fn pod(&self, key: &str, cpu_milli: i64) -> Pod {
        Pod::new(key, Resources::new(cpu_milli, self.memory_bytes, 1), GpuRequest::default())
    }

    pub fn capacity_milli(&self, t: f64) -> i64 {
        self.replicas.iter().filter(|r| r.ready(t)).map(|r| r.cpu_milli).sum()
    }

    /// The scheduler's `near_nodes` for a new pod of the workload: the nodes of the placed pods, one entry
    /// per pod, once the template carries the near-workload annotation; none before.
    pub fn near_nodes(&self, snapshot: &Snapshot) -> Vec<String> {
        if !self.near_annotated {
            return Vec::new();
        }
        self.replicas.iter().filter_map(|r| r.node).map(|n| snapshot.nodes()[n].name.clone()).collect()
    }

    /// Samples usage and builds the decision's input. A ready pod uses `utilization` of its request (limit =
    /// request, so never more) and half its memory; a pod that is not ready has no PodMetrics yet.
    pub fn observe(
        &mut self,
        snapshot: &Snapshot,
        t: f64,
        utilization: f64,
        history_s: f64,
        ask_headroom: bool,
    ) -> Observation {
        let live: Vec<&str> = self.replicas.iter().map(|r| r.key.as_str()).collect();
        self.usage.retain(|k, _| live.contains(&k.as_str()));
        let mut pods = Vec::with_capacity(self.replicas.len());
        for r in &self.replicas {
            let usage =
                r.ready(t).then(|| Res::new((r.cpu_milli as f64 * utilization).round() as i64, self.memory_bytes / 2));
            let window = self.usage.entry(r.key.clone()).or_default();
            window.observe(t, usage, history_s);
            let request = Res::new(r.cpu_milli, self.memory_bytes);
            pods.push(PodSample {
                name: r.key.clone(),
                node: r.node.map(|n| snapshot.nodes()[n].name.clone()).unwrap_or_default(),
                containers: vec![ContainerSample {
                    name: CONTAINER.into(),
                    request,
                    limit_cpu: Some(request.cpu),
                    limit_mem: Some(request.mem),
                    usage,
                    p90: window.p90(),
                    oom_killed: false,
                }],
                resizing: false,
            });
        }
        let headroom = if ask_headroom {
            Headroom::Known(
                self.replicas
                    .iter()
                    .filter_map(|r| {
                        let node = &snapshot.nodes()[r.node?];
                        let free = Res::new(node.free_cpu_milli(), node.free_memory_bytes());
                        Some((r.key.clone(), (node.name.clone(), free)))
                    })
                    .collect(),
            )
        } else {
            Headroom::NotAsked
        };
        let baseline = BTreeMap::from([(CONTAINER.to_string(), Res::new(self.baseline_milli, self.memory_bytes))]);
        Observation { pods, headroom, baseline }
    }

    /// Indices of `n` pods in the order a ReplicaSet removes them: pending first, then not ready, then the
    /// newest.
    pub fn removal_order(&self, t: f64, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.replicas.len()).collect();
        order.sort_by_key(|&i| {
            let r = &self.replicas[i];
            (r.node.is_some(), r.ready(t), std::cmp::Reverse(r.seq))
        });
        order.truncate(n);
        order
    }
}
