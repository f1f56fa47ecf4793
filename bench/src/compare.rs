//! `mlsim compare`: every (policy, seed) pair, in parallel, summarised as a table, a CSV and a plot.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use mlsched::core::Node;
use mlsched::plugins::policy::Policy;
use rayon::prelude::*;

use crate::progress::DelayedProgress;
use crate::replay::{ReplayInput, ReplaySummary, replay};
use crate::trace::TracePod;

pub fn run_all(nodes: &[Node], pods: &[TracePod], policies: &[Policy], seeds: &[u64], tune: f64) -> Vec<ReplaySummary> {
    let pairs: Vec<(Policy, u64)> = policies.iter().flat_map(|&p| seeds.iter().map(move |&s| (p, s))).collect();
    let progress = Mutex::new(DelayedProgress::new(pairs.len() as u64, "replays"));
    let done = std::sync::atomic::AtomicU64::new(0);
    let summaries: Vec<ReplaySummary> = pairs
        .par_iter()
        .map(|&(policy, seed)| {
            let summary = replay(&ReplayInput { nodes, pods, policy, seed, tune }, &mut |_, _| {});
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.lock().expect("progress lock").set(n);
            summary
        })
        .collect();
    progress.into_inner().expect("progress lock").finish();
    summaries
}

/// Mean and sample standard deviation.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// Mean and sample standard deviation over seeds of `policy`'s unallocated GPU % at 100 % arrival.
pub fn unallocated_mean_sd(summaries: &[ReplaySummary], policy: Policy) -> (f64, f64) {
    let values: Vec<f64> =
        summaries.iter().filter(|s| s.policy == policy.name()).filter_map(|s| s.unallocated_gpu_pct_at_100).collect();
    mean_sd(&values)
}

/// One row per policy: mean ± sd over seeds of unallocated GPU % and fragmentation % at 100 % arrival.
pub fn markdown_table(summaries: &[ReplaySummary], policies: &[Policy]) -> String {
    let mut out = String::from(
        "| policy | unallocated GPU % at 100% arrived | fragmentation % at 100% arrived | failed pods | seeds | s per replay |\n|---|---|---|---|---|---|\n",
    );
    for policy in policies {
        let runs: Vec<&ReplaySummary> = summaries.iter().filter(|s| s.policy == policy.name()).collect();
        let frag: Vec<f64> = runs.iter().filter_map(|s| s.frag_pct_at_100).collect();
        let failed: Vec<f64> = runs.iter().map(|s| s.pods_failed as f64).collect();
        let secs: Vec<f64> = runs.iter().map(|s| s.elapsed_seconds).collect();
        let (um, us) = unallocated_mean_sd(summaries, *policy);
        let (fm, fs) = mean_sd(&frag);
        let _ = writeln!(
            out,
            "| {} | {um:.2} ± {us:.2} | {fm:.2} ± {fs:.2} | {:.0} | {} | {:.2} |",
            policy.name(),
            mean_sd(&failed).0,
            runs.len(),
            mean_sd(&secs).0
        );
    }
    out
}

/// One row per replay: the scalar results and the allocation curve.
pub fn write_csv(path: &Path, summaries: &[ReplaySummary]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    let mut header: Vec<String> = [
        "policy",
        "seed",
        "tune",
        "pods_arrived",
        "pods_failed",
        "unallocated_gpu_pct_at_100",
        "frag_pct_at_100",
        "elapsed_seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend((0..=crate::buckets::MAX_ARRIVED_PCT).map(|k| format!("alloc_{k}")));
    w.write_record(&header)?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
    for s in summaries {
        let mut row = vec![
            s.policy.clone(),
            s.seed.to_string(),
            s.tune.to_string(),
            s.pods_arrived.to_string(),
            s.pods_failed.to_string(),
            opt(s.unallocated_gpu_pct_at_100),
            opt(s.frag_pct_at_100),
            format!("{:.3}", s.elapsed_seconds),
        ];
        row.extend(s.alloc_pct_by_arrived.iter().map(|v| opt(*v)));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}
