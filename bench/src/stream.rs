//! The pod stream of a replay, built as the FGD paper's simulator built it: pods sorted by name, shuffled
//! with the seed, then "tuned" so the stream's GPU request reaches `tune ×` the cluster's GPU capacity,
//! and the node priority order used to break score ties.

use mlsched::core::Node;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::trace::TracePod;

/// The stream the FGD paper's runs were tuned to: 1.3x the cluster's GPU capacity.
pub const PAPER_TUNE: f64 = 1.3;

/// A replay's stream and its renamed nodes for `seed`, drawn from one RNG in that order, so every user of a
/// seed (the replay, `mlsim bound`) sees the same pods in the same order on the same node priority.
pub fn seeded_stream(nodes: &[Node], pods: &[TracePod], seed: u64, tune: f64) -> (Vec<Node>, Vec<TracePod>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let capacity_milli = nodes.iter().map(|n| n.gpu_capacity_milli()).sum();
    let stream = build_stream(pods, capacity_milli, tune, &mut rng);
    let mut named = nodes.to_vec();
    prefix_node_names(&mut named, &mut rng);
    (named, stream)
}

/// Sorted by name, shuffled, tuned. Tuning up appends copies of pods drawn with replacement from the
/// name-sorted original list, until the next draw would overshoot the target; tuning down removes random
/// pods. The overshoot test compares the drawn pod's *per-GPU* share, as the paper's simulator did, so a
/// multi-GPU copy can carry the stream a little past the target.
pub fn build_stream(pods: &[TracePod], cluster_gpu_milli: i64, tune: f64, rng: &mut ChaCha8Rng) -> Vec<TracePod> {
    let mut sorted: Vec<TracePod> = pods.to_vec();
    sorted.sort_by(|a, b| a.pod.key.cmp(&b.pod.key));
    let mut stream = sorted.clone();
    stream.shuffle(rng);
    if tune <= 0.0 || sorted.is_empty() {
        return stream;
    }
    let target = tune * cluster_gpu_milli as f64;
    let mut total: i64 = stream.iter().map(|p| p.gpu_milli_total).sum();
    if (total as f64) > target {
        while (total as f64) > target && !stream.is_empty() {
            let removed = stream.remove(rng.random_range(0..stream.len()));
            total -= removed.gpu_milli_total;
        }
        return stream;
    }
    let mut copies = 0usize;
    loop {
        let drawn = &sorted[rng.random_range(0..sorted.len())];
        if (total + drawn.pod.gpu.milli_per_gpu) as f64 > target {
            break;
        }
        let mut copy = drawn.clone();
        copy.pod.key = format!("{}-tuned-{copies}", drawn.pod.key);
        total += copy.gpu_milli_total;
        stream.push(copy);
        copies += 1;
    }
    stream
}

/// Renames nodes `NNNN-<name>` with a seeded permutation, so that "smallest name wins a tie" becomes a
/// seeded random node priority, as in the paper's simulator, instead of favouring low node numbers.
pub fn prefix_node_names(nodes: &mut [Node], rng: &mut ChaCha8Rng) {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut perm: Vec<usize> = (0..nodes.len()).collect();
    perm.shuffle(rng);
    let width = nodes.len().to_string().len().max(4);
    for (node, p) in nodes.iter_mut().zip(perm) {
        node.name = format!("{p:0width$}-{}", node.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlsched::core::{GpuRequest, Pod, Resources};
    use rand::SeedableRng;

    fn pod(name: &str, gpu: GpuRequest) -> TracePod {
        let gpu_milli_total = gpu.total_milli();
        TracePod { pod: Pod::new(name, Resources::new(1000, 1, 1), gpu), gpu_milli_total }
    }

    #[test]
    fn tune_up_reaches_the_target_without_overshooting_on_shares() {
        let pods: Vec<_> = (0..10).map(|i| pod(&format!("p{i}"), GpuRequest::shared(500))).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        // 10 × 500 = 5000 milli; capacity 4000 × 1.3 = 5200: one more copy fits (5500 would overshoot).
        let stream = build_stream(&pods, 4000, 1.3, &mut rng);
        let total: i64 = stream.iter().map(|p| p.gpu_milli_total).sum();
        assert_eq!(total, 5000);
        let stream = build_stream(&pods, 10_000, 1.3, &mut rng);
        let total: i64 = stream.iter().map(|p| p.gpu_milli_total).sum();
        assert!(total <= 13_000 && total > 12_500, "{total}");
        assert_eq!(&stream[..10].iter().filter(|p| p.pod.key.contains("tuned")).count(), &0);
        assert!(stream[10..].iter().all(|p| p.pod.key.contains("-tuned-")));
    }

    #[test]
    fn tune_down_removes_pods_and_same_seed_same_stream() {
        let pods: Vec<_> = (0..10).map(|i| pod(&format!("p{i}"), GpuRequest::whole(1))).collect();
        let a = build_stream(&pods, 5000, 1.3, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(a.len(), 6);
        let b = build_stream(&pods, 5000, 1.3, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(a.iter().map(|p| &p.pod.key).collect::<Vec<_>>(), b.iter().map(|p| &p.pod.key).collect::<Vec<_>>());
        let c = build_stream(&pods, 5000, 0.0, &mut ChaCha8Rng::seed_from_u64(8));
        assert_eq!(c.len(), 10);
    }

    #[test]
    fn node_prefixes_are_a_permutation() {
        let mut nodes: Vec<Node> = (0..5).map(|i| Node::new(format!("n{i}"), Resources::default())).collect();
        prefix_node_names(&mut nodes, &mut ChaCha8Rng::seed_from_u64(1));
        let mut prefixes: Vec<String> = nodes.iter().map(|n| n.name[..4].to_string()).collect();
        prefixes.sort();
        assert_eq!(prefixes, vec!["0000", "0001", "0002", "0003", "0004"]);
        assert!(nodes.iter().enumerate().all(|(i, n)| n.name.ends_with(&format!("-n{i}"))));
    }
}
