//! `mlsim reproduce`: the six paper policies on every workload the FGD artifact published, side by side
//! with the published means, and whether each is within the reproduction tolerance.

use std::fmt::Write as _;
use std::path::Path;

use mlsched::core::Node;
use mlsched::plugins::policy::Policy;

use crate::compare::{mean_sd, run_all};
use crate::published::Published;
use crate::replay::ReplaySummary;
use crate::trace::TracePod;

/// ±0.5 percentage points on the default workload, ±1.0 on the variants.
pub fn tolerance(workload: &str) -> f64 {
    if workload == "default" { 0.5 } else { 1.0 }
}

pub struct WorkloadResult {
    pub workload: String,
    pub summaries: Vec<ReplaySummary>,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub workload: String,
    pub policy: Policy,
    pub ours: (f64, f64),
    pub published: Option<f64>,
}

impl Row {
    pub fn delta(&self) -> Option<f64> {
        self.published.map(|p| self.ours.0 - p)
    }

    pub fn within_tolerance(&self) -> Option<bool> {
        self.delta().map(|d| d.abs() <= tolerance(&self.workload))
    }
}

pub fn run_workload(workload: &str, nodes: &[Node], pods: &[TracePod], seeds: &[u64]) -> WorkloadResult {
    WorkloadResult { workload: workload.to_string(), summaries: run_all(nodes, pods, &Policy::ALL, seeds, 1.3) }
}

pub fn rows(result: &WorkloadResult, published: &Published) -> Vec<Row> {
    Policy::ALL
        .iter()
        .map(|&policy| {
            let values: Vec<f64> = result
                .summaries
                .iter()
                .filter(|s| s.policy == policy.name())
                .filter_map(|s| s.unallocated_gpu_pct_at_100)
                .collect();
            Row {
                workload: result.workload.clone(),
                policy,
                ours: mean_sd(&values),
                published: published.mean_unallocated(&result.workload, policy),
            }
        })
        .collect()
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | policy | mlsim: unallocated GPU % at 100% (mean ± sd, 10 seeds) | published (artifact) | Δ | within ± |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let published = r.published.map_or("n/a".into(), |p| format!("{p:.2}"));
        let delta = r.delta().map_or("n/a".into(), |d| format!("{d:+.2}"));
        let ok = match r.within_tolerance() {
            Some(true) => format!("yes (±{})", tolerance(&r.workload)),
            Some(false) => format!("**no** (±{})", tolerance(&r.workload)),
            None => "n/a".into(),
        };
        let _ = writeln!(out, "| {} | {} | {:.2} ± {:.2} | {published} | {delta} | {ok} |", r.workload, r.policy, r.ours.0, r.ours.1);
    }
    out
}

/// The pod list of a published workload inside the shared trace folder.
pub fn workload_file(dir: &Path, workload: &str) -> std::path::PathBuf {
    dir.join(format!("openb_pod_list_{workload}.csv"))
}
