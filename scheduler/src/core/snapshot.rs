//! The in-memory cluster snapshot every decision is made on.
//!
//! `assume` books a pod onto a node and specific GPUs; `forget` undoes it exactly. Both check everything
//! they touch, so a decision can be tried and rolled back (a gang is tried member by member, then kept or
//! forgotten as a whole) without the accounting ever drifting.

use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;
use thiserror::Error;

use super::gpu::GpuAssignment;
use super::mig::{MigInstance, MigState};
use super::node::{Node, NodeId};
use super::pod::Pod;
use super::resources::{ResourceError, Resources};
use crate::framework::Decision;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("pod {0} is already placed")]
    AlreadyPlaced(String),
    #[error("pod {0} is not placed")]
    NotPlaced(String),
    #[error("no node with id {0}")]
    NoSuchNode(NodeId),
    #[error("node {node} already has a node named like it")]
    DuplicateNode { node: String },
    #[error("pod {pod} on node {node}: {source}")]
    Resources { pod: String, node: String, source: ResourceError },
    #[error("pod {pod} on node {node}: {reason}")]
    Gpu { pod: String, node: String, reason: String },
}

/// Where a pod is placed and what it holds there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: NodeId,
    pub requests: Resources,
    pub gpus: GpuAssignment,
}

impl Placement {
    /// Gives what this placement holds back to `node` (the node it is on): requests, GPU shares, MIG
    /// instances. `Snapshot::forget` does it on the snapshot; a planner can do it on a copy of one node.
    pub fn release_from(&self, node: &mut Node) -> Result<(), ResourceError> {
        node.requested = node.requested.checked_sub(&self.requests)?;
        for &(i, milli) in &self.gpus.devices {
            node.gpus[i].used_milli -= milli;
        }
        for &(i, instance) in &self.gpus.mig {
            if let Some(state) = node.gpus[i].mig.as_mut() {
                state.release(instance);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: Vec<Node>,
    by_name: FxHashMap<String, NodeId>,
    placements: FxHashMap<String, Placement>,
    /// The pods placed on each node, for policies that look at who a node's neighbours are.
    pods_by_node: Vec<Vec<String>>,
    /// A fresh stamp on every change to a node, so caches keyed by node can tell stale entries.
    node_versions: Vec<u64>,
    /// By block of [`NODE_BLOCK`] consecutive node ids: the stamp of the block's latest change, so caches
    /// can skip whole blocks that did not change.
    block_versions: Vec<u64>,
    /// A fresh stamp whenever a node is added, so caches can tell a different node list.
    layout: u64,
}

/// How many consecutive node ids share one entry of [`Snapshot::block_versions`].
pub const NODE_BLOCK: usize = 64;

/// Stamps are unique in the process, not per snapshot: a cache filled from one snapshot can never take a
/// node of a rebuilt snapshot, or of a clone that changed since, for the node it saw, because no two
/// different node states ever carry the same stamp.
static STAMPS: AtomicU64 = AtomicU64::new(1);

fn fresh_stamp() -> u64 {
    STAMPS.fetch_add(1, Ordering::Relaxed)
}

impl Snapshot {
    pub fn new(nodes: Vec<Node>) -> Result<Self, SnapshotError> {
        let mut snapshot = Snapshot::default();
        for node in nodes {
            snapshot.add_node(node)?;
        }
        Ok(snapshot)
    }

    pub fn add_node(&mut self, node: Node) -> Result<NodeId, SnapshotError> {
        if self.by_name.contains_key(&node.name) {
            return Err(SnapshotError::DuplicateNode { node: node.name });
        }
        let id = self.nodes.len();
        self.by_name.insert(node.name.clone(), id);
        self.nodes.push(node);
        self.node_versions.push(0);
        if id.is_multiple_of(NODE_BLOCK) {
            self.block_versions.push(0);
        }
        self.touch(id);
        self.layout = fresh_stamp();
        self.pods_by_node.push(Vec::new());
        Ok(id)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// The stamp of `id`'s current state: equal stamps mean the node, and the pods on it, are the same.
    pub fn node_version(&self, id: NodeId) -> u64 {
        self.node_versions[id]
    }

    /// The stamps of every node, by id.
    pub fn node_versions(&self) -> &[u64] {
        &self.node_versions
    }

    /// The stamp of each block of [`NODE_BLOCK`] node ids: equal stamps mean no node of the block changed.
    pub fn block_versions(&self) -> &[u64] {
        &self.block_versions
    }

    /// Gives `node` (and its block) a fresh stamp: call on every change to a node or its pods.
    fn touch(&mut self, node: NodeId) {
        let stamp = fresh_stamp();
        self.node_versions[node] = stamp;
        self.block_versions[node / NODE_BLOCK] = stamp;
    }

    /// The stamp of the node list: equal stamps mean the same nodes under the same ids.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    pub fn placement(&self, pod_key: &str) -> Option<&Placement> {
        self.placements.get(pod_key)
    }

    /// Keys and placements of the pods on `node`.
    pub fn pods_on(&self, node: NodeId) -> impl Iterator<Item = (&str, &Placement)> {
        self.pods_by_node[node].iter().map(|k| (k.as_str(), &self.placements[k]))
    }

    pub fn placed_pods(&self) -> usize {
        self.placements.len()
    }

    pub fn placements(&self) -> impl Iterator<Item = (&str, &Placement)> {
        self.placements.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// Books `pod` on `node`, taking `pod.gpu.milli_per_gpu` from each GPU index in `gpus`.
    pub fn assume(&mut self, pod: &Pod, node_id: NodeId, gpus: &[usize]) -> Result<(), SnapshotError> {
        self.assume_with_mig(pod, node_id, gpus, &[])
    }

    /// Books a scheduling decision: node, GPUs and MIG instances.
    pub fn assume_decision(&mut self, pod: &Pod, decision: &Decision) -> Result<(), SnapshotError> {
        self.assume_with_mig(pod, decision.node, &decision.gpus, &decision.mig)
    }

    /// Books `pod` on `node` with GPU shares on `gpus` and the MIG instances `mig` (GPU index, instance).
    pub fn assume_with_mig(
        &mut self,
        pod: &Pod,
        node_id: NodeId,
        gpus: &[usize],
        mig: &[(usize, MigInstance)],
    ) -> Result<(), SnapshotError> {
        if self.placements.contains_key(&pod.key) {
            return Err(SnapshotError::AlreadyPlaced(pod.key.clone()));
        }
        let node = self.nodes.get_mut(node_id).ok_or(SnapshotError::NoSuchNode(node_id))?;
        let gpu_err = |reason: String| SnapshotError::Gpu { pod: pod.key.clone(), node: node.name.clone(), reason };
        let wanted = if pod.gpu.is_none() { 0 } else { pod.gpu.count as usize };
        if gpus.len() != wanted {
            return Err(gpu_err(format!("needs {wanted} GPU(s), was given {}", gpus.len())));
        }
        for (n, &i) in gpus.iter().enumerate() {
            let Some(gpu) = node.gpus.get(i) else { return Err(gpu_err(format!("has no GPU {i}"))) };
            if gpu.mig.is_some() {
                return Err(gpu_err(format!("GPU {i} is MIG-enabled")));
            }
            if gpus[..n].contains(&i) {
                return Err(gpu_err(format!("GPU {i} given twice")));
            }
            if gpu.free_milli() < pod.gpu.milli_per_gpu {
                return Err(gpu_err(format!(
                    "GPU {i} has {} milli free, needs {}",
                    gpu.free_milli(),
                    pod.gpu.milli_per_gpu
                )));
            }
            if !pod.gpu.allows_model(&gpu.model) {
                return Err(gpu_err(format!("GPU {i} is a {}, not an allowed model", gpu.model)));
            }
        }
        let wanted_mig = pod.mig.as_ref().map_or(0, |m| m.count as usize);
        if mig.len() != wanted_mig {
            return Err(gpu_err(format!("needs {wanted_mig} MIG instance(s), was given {}", mig.len())));
        }
        let mut trial: Vec<(usize, MigState)> = Vec::new();
        for &(i, instance) in mig {
            let profile_ok = |state: &MigState| {
                pod.mig.as_ref().and_then(|m| state.geometry.profile(&m.profile)) == Some(instance.profile as usize)
            };
            let state = match trial.iter_mut().find(|(g, _)| *g == i) {
                Some((_, s)) => s,
                None => {
                    let Some(state) = node.gpus.get(i).and_then(|g| g.mig.clone()) else {
                        return Err(gpu_err(format!("GPU {i} is not MIG-enabled")));
                    };
                    trial.push((i, state));
                    &mut trial.last_mut().expect("just pushed").1
                }
            };
            if !profile_ok(state) {
                return Err(gpu_err(format!("MIG instance on GPU {i} is not the requested profile")));
            }
            state.place(instance).map_err(|e| gpu_err(format!("GPU {i}: {e}")))?;
        }
        let requested = node.requested.checked_add(&pod.requests).map_err(|source| SnapshotError::Resources {
            pod: pod.key.clone(),
            node: node.name.clone(),
            source,
        })?;
        if let Some(short) = node.allocatable.insufficient(&requested).first() {
            let source = ResourceError::Negative {
                resource: short.to_string(),
                have: node.free().entries().find(|(n, _)| n == short).map_or(0, |(_, v)| v),
                take: pod.requests.entries().find(|(n, _)| n == short).map_or(0, |(_, v)| v),
            };
            return Err(SnapshotError::Resources { pod: pod.key.clone(), node: node.name.clone(), source });
        }
        node.requested = requested;
        let mut assignment = GpuAssignment::default();
        for &i in gpus {
            node.gpus[i].used_milli += pod.gpu.milli_per_gpu;
            assignment.devices.push((i, pod.gpu.milli_per_gpu));
        }
        for (i, state) in trial {
            node.gpus[i].mig = Some(state);
        }
        assignment.mig = mig.to_vec();
        self.touch(node_id);
        self.pods_by_node[node_id].push(pod.key.clone());
        self.placements
            .insert(pod.key.clone(), Placement { node: node_id, requests: pod.requests.clone(), gpus: assignment });
        Ok(())
    }

    /// Books a pod the cluster already runs on `node`, whoever placed it. Unlike `assume` it never refuses
    /// for capacity: a node can be over-committed (it shrank, or another scheduler or a resize filled it),
    /// and the accounting must show that, so that no room is offered that is not there. The GPU indices
    /// must exist on the node; their shares may exceed a device's capacity.
    pub fn record_running(&mut self, pod: &Pod, node_id: NodeId, gpus: &[usize]) -> Result<(), SnapshotError> {
        if self.placements.contains_key(&pod.key) {
            return Err(SnapshotError::AlreadyPlaced(pod.key.clone()));
        }
        let node = self.nodes.get_mut(node_id).ok_or(SnapshotError::NoSuchNode(node_id))?;
        let gpu_err = |reason: String| SnapshotError::Gpu { pod: pod.key.clone(), node: node.name.clone(), reason };
        for (n, &i) in gpus.iter().enumerate() {
            if i >= node.gpus.len() || gpus[..n].contains(&i) {
                return Err(gpu_err(format!("GPU {i} does not exist or is given twice")));
            }
        }
        node.requested = node.requested.checked_add(&pod.requests).map_err(|source| SnapshotError::Resources {
            pod: pod.key.clone(),
            node: node.name.clone(),
            source,
        })?;
        let mut assignment = GpuAssignment::default();
        for &i in gpus {
            node.gpus[i].used_milli += pod.gpu.milli_per_gpu;
            assignment.devices.push((i, pod.gpu.milli_per_gpu));
        }
        self.touch(node_id);
        self.pods_by_node[node_id].push(pod.key.clone());
        self.placements
            .insert(pod.key.clone(), Placement { node: node_id, requests: pod.requests.clone(), gpus: assignment });
        Ok(())
    }

    /// Undoes `assume` (or removes a pod that left): gives back its resources and GPU shares.
    pub fn forget(&mut self, pod_key: &str) -> Result<Placement, SnapshotError> {
        let placement = self.placements.remove(pod_key).ok_or_else(|| SnapshotError::NotPlaced(pod_key.to_string()))?;
        let node = &mut self.nodes[placement.node];
        placement.release_from(node).map_err(|source| SnapshotError::Resources {
            pod: pod_key.to_string(),
            node: node.name.clone(),
            source,
        })?;
        self.touch(placement.node);
        let on_node = &mut self.pods_by_node[placement.node];
        if let Some(i) = on_node.iter().position(|k| k == pod_key) {
            on_node.swap_remove(i);
        }
        Ok(placement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gpu::GpuRequest;
    use crate::core::resources::MIB;

    fn cluster() -> Snapshot {
        Snapshot::new(vec![
            Node::new("a", Resources::new(8000, 64 * MIB, 110)).with_gpus(2, "V100"),
            Node::new("b", Resources::new(4000, 32 * MIB, 110)),
        ])
        .unwrap()
    }

    #[test]
    fn assume_takes_the_named_devices_and_forget_gives_them_back() {
        let mut s = cluster();
        let before = s.node(0).unwrap().clone();
        let pod = Pod::new("ns/p", Resources::new(2000, 4 * MIB, 1), GpuRequest::shared(300));
        s.assume(&pod, 0, &[1]).unwrap();
        let node = s.node(0).unwrap();
        assert_eq!(node.gpus[0].used_milli, 0);
        assert_eq!(node.gpus[1].used_milli, 300);
        assert_eq!(node.requested.cpu_milli, 2000);
        assert_eq!(s.placement("ns/p").unwrap().gpus.devices, vec![(1, 300)]);
        assert_eq!(s.pods_on(0).map(|(k, _)| k).collect::<Vec<_>>(), vec!["ns/p"]);
        let v = s.node_version(0);
        let placement = s.forget("ns/p").unwrap();
        assert_eq!(placement.node, 0);
        assert_eq!(s.node(0).unwrap(), &before);
        assert!(s.node_version(0) > v);
        assert_eq!(s.pods_on(0).count(), 0);
        assert_eq!(s.forget("ns/p"), Err(SnapshotError::NotPlaced("ns/p".into())));
    }

    #[test]
    fn assume_refuses_overcommit_and_leaves_the_node_untouched() {
        let mut s = cluster();
        let a = Pod::new("a", Resources::new(1000, MIB, 1), GpuRequest::shared(700));
        s.assume(&a, 0, &[0]).unwrap();
        let snapshot_after_a = s.node(0).unwrap().clone();
        let b = Pod::new("b", Resources::new(1000, MIB, 1), GpuRequest::shared(400));
        assert!(matches!(s.assume(&b, 0, &[0]), Err(SnapshotError::Gpu { .. })));
        let big = Pod::new("big", Resources::new(8000, MIB, 1), GpuRequest::none());
        assert!(matches!(s.assume(&big, 0, &[]), Err(SnapshotError::Resources { .. })));
        let twice = Pod::new("t", Resources::new(1, 1, 1), GpuRequest::whole(2));
        assert!(matches!(s.assume(&twice, 0, &[1, 1]), Err(SnapshotError::Gpu { .. })));
        assert!(matches!(s.assume(&a, 1, &[]), Err(SnapshotError::AlreadyPlaced(_))));
        assert_eq!(s.node(0).unwrap(), &snapshot_after_a);
    }

    #[test]
    fn whole_gpu_pods_take_whole_devices_and_model_is_checked() {
        let mut s = cluster();
        let t4_only = Pod::new("m", Resources::new(1, 1, 1), GpuRequest::whole(1).with_models(vec!["T4".into()]));
        assert!(matches!(s.assume(&t4_only, 0, &[0]), Err(SnapshotError::Gpu { .. })));
        let two = Pod::new("two", Resources::new(1, 1, 1), GpuRequest::whole(2));
        assert!(s.assume(&two, 0, &[0]).is_err(), "a 2-GPU pod given one device is refused");
        s.assume(&two, 0, &[0, 1]).unwrap();
        assert_eq!(s.node(0).unwrap().gpu_free_milli(), 0);
        assert_eq!(s.node(0).unwrap().idle_gpus(), 0);
    }

    #[test]
    fn mig_instances_are_carved_and_released_exactly() {
        use crate::core::MigRequest;
        let node = Node::new("m", Resources::new(8000, 64 * MIB, 110)).with_mig_gpus(2, "A100-80GB").unwrap();
        let mut s = Snapshot::new(vec![node]).unwrap();
        let before = s.node(0).unwrap().clone();
        let mut pod = Pod::new("ns/mig", Resources::new(100, MIB, 1), GpuRequest::none());
        pod.mig = Some(MigRequest { profile: "3g.40gb".into(), count: 2 });
        let three_g = MigInstance { profile: 3, start: 0 };
        assert!(s.assume(&pod, 0, &[]).is_err(), "a MIG pod needs its instances");
        assert!(s.assume_with_mig(&pod, 0, &[], &[(0, three_g), (0, three_g)]).is_err(), "overlapping instances");
        assert!(s.assume_with_mig(&pod, 0, &[], &[(0, MigInstance { profile: 1, start: 0 }), (0, three_g)]).is_err());
        assert_eq!(s.node(0).unwrap(), &before, "failed assumes leave the node untouched");
        s.assume_with_mig(&pod, 0, &[], &[(0, three_g), (0, MigInstance { profile: 3, start: 4 })]).unwrap();
        assert_eq!(s.node(0).unwrap().gpus[0].mig.as_ref().unwrap().free_slices(), 0);
        assert!(s.node(0).unwrap().gpus[1].is_idle());
        s.forget("ns/mig").unwrap();
        assert_eq!(s.node(0).unwrap(), &before);
        let whole = Pod::new("w", Resources::new(1, 1, 1), GpuRequest::whole(1));
        assert!(matches!(s.assume(&whole, 0, &[0]), Err(SnapshotError::Gpu { .. })), "MIG GPUs serve MIG only");
    }

    #[test]
    fn running_pods_are_recorded_even_past_capacity_and_leave_no_room() {
        let mut s = cluster();
        let big = Pod::new("ns/big", Resources::new(6000, MIB, 1), GpuRequest::whole(2));
        s.assume(&big, 0, &[0, 1]).unwrap();
        // Another scheduler put a second pod there: the node is over-committed, and the snapshot says so.
        let extra = Pod::new("ns/extra", Resources::new(4000, MIB, 1), GpuRequest::whole(1));
        assert!(s.assume(&extra, 0, &[0]).is_err());
        s.record_running(&extra, 0, &[0]).unwrap();
        let node = s.node(0).unwrap();
        assert_eq!(node.free_cpu_milli(), -2000);
        assert_eq!(node.free().cpu_milli, 0);
        assert_eq!(node.gpus[0].free_milli(), 0, "an over-used GPU has nothing free");
        let small = Pod::new("ns/small", Resources::new(1, 1, 1), GpuRequest::none());
        assert!(s.assume(&small, 0, &[]).is_err(), "no room is offered on an over-committed node");
        assert!(matches!(s.record_running(&extra, 0, &[]), Err(SnapshotError::AlreadyPlaced(_))));
        assert!(s.record_running(&Pod::new("x", Resources::default(), GpuRequest::whole(1)), 0, &[9]).is_err());
        s.forget("ns/extra").unwrap();
        assert_eq!(s.node(0).unwrap().free_cpu_milli(), 2000);
    }

    #[test]
    fn duplicate_node_names_are_refused() {
        let err = Snapshot::new(vec![Node::new("x", Resources::default()), Node::new("x", Resources::default())])
            .unwrap_err();
        assert_eq!(err, SnapshotError::DuplicateNode { node: "x".into() });
    }
}
