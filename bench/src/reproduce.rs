//! `mlsim reproduce`: the six paper policies and mlsched's two on every workload of the trace folder, side
//! by side with the FGD artifact's published means where it published the workload, and whether each is
//! within the reproduction tolerance.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use mlsched::core::Node;
use mlsched::plugins::policy::Policy;

use crate::compare::{run_all, unallocated_mean_sd};
use crate::published::Published;
use crate::replay::ReplaySummary;
use crate::stream::PAPER_TUNE;
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

/// Every policy (the paper's six and mlsched's two) on one workload, tuned to 1.3x as the paper did.
pub fn run_workload(workload: &str, nodes: &[Node], pods: &[TracePod], seeds: &[u64]) -> WorkloadResult {
    WorkloadResult {
        workload: workload.to_string(),
        summaries: run_all(nodes, pods, &Policy::EXTENDED, seeds, PAPER_TUNE),
    }
}

/// One row per policy that ran; `published` is `None` for mlsched's own policies.
pub fn rows(result: &WorkloadResult, published: &Published) -> Vec<Row> {
    Policy::EXTENDED
        .iter()
        .filter(|p| result.summaries.iter().any(|s| s.policy == p.name()))
        .map(|&policy| Row {
            workload: result.workload.clone(),
            policy,
            ours: unallocated_mean_sd(&result.summaries, policy),
            published: published.mean_unallocated(&result.workload, policy),
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
            None => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} ± {:.2} | {published} | {delta} | {ok} |",
            r.workload, r.policy, r.ours.0, r.ours.1
        );
    }
    out
}

/// mlsched against FGD in the same run: one row per workload with both means and whether mlsched's
/// (with the prior and learned online) is at or below FGD's.
pub fn mlsched_vs_fgd(rows: &[Row]) -> String {
    let mut out =
        String::from("| workload | FGD | mlsched (prior) | mlsched-online | both ≤ FGD |\n|---|---|---|---|---|\n");
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
    workloads.dedup();
    for w in workloads {
        let mean = |p: Policy| rows.iter().find(|r| r.workload == w && r.policy == p).map(|r| r.ours);
        let (Some(fgd), Some(prior), Some(online)) =
            (mean(Policy::Fgd), mean(Policy::Mlsched), mean(Policy::MlschedOnline))
        else {
            continue;
        };
        let ok = if prior.0 <= fgd.0 && online.0 <= fgd.0 { "yes" } else { "**no**" };
        let _ = writeln!(
            out,
            "| {w} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.2} ± {:.2} | {ok} |",
            fgd.0, fgd.1, prior.0, prior.1, online.0, online.1
        );
    }
    out
}

/// Every workload of a trace folder (`openb_pod_list_<workload>.csv`), the default first, as in the
/// paper's tables, then by name.
pub fn shared_workloads(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut workloads = Vec::new();
    for entry in entries {
        let name = entry.with_context(|| format!("listing {}", dir.display()))?.file_name();
        let name = name.to_string_lossy();
        if let Some(w) = name.strip_prefix("openb_pod_list_").and_then(|n| n.strip_suffix(".csv")) {
            workloads.push(w.to_string());
        }
    }
    workloads.sort_by_key(|w| (w != "default", w.clone()));
    Ok(workloads)
}

/// The pod list of a published workload inside the shared trace folder.
pub fn workload_file(dir: &Path, workload: &str) -> std::path::PathBuf {
    dir.join(format!("openb_pod_list_{workload}.csv"))
}
