//! DotProd: prefers the node whose free (CPU, GPU) vector is least aligned with the request, each dimension
//! scaled by the largest node of the trace (128 CPUs, 8 GPUs), as in the FGD paper's baseline.

use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::ScorePlugin;

pub const MAX_NODE_CPU_MILLI: f64 = 128_000.0;
pub const MAX_NODE_GPU_MILLI: f64 = 8_000.0;

pub struct DotProductScore;

impl ScorePlugin for DotProductScore {
    fn name(&self) -> &'static str {
        "DotProductScore"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        let node = &snapshot.nodes()[node];
        let cpu_free = node.free_cpu_milli();
        if cpu_free < pod.requests.cpu_milli {
            return 0;
        }
        let dot = (cpu_free as f64 / MAX_NODE_CPU_MILLI) * (pod.requests.cpu_milli as f64 / MAX_NODE_CPU_MILLI)
            + (node.gpu_free_milli() as f64 / MAX_NODE_GPU_MILLI) * (pod.gpu.total_milli() as f64 / MAX_NODE_GPU_MILLI);
        // Truncation, not rounding: the coarse integer scores and their ties are part of the policy.
        (100.0 * (1.0 - dot / 2.0)) as i64
    }
}
