//! `mlsim bound`: how far the replays are from the best placement possible.
//!
//! For one seed, the pods a replay has tried when the arrived workload leaves the 100 % bucket (the FGD
//! method: same stream, same tuning, no departures) are given to
//! - the LP relaxation (`lp`): no placement of those pods, made knowing all of them in advance and free to
//!   leave any of them out, allocates more GPU than its certified value, so `100 − value / capacity` is a
//!   proven lower bound on the unallocated GPU % at 100 % arrived; the same relaxation with every CPU-only
//!   pod required, or every one-GPU pod that arrived before [`NO_FAILURE_BEFORE_PCT`] % of capacity,
//!   bounds the placements that run those;
//! - offline placements (`offline`): the same GPU pods in arrival order or largest first, placed by
//!   BestFit, FGD and mlsched; the best is an allocation known to be reachable.
//!
//! The best placement's unallocated GPU % lies between the two: the LP bound is exactly as tight as the
//! distance from the offline placement says, no tighter.

pub mod gpu_configs;
pub mod lp;
pub mod offline;

use anyhow::Context as _;
use mlsched::core::Node;
use mlsched::frag::TypicalShapes;
use serde::Serialize;

use crate::buckets::arrived_bucket;
use crate::replay::round2;
use crate::stream::seeded_stream;
use crate::trace::TracePod;

/// The arrived GPU request, % of capacity, before which the third bound requires every one-GPU pod (a
/// share or one whole GPU) to run. A replay that failed its first one-GPU pod later is one the bound
/// applies to; the table shows mlsched's earliest.
pub const NO_FAILURE_BEFORE_PCT: f64 = 95.0;

/// One seed's bound and offline placement, as unallocated GPU % of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct SeedBound {
    pub seed: u64,
    /// Pods tried by the end of the 100 % bucket, GPU pods among them.
    pub pods: usize,
    pub gpu_pods: usize,
    /// The GPU those pods ask, % of capacity.
    pub arrived_pct: f64,
    /// Proven: no placement leaves less GPU unallocated (rounded down to 2 decimals).
    pub lp_bound_pct: f64,
    /// Proven for placements that run every CPU-only pod that arrived (`None`: none can).
    pub lp_bound_cpu_placed_pct: Option<f64>,
    /// Proven for placements that fail no one-GPU pod before [`NO_FAILURE_BEFORE_PCT`] % arrived (`None`:
    /// none can).
    pub lp_bound_no_early_failure_pct: Option<f64>,
    /// The LP solver's own value, rounded to 2 decimals, for comparison with the certificate.
    pub lp_solver_pct: f64,
    /// Rounds of configuration generation and configurations generated.
    pub lp_rounds: usize,
    pub lp_configurations: usize,
    /// Reached: the best offline placement found, and how it was made.
    pub offline_pct: f64,
    pub offline_by: String,
}

/// Rounded down, so that rounding never lifts a proven bound.
fn floor2(x: f64) -> f64 {
    (x * 100.0).floor() / 100.0
}

/// How many pods of `stream` a replay has tried by its last event in the 100 % bucket (the bucket the
/// unallocated GPU % is read from: arrived rounds half-to-even to 100). When no event falls in it the
/// replay reads the neighbours' mean, so the 101 % bucket's events are taken too.
pub fn prefix_len(stream: &[TracePod], capacity_milli: i64) -> usize {
    let bucket = |arrived: i64| arrived_bucket(arrived, capacity_milli);
    let mut arrived = 0i64;
    let (mut last_100, mut last_101) = (None, None);
    for (i, p) in stream.iter().enumerate() {
        arrived += p.gpu_milli_total;
        match bucket(arrived) {
            k if k <= 100.0 => {
                if k == 100.0 {
                    last_100 = Some(i + 1);
                }
                last_101 = Some(i + 1);
            }
            k if k <= 101.0 => last_101 = Some(i + 1),
            _ => break,
        }
    }
    last_100.or(last_101).unwrap_or(stream.len())
}

/// The bound and the offline placement for one seed of one workload, tuned as the replays are.
pub fn bound_seed(nodes: &[Node], pods: &[TracePod], seed: u64, tune: f64) -> anyhow::Result<SeedBound> {
    let capacity_milli: i64 = nodes.iter().map(|n| n.gpu_capacity_milli()).sum();
    let (named, stream) = seeded_stream(nodes, pods, seed, tune);
    let tried = &stream[..prefix_len(&stream, capacity_milli)];
    let capacity_gpus = capacity_milli as f64 / mlsched::core::GPU_MILLI as f64;
    let pct_unallocated = |gpus: f64| 100.0 - 100.0 * gpus / capacity_gpus;

    let tried_pods = || tried.iter().map(|p| &p.pod);
    let certified = lp::Relaxation::build(&named, tried_pods(), lp::MustRun::Nothing)
        .solve()?
        .context("the relaxation without CPU-only pods is always feasible")?;
    let with_cpu_only = lp::Relaxation::build(&named, tried_pods(), lp::MustRun::CpuOnlyPods).solve()?;
    let mut arrived = 0i64;
    let before = tried
        .iter()
        .take_while(|p| {
            arrived += p.gpu_milli_total;
            (arrived as f64) < NO_FAILURE_BEFORE_PCT / 100.0 * capacity_milli as f64
        })
        .count();
    let no_early_failure =
        lp::Relaxation::build(&named, tried_pods(), lp::MustRun::OneGpuPodsAmongTheFirst(before)).solve()?;
    let typical = TypicalShapes::from_pods(pods.iter().map(|p| &p.pod), TypicalShapes::DEFAULT_COVERAGE);
    let (offline_by, placed_milli) = offline::best_offline(&named, tried, &typical, seed);
    Ok(SeedBound {
        seed,
        pods: tried.len(),
        gpu_pods: tried.iter().filter(|p| p.gpu_milli_total > 0).count(),
        arrived_pct: round2(
            100.0 * tried.iter().map(|p| p.gpu_milli_total).sum::<i64>() as f64 / capacity_milli as f64,
        ),
        lp_bound_pct: floor2(pct_unallocated(certified.upper_gpus)),
        lp_bound_cpu_placed_pct: with_cpu_only.map(|c| floor2(pct_unallocated(c.upper_gpus))),
        lp_bound_no_early_failure_pct: no_early_failure.map(|c| floor2(pct_unallocated(c.upper_gpus))),
        lp_solver_pct: round2(pct_unallocated(certified.solver_gpus)),
        lp_rounds: certified.rounds,
        lp_configurations: certified.configurations,
        offline_pct: round2(100.0 - 100.0 * placed_milli as f64 / capacity_milli as f64),
        offline_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlsched::core::{GpuRequest, Pod, Resources};

    fn pods(millis: &[i64]) -> Vec<TracePod> {
        millis
            .iter()
            .enumerate()
            .map(|(i, &m)| TracePod {
                pod: Pod::new(format!("p{i}"), Resources::new(1000, 1, 1), GpuRequest::shared(m)),
                gpu_milli_total: m,
            })
            .collect()
    }

    #[test]
    fn the_prefix_ends_with_the_last_event_of_the_100_bucket() {
        // Capacity 1000: arrived 40, 80, 99.6 (bucket 100), 100.4 (bucket 100), 140.
        let stream = pods(&[400, 400, 196, 8, 396]);
        assert_eq!(prefix_len(&stream, 1000), 4);
        // No event in bucket 100: 98, then 101 (bucket 101) is the last one read.
        let stream = pods(&[980, 30, 500]);
        assert_eq!(prefix_len(&stream, 1000), 2);
    }
}
