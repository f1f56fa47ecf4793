//! The table of `mlsim bound`: every policy's unallocated GPU % at 100 % arrived beside the best offline
//! placement found and the proven LP bound, per workload.

use std::fmt::Write as _;

use mlsched::core::Node;
use mlsched::plugins::policy::Policy;
use rayon::prelude::*;

use crate::bound::{NO_FAILURE_BEFORE_PCT, SeedBound, bound_seed};
use crate::compare::{mean_sd, run_all, unallocated_mean_sd};
use crate::replay::ReplaySummary;
use crate::stream::PAPER_TUNE;
use crate::trace::TracePod;

/// One workload: the replays' means per policy and the bound per seed.
#[derive(Debug, Clone)]
pub struct BoundRow {
    pub workload: String,
    pub policies: Vec<(Policy, f64)>,
    /// Mean over seeds of the CPU-only pods mlsched failed before 100 % arrived (`None`: not replayed).
    pub mlsched_cpu_only_failed: Option<f64>,
    /// The lowest over seeds of the arrived % at which mlsched failed its first one-GPU pod (`None`: not
    /// replayed, or it failed none).
    pub mlsched_first_one_gpu_failure: Option<f64>,
    pub seeds: Vec<SeedBound>,
}

impl BoundRow {
    pub fn mean_policy(&self, policy: Policy) -> Option<f64> {
        self.policies.iter().find(|(p, _)| *p == policy).map(|p| p.1)
    }

    /// Mean over seeds of the proven bound.
    pub fn lp_bound(&self) -> f64 {
        mean_sd(&self.seeds.iter().map(|s| s.lp_bound_pct).collect::<Vec<_>>()).0
    }

    /// Mean over seeds of the bound for placements that run every CPU-only pod; `None` if on some seed
    /// none can.
    pub fn lp_bound_cpu_placed(&self) -> Option<f64> {
        let values: Option<Vec<f64>> = self.seeds.iter().map(|s| s.lp_bound_cpu_placed_pct).collect();
        values.map(|v| mean_sd(&v).0)
    }

    /// Mean over seeds of the bound for placements that fail no one-GPU pod before
    /// [`NO_FAILURE_BEFORE_PCT`] % arrived; `None` if on some seed none can.
    pub fn lp_bound_no_early_failure(&self) -> Option<f64> {
        let values: Option<Vec<f64>> = self.seeds.iter().map(|s| s.lp_bound_no_early_failure_pct).collect();
        values.map(|v| mean_sd(&v).0)
    }

    /// Mean over seeds of the best offline placement found.
    pub fn offline(&self) -> f64 {
        mean_sd(&self.seeds.iter().map(|s| s.offline_pct).collect::<Vec<_>>()).0
    }
}

/// Replays `policies` × `seeds` (tuned 1.3x, as the paper did) and bounds each seed's stream.
pub fn run(
    workload: &str,
    nodes: &[Node],
    pods: &[TracePod],
    policies: &[Policy],
    seeds: &[u64],
) -> anyhow::Result<BoundRow> {
    let summaries = run_all(nodes, pods, policies, seeds, PAPER_TUNE);
    let mlsched: Vec<&ReplaySummary> = summaries.iter().filter(|s| s.policy == Policy::Mlsched.name()).collect();
    let cpu_only_failed: Vec<f64> = mlsched.iter().map(|s| s.cpu_only_failed_by_100 as f64).collect();
    let mlsched_cpu_only_failed = (!mlsched.is_empty()).then(|| mean_sd(&cpu_only_failed).0);
    let mlsched_first_one_gpu_failure =
        mlsched.iter().filter_map(|s| s.first_one_gpu_failure_arrived_pct).min_by(|a, b| a.total_cmp(b));
    let policies = policies.iter().map(|&p| (p, unallocated_mean_sd(&summaries, p).0)).collect();
    let seeds =
        seeds.par_iter().map(|&seed| bound_seed(nodes, pods, seed, PAPER_TUNE)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(BoundRow {
        workload: workload.to_string(),
        policies,
        mlsched_cpu_only_failed,
        mlsched_first_one_gpu_failure,
        seeds,
    })
}

pub fn markdown(rows: &[BoundRow]) -> String {
    let Some(first) = rows.first() else { return String::new() };
    let mut out = String::from("| workload |");
    for (p, _) in &first.policies {
        let _ = write!(out, " {} |", p.name());
    }
    let _ = write!(
        out,
        " best offline placement found | **LP bound** | mlsched − bound | bound if every CPU-only pod runs | CPU-only pods mlsched failed | bound if no one-GPU pod fails before {NO_FAILURE_BEFORE_PCT} % arrived | mlsched's first failed one-GPU pod, arrived % (lowest seed) |\n|---|",
    );
    out.push_str(&"---|".repeat(first.policies.len() + 7));
    out.push('\n');
    for r in rows {
        let _ = write!(out, "| {} |", r.workload);
        for (_, mean) in &r.policies {
            let _ = write!(out, " {mean:.2} |");
        }
        let gap = r.mean_policy(Policy::Mlsched).map_or("n/a".to_string(), |m| format!("{:.2}", m - r.lp_bound()));
        let bound = |b: Option<f64>| b.map_or("none can".to_string(), |b| format!("{b:.2}"));
        let cpu_failed = r.mlsched_cpu_only_failed.map_or("n/a".to_string(), |f| format!("{f:.0}"));
        // Floored, so that it never reads as 95 when the bound's condition missed by a fraction.
        let first_failure =
            r.mlsched_first_one_gpu_failure.map_or("n/a".to_string(), |f| format!("{:.1}", (f * 10.0).floor() / 10.0));
        let _ = writeln!(
            out,
            " {:.2} | **{:.2}** | {gap} | {} | {} | {} | {} |",
            r.offline(),
            r.lp_bound(),
            bound(r.lp_bound_cpu_placed()),
            cpu_failed,
            bound(r.lp_bound_no_early_failure()),
            first_failure,
        );
    }
    out
}
