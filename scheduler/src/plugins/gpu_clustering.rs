//! GpuClustering: put pods with the same kind of GPU request together (shares with shares, 4-GPU pods
//! with 4-GPU pods), and fuller nodes first within each tier.

use crate::core::{GPU_MILLI, GpuRequest, NodeId, Pod, Snapshot};
use crate::framework::ScorePlugin;

pub struct GpuClusteringScore;

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Shared,
    Whole(u32),
}

fn kind(gpu: &GpuRequest) -> Option<Kind> {
    if gpu.is_none() {
        None
    } else if gpu.is_shared() {
        Some(Kind::Shared)
    } else {
        Some(Kind::Whole(gpu.count))
    }
}

fn kind_of_placement(devices: &[(usize, i64)]) -> Option<Kind> {
    match devices {
        [] => None,
        [(_, milli)] if *milli < GPU_MILLI => Some(Kind::Shared),
        all => Some(Kind::Whole(all.len() as u32)),
    }
}

impl ScorePlugin for GpuClusteringScore {
    fn name(&self) -> &'static str {
        "GpuClusteringScore"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node_id: NodeId) -> i64 {
        let Some(wanted) = kind(&pod.gpu) else { return 0 };
        let node = &snapshot.nodes()[node_id];
        let base = 25 * (8 * GPU_MILLI - node.gpu_free_milli()) / (8 * GPU_MILLI);
        let (mut same, mut other) = (false, false);
        for (_, placement) in snapshot.pods_on(node_id) {
            match kind_of_placement(&placement.gpus.devices) {
                Some(k) if k == wanted => same = true,
                Some(_) => other = true,
                None => {}
            }
        }
        match (same, other) {
            (true, false) => base + 75,
            (true, true) => base + 50,
            (false, false) => base + 25,
            (false, true) => base,
        }
    }
}
