//! FGD, Fragmentation Gradient Descent (Weng et al., USENIX ATC '23): place each pod, node and GPU, where
//! the cluster's fragmentation (measured against the workload's typical shapes) grows least.
//!
//! The score is `sigmoid(-Δfrag / 1000) × 100` truncated to an integer, so an unchanged fragmentation
//! scores 50 and a reduction scores above it. Only the chosen node's fragmentation changes, so the node
//! delta is the cluster delta.

use super::score_memo::ScoreMemo;

use crate::core::{Node, NodeId, Pod, Snapshot};
use crate::frag::{FreeView, TypicalShapes, node_frag_milli};
use crate::framework::ScorePlugin;

pub struct FgdScore {
    typical: TypicalShapes,
    /// Scores by (node state, pod shape). Many nodes share a state (all idle nodes of a model, say), and
    /// a replay sees the same shapes again and again: this is what makes FGD fast enough for 10k nodes.
    memo: ScoreMemo,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The FGD score of the fragmentation change from `before` to `after` (milli-GPU).
pub fn fgd_score(before: f64, after: f64) -> i64 {
    (sigmoid((before - after) / 1000.0) * 100.0) as i64
}

/// FGD's score for `pod` on `node` and, for a GPU share, the GPU it should take.
pub fn evaluate(node: &Node, pod: &Pod, typical: &TypicalShapes) -> (i64, Option<usize>) {
    if pod.gpu.is_none() && pod.requests.cpu_milli == 0 {
        return (100, None);
    }
    let model = node.gpu_model().unwrap_or("");
    if !pod.gpu.is_none() && !pod.gpu.allows_model(model) {
        return (0, None);
    }
    let mut free: Vec<i64> = node.gpus.iter().map(|g| g.free_milli()).collect();
    let cpu_free = node.free_cpu_milli();
    let before = node_frag_milli(FreeView { cpu_free, gpu_free: &free, model }, typical);
    let cpu_after = cpu_free - pod.requests.cpu_milli;
    let milli = pod.gpu.milli_per_gpu;
    if pod.gpu.is_shared() {
        let mut best: Option<(i64, usize)> = None;
        for i in 0..free.len() {
            // GPUs with equal free milli give equal fragmentation; the lowest index is kept on ties.
            if free[i] < milli || free[..i].contains(&free[i]) {
                continue;
            }
            free[i] -= milli;
            let after = node_frag_milli(FreeView { cpu_free: cpu_after, gpu_free: &free, model }, typical);
            free[i] += milli;
            let score = fgd_score(before, after);
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, i));
            }
        }
        return best.map_or((0, None), |(s, i)| (s, Some(i)));
    }
    if !pod.gpu.is_none() {
        let mut order: Vec<usize> = (0..free.len()).filter(|&i| free[i] >= milli).collect();
        order.sort_by_key(|&i| free[i]);
        for &i in order.iter().take(pod.gpu.count as usize) {
            free[i] -= milli;
        }
    }
    let after = node_frag_milli(FreeView { cpu_free: cpu_after, gpu_free: &free, model }, typical);
    (fgd_score(before, after), None)
}

impl FgdScore {
    pub fn new(typical: TypicalShapes) -> Self {
        FgdScore { typical, memo: ScoreMemo::default() }
    }

    pub fn typical(&self) -> &TypicalShapes {
        &self.typical
    }

    fn cached_evaluate(&self, node: &Node, pod: &Pod) -> (i64, Option<usize>) {
        self.memo.get_or_compute(node, pod, || evaluate(node, pod, &self.typical))
    }
}

impl ScorePlugin for FgdScore {
    fn name(&self) -> &'static str {
        "FGDScore"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        self.cached_evaluate(&snapshot.nodes()[node], pod).0
    }

    fn pick_gpus(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Option<Vec<usize>> {
        // Whole GPUs: the lowest-index idle ones (the profile default); shares: FGD's own choice.
        self.cached_evaluate(&snapshot.nodes()[node], pod).1.map(|i| vec![i])
    }
}
