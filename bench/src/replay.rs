//! One replay of a pod stream through the scheduling core, with the FGD paper's metrics.

use std::time::Instant;

use mlsched::core::{GPU_MILLI, Node, Snapshot};
use mlsched::frag::{TypicalShapes, current_node_frag_milli};
use mlsched::framework::schedule_one;
use mlsched::plugins::policy::{Policy, PolicyInputs, profile_for};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::buckets::ArrivalBuckets;
use crate::stream::{build_stream, prefix_node_names};
use crate::trace::TracePod;

/// What one replay measured. `alloc_pct_by_arrived[k]` is the mean allocation ratio (%) over the events
/// at which the arrived GPU request was k % of capacity (`None` where no event fell near k).
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub policy: String,
    pub seed: u64,
    pub tune: f64,
    pub nodes: usize,
    pub gpus: usize,
    pub pods_arrived: usize,
    pub pods_failed: usize,
    pub unallocated_gpu_pct_at_100: Option<f64>,
    pub frag_pct_at_100: Option<f64>,
    pub alloc_pct_by_arrived: Vec<Option<f64>>,
    pub frag_pct_by_arrived: Vec<Option<f64>>,
    pub elapsed_seconds: f64,
    pub decisions_per_second: f64,
}

pub struct ReplayInput<'a> {
    pub nodes: &'a [Node],
    pub pods: &'a [TracePod],
    pub policy: Policy,
    pub seed: u64,
    pub tune: f64,
}

/// Calls `progress(done, total)` now and then, for a progress bar.
pub fn replay(input: &ReplayInput<'_>, progress: &mut dyn FnMut(usize, usize)) -> ReplaySummary {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(input.seed);
    let gpus: usize = input.nodes.iter().map(|n| n.gpus.len()).sum();
    let capacity_milli = gpus as i64 * GPU_MILLI;
    let stream = build_stream(input.pods, capacity_milli, input.tune, &mut rng);
    let mut nodes = input.nodes.to_vec();
    prefix_node_names(&mut nodes, &mut rng);
    let mut snapshot = Snapshot::new(nodes).expect("node names are unique after prefixing");

    // Fragmentation is measured against the untuned workload, the same prior FGD gets.
    let typical = TypicalShapes::from_pods(input.pods.iter().map(|p| &p.pod), TypicalShapes::DEFAULT_COVERAGE);
    let mut profile = profile_for(input.policy, PolicyInputs { seed: input.seed, typical: typical.clone() });
    let mut node_frag: Vec<f64> = snapshot.nodes().iter().map(|n| current_node_frag_milli(n, &typical)).collect();
    let mut frag_total: f64 = node_frag.iter().sum();

    let mut buckets = ArrivalBuckets::new(capacity_milli);
    let (mut arrived_milli, mut used_milli, mut failed) = (0i64, 0i64, 0usize);
    for (i, tp) in stream.iter().enumerate() {
        arrived_milli += tp.gpu_milli_total;
        profile.observe_arrival(&tp.pod);
        match schedule_one(&profile, &snapshot, &tp.pod) {
            Ok(decision) => {
                snapshot.assume(&tp.pod, decision.node, &decision.gpus).expect("a feasible decision can be assumed");
                used_milli += tp.gpu_milli_total;
                let new_frag = current_node_frag_milli(&snapshot.nodes()[decision.node], &typical);
                frag_total += new_frag - node_frag[decision.node];
                node_frag[decision.node] = new_frag;
            }
            Err(_) => failed += 1,
        }
        buckets.record(arrived_milli, used_milli, frag_total);
        if i % 256 == 0 {
            progress(i, stream.len());
        }
    }
    progress(stream.len(), stream.len());
    let elapsed = started.elapsed().as_secs_f64();
    let alloc = buckets.alloc_pct();
    let frag = buckets.frag_pct();
    ReplaySummary {
        policy: input.policy.to_string(),
        seed: input.seed,
        tune: input.tune,
        nodes: snapshot.nodes().len(),
        gpus,
        pods_arrived: stream.len(),
        pods_failed: failed,
        unallocated_gpu_pct_at_100: alloc[100].map(|a| round2(100.0 - a)),
        frag_pct_at_100: frag[100],
        alloc_pct_by_arrived: alloc,
        frag_pct_by_arrived: frag,
        elapsed_seconds: elapsed,
        decisions_per_second: stream.len() as f64 / elapsed.max(1e-9),
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
