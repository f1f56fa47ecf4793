//! `mlsim jobs --sweep`: mlsched against `gang` over every shared trace (each ITP cluster, each Philly
//! virtual cluster on its own cluster, and Philly whole), at several loads and slowdown assumptions.
//!
//! A cell is one (trace, load, α_rack, α_spine); both policies replay it with everything else equal.
//! The verdict per cell: mlsched's mean JCT at most `gang`'s, and its p99 at most 2 % above.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::bail;
use rayon::prelude::*;
use serde::Serialize;

use super::cluster::ClusterSpec;
use super::engine::JobPolicy;
use super::slowdown::{DEFAULT_ALPHA_RACK, DEFAULT_ALPHA_SPINE};
use super::summary::JobsSummary;
use super::trace::{Job, only_vc};
use super::{JobsArgs, load, run_one, shared_traces};

/// p99 JCT may exceed `gang`'s by this ratio and the cell still holds.
pub const P99_TOLERANCE: f64 = 1.02;

/// One named job list of the sweep.
pub struct SweepTrace {
    pub name: String,
    pub jobs: Vec<Job>,
}

/// Every shared ITP cluster, every Philly VC with at least one job, and Philly whole.
pub fn sweep_traces(dir: &Path, limit: Option<usize>) -> anyhow::Result<Vec<SweepTrace>> {
    let mut traces = Vec::new();
    for (name, path) in shared_traces(dir) {
        if !path.exists() {
            bail!("{} not found (give --traces-dir)", path.display());
        }
        let jobs = load(&path, limit)?;
        if name == "philly" {
            let mut vcs: Vec<(usize, String)> = Vec::new();
            for job in &jobs {
                if let Some(vc) = &job.vc {
                    match vcs.iter_mut().find(|(_, v)| v == vc) {
                        Some(entry) => entry.0 += 1,
                        None => vcs.push((1, vc.clone())),
                    }
                }
            }
            vcs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            for (_, vc) in vcs {
                traces.push(SweepTrace { name: format!("philly-{vc}"), jobs: only_vc(&jobs, &vc) });
            }
        }
        traces.push(SweepTrace { name, jobs });
    }
    Ok(traces)
}

/// One cell: both policies on one trace, load and slowdown model.
#[derive(Debug, Clone, Serialize)]
pub struct SweepCell {
    pub trace: String,
    pub load: f64,
    pub alpha_rack: f64,
    pub alpha_spine: f64,
    pub cluster: String,
    pub gangs: usize,
    pub mlsched: JobsSummary,
    pub gang: JobsSummary,
}

impl SweepCell {
    pub fn jct_ratio(&self) -> f64 {
        ratio(self.mlsched.mean_jct_seconds, self.gang.mean_jct_seconds)
    }

    pub fn p99_ratio(&self) -> f64 {
        ratio(self.mlsched.p99_jct_seconds, self.gang.p99_jct_seconds)
    }

    /// mlsched's mean JCT at most gang's, its p99 within [`P99_TOLERANCE`], no partial gang held.
    pub fn holds(&self) -> bool {
        self.mlsched.mean_jct_seconds <= self.gang.mean_jct_seconds
            && self.p99_ratio() <= P99_TOLERANCE
            && self.mlsched.partial_gang_gpu_seconds == 0.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 1.0 }
}

/// The grid of a sweep.
#[derive(Debug, Clone)]
pub struct SweepGrid {
    pub loads: Vec<f64>,
    pub alphas: Vec<(f64, f64)>,
}

/// Replays every cell of `grid` over `traces` (in parallel), with `args`' other settings.
pub fn sweep(traces: &[SweepTrace], grid: &SweepGrid, args: &JobsArgs) -> Vec<SweepCell> {
    let cells: Vec<(usize, f64, (f64, f64))> = (0..traces.len())
        .flat_map(|t| grid.loads.iter().flat_map(move |&l| grid.alphas.iter().map(move |&a| (t, l, a))))
        .collect();
    cells
        .par_iter()
        .map(|&(t, load, (alpha_rack, alpha_spine))| {
            let trace = &traces[t];
            let cluster = args.cluster.unwrap_or_else(|| ClusterSpec::sized_for(&trace.jobs, load));
            let cell_args = JobsArgs { cluster: Some(cluster), alpha_rack, alpha_spine, ..args.clone() };
            let run = |policy| run_one(&trace.name, &trace.jobs, policy, &cell_args);
            let (mlsched, gang) = (run(JobPolicy::Mlsched), run(JobPolicy::Gang));
            SweepCell {
                trace: trace.name.clone(),
                load,
                alpha_rack,
                alpha_spine,
                cluster: cluster.to_string(),
                gangs: mlsched.multi_pod_jobs,
                mlsched,
                gang,
            }
        })
        .collect()
}

