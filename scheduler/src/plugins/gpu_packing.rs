//! GpuPacking: prefer GPUs that are already partly used, then used nodes, and break up an idle node last.
//! The three tiers are score bands: only-shared-GPUs in 50..=100 (fuller GPUs higher), needs idle GPUs
//! on a used node in 33..=50, an entirely idle node below 33.

use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::ScorePlugin;

pub struct GpuPackingScore;

impl ScorePlugin for GpuPackingScore {
    fn name(&self) -> &'static str {
        "GpuPackingScore"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        if pod.gpu.is_none() {
            return 0;
        }
        let gpus = &snapshot.nodes()[node].gpus;
        let idle = gpus.iter().filter(|g| g.is_idle()).count() as i64;
        if idle == gpus.len() as i64 {
            return (33 - idle).max(idle);
        }
        let mut order: Vec<usize> = (0..gpus.len()).collect();
        order.sort_by_key(|&i| gpus[i].free_milli());
        let taken: Vec<usize> = order
            .into_iter()
            .filter(|&i| gpus[i].free_milli() >= pod.gpu.milli_per_gpu)
            .take(pod.gpu.count as usize)
            .collect();
        if taken.len() < pod.gpu.count as usize {
            return 0;
        }
        let idle_taken = taken.iter().filter(|&&i| gpus[i].is_idle()).count() as i64;
        if idle_taken > 0 {
            return (50 - idle_taken).max(33);
        }
        let free_pct: i64 = taken.iter().map(|&i| gpus[i].free_milli() * 100 / 1000).sum();
        (100 - free_pct / 10).max(50)
    }
}
