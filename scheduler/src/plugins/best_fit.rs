//! BestFit: the node with the least CPU and GPU left after placing the pod (equal weights, each scaled by
//! the largest node of the trace).

use super::dot_product::{MAX_NODE_CPU_MILLI, MAX_NODE_GPU_MILLI};
use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::{NormalizeScore, ScorePlugin};

pub struct BestFitScore;

impl ScorePlugin for BestFitScore {
    fn name(&self) -> &'static str {
        "BestFitScore"
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        let node = &snapshot.nodes()[node];
        let cpu_left = node.free_cpu_milli() - pod.requests.cpu_milli;
        let gpu_left = node.gpu_free_milli() - pod.gpu.total_milli();
        if cpu_left < 0 || gpu_left < 0 {
            return 0;
        }
        let left = 0.5 * cpu_left as f64 / MAX_NODE_CPU_MILLI + 0.5 * gpu_left as f64 / MAX_NODE_GPU_MILLI;
        ((1.0 - left) * 100.0) as i64
    }

    fn normalizer(&self) -> Option<&dyn NormalizeScore> {
        Some(self)
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }
}

impl NormalizeScore for BestFitScore {
    /// Min-max to 0..=100 (all equal: all 0). Raw scores already span at most 100, so this keeps the
    /// order and adds no ties.
    fn normalize(&self, scores: &mut [(NodeId, i64)]) {
        let (Some(lo), Some(hi)) = (scores.iter().map(|s| s.1).min(), scores.iter().map(|s| s.1).max()) else { return };
        for s in scores.iter_mut() {
            s.1 = if hi == lo { 0 } else { (s.1 - lo) * 100 / (hi - lo) };
        }
    }
}