/// One row per (trace, load): per slowdown model, mlsched's mean JCT over gang's (bold where the cell does
/// not hold), the absolute means at the default model, and the row's worst p99 ratio.
pub fn sweep_table(cells: &[SweepCell]) -> String {
    let mut alphas: Vec<(f64, f64)> = Vec::new();
    let mut rows: Vec<(&str, f64)> = Vec::new();
    for c in cells {
        if !alphas.contains(&(c.alpha_rack, c.alpha_spine)) {
            alphas.push((c.alpha_rack, c.alpha_spine));
        }
        if !rows.contains(&(c.trace.as_str(), c.load)) {
            rows.push((c.trace.as_str(), c.load));
        }
    }
    let default = (DEFAULT_ALPHA_RACK, DEFAULT_ALPHA_SPINE);
    let mut out = String::from("| trace | load | cluster | gangs |");
    for (r, s) in &alphas {
        let _ = write!(out, " α {r}/{s} |");
    }
    let _ = write!(
        out,
        " mean JCT h at α {DEFAULT_ALPHA_RACK}/{DEFAULT_ALPHA_SPINE}, mlsched / gang | worst p99 ratio |\n|---|---|---|---|"
    );
    out.push_str(&"---|".repeat(alphas.len() + 2));
    out.push('\n');
    for (trace, load) in rows {
        let row: Vec<&SweepCell> = cells.iter().filter(|c| c.trace == trace && c.load == load).collect();
        let Some(first) = row.first() else { continue };
        let _ = write!(out, "| {trace} | {load:.1} | {} | {} |", first.cluster, first.gangs);
        for &(r, s) in &alphas {
            match row.iter().find(|c| (c.alpha_rack, c.alpha_spine) == (r, s)) {
                Some(c) if c.holds() => {
                    let _ = write!(out, " {:.3} |", c.jct_ratio());
                }
                Some(c) => {
                    let _ = write!(out, " **{:.3}** |", c.jct_ratio());
                }
                None => out.push_str(" – |"),
            }
        }
        match row.iter().find(|c| (c.alpha_rack, c.alpha_spine) == default) {
            Some(c) => {
                let _ = write!(
                    out,
                    " {:.2} / {:.2} |",
                    c.mlsched.mean_jct_seconds / 3600.0,
                    c.gang.mean_jct_seconds / 3600.0
                );
            }
            None => out.push_str(" – |"),
        }
        let worst = row.iter().map(|c| c.p99_ratio()).fold(f64::NAN, f64::max);
        let _ = writeln!(out, " {worst:.3} |");
    }
    out
}

/// `holds in N of M cells; mean JCT ratio median X, worst Y (cell); p99 ratio worst Z (cell)`.
pub fn sweep_verdict(cells: &[SweepCell]) -> String {
    let held = cells.iter().filter(|c| c.holds()).count();
    let mut ratios: Vec<f64> = cells.iter().map(SweepCell::jct_ratio).collect();
    ratios.sort_by(f64::total_cmp);
    let name = |c: &SweepCell| format!("{} load {} α {}/{}", c.trace, c.load, c.alpha_rack, c.alpha_spine);
    let worst = cells.iter().max_by(|a, b| a.jct_ratio().total_cmp(&b.jct_ratio()));
    let worst_p99 = cells.iter().max_by(|a, b| a.p99_ratio().total_cmp(&b.p99_ratio()));
    let (Some(worst), Some(worst_p99)) = (worst, worst_p99) else { return "no cells".into() };
    format!(
        "mlsched holds (mean JCT ≤ gang's, p99 ≤ {P99_TOLERANCE} × gang's, 0 partial-gang GPU-s) in {held} of {} cells. \
         Mean-JCT ratio mlsched/gang: median {:.3}, best {:.3}, worst {:.3} ({}); worst p99 ratio {:.3} ({}).",
        cells.len(),
        super::summary::percentile(&ratios, 0.5),
        ratios[0],
        worst.jct_ratio(),
        name(worst),
        worst_p99.p99_ratio(),
        name(worst_p99),
    )
}
