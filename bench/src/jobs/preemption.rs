//! `mlsim jobs --preemption`: what gang-aware preemption buys high-priority jobs and what it costs the rest,
//! over every shared trace.
//!
//! Each trace is replayed by mlsched with a stated share of high-priority jobs ([`PriorityMix`], the same
//! jobs in both runs), once without preemption (high-priority jobs only go first in the queue) and once
//! with it (a high-priority job that fits nowhere evicts whole lower-priority jobs, which start over).
//! Per row: queueing and JCT of each priority, the preemptions, the work they threw away, and the jobs that
//! ever ran with part of their pods (0 for gangs, checked by the replay itself).

use std::fmt::Write as _;
use std::time::Instant;

use rayon::prelude::*;

use super::engine::{HIGH_PRIORITY, JobPolicy, PriorityMix};
use super::summary::{JobsSummary, PriorityClass};
use super::{ClusterSpec, JobsArgs, load, run_one, shared_traces};

/// The high-priority share when `--high-priority-share` is left at 0.
pub const DEFAULT_HIGH_SHARE: f64 = 0.2;

/// The loads of the table: the default sizing, and a cluster where queues are long.
pub const LOADS: [f64; 2] = [0.7, 0.9];

pub struct Row {
    pub trace: String,
    pub load: f64,
    pub preemption: bool,
    pub summary: JobsSummary,
}

/// The replays of the table: every shared trace × [`LOADS`] × without / with preemption. A load whose
/// cluster is the one of a lower load (the cluster is at least twice the largest gang) is left out.
pub fn rows(args: &JobsArgs) -> anyhow::Result<Vec<Row>> {
    let high_share = if args.high_priority_share > 0.0 { args.high_priority_share } else { DEFAULT_HIGH_SHARE };
    let mut loaded = Vec::new();
    for (name, path) in shared_traces(&args.traces_dir) {
        loaded.push((name, load(&path, args.limit)?));
    }
    let mut runs: Vec<(usize, f64, bool)> = Vec::new();
    for (t, (_, jobs)) in loaded.iter().enumerate() {
        let mut clusters = Vec::new();
        for load in LOADS {
            let cluster = args.cluster.unwrap_or_else(|| ClusterSpec::sized_for(jobs, load));
            if !clusters.contains(&cluster) {
                clusters.push(cluster);
                runs.extend([false, true].map(|preemption| (t, load, preemption)));
            }
        }
    }
    Ok(runs
        .par_iter()
        .map(|&(t, load, preemption)| {
            let (name, jobs) = &loaded[t];
            let run_args = JobsArgs { load, high_priority_share: high_share, preempt: preemption, ..args.clone() };
            let summary = run_one(name, jobs, JobPolicy::Mlsched, &run_args);
            eprintln!("{name} load {load} preemption {preemption}: {:.1} s", summary.elapsed_seconds);
            Row { trace: name.clone(), load, preemption, summary }
        })
        .collect())
}

fn class(s: &JobsSummary, high: bool) -> Option<&PriorityClass> {
    s.by_priority.iter().find(|c| (c.priority == HIGH_PRIORITY) == high)
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| trace | load | cluster (GPUs) | preemption | high-priority jobs | high: mean queue h | high: p99 queue h | high: mean JCT h | \
         low: mean queue h | low: mean JCT h | all: mean JCT h | preemptions (jobs evicted) | GPU-h lost to evictions \
         (% of work) | partial gangs |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let h = |s: f64| s / 3600.0;
    for r in rows {
        let s = &r.summary;
        let (high, low) = (class(s, true), class(s, false));
        let field = |c: Option<&PriorityClass>, f: fn(&PriorityClass) -> f64| h(c.map_or(f64::NAN, f));
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} ({}) | {:.0} ({:.1}) | {} |",
            r.trace,
            r.load,
            s.cluster,
            s.cluster_gpus,
            if r.preemption { "yes" } else { "no" },
            high.map_or(0, |c| c.jobs),
            field(high, |c| c.mean_queue_seconds),
            field(high, |c| c.p99_queue_seconds),
            field(high, |c| c.mean_jct_seconds),
            field(low, |c| c.mean_queue_seconds),
            field(low, |c| c.mean_jct_seconds),
            h(s.mean_jct_seconds),
            s.preemptions,
            s.evictions,
            h(s.evicted_gpu_seconds),
            100.0 * s.evicted_gpu_seconds / s.useful_gpu_seconds.max(1.0),
            s.partial_starts,
        );
    }
    out
}

/// The pairs (without, with) of each trace and load.
pub fn pairs(rows: &[Row]) -> Vec<(&Row, &Row)> {
    rows.iter()
        .filter(|r| !r.preemption)
        .filter_map(|off| {
            let on = rows.iter().find(|r| r.preemption && r.trace == off.trace && r.load == off.load)?;
            Some((off, on))
        })
        .collect()
}

/// What preemption bought the high-priority jobs and what it cost everyone, over all rows.
pub fn verdict(rows: &[Row]) -> String {
    let pairs = pairs(rows);
    let queue = |r: &Row| class(&r.summary, true).map_or(0.0, |c| c.mean_queue_seconds);
    let queued: Vec<_> = pairs.iter().filter(|(off, _)| queue(off) > 0.0).collect();
    let shortened = queued.iter().filter(|(off, on)| queue(on) < queue(off)).count();
    let (before, after) = pairs.iter().fold((0.0, 0.0), |(b, a), (off, on)| (b + queue(off), a + queue(on)));
    let lost: f64 = pairs.iter().map(|(_, on)| on.summary.evicted_gpu_seconds).sum();
    let work: f64 = pairs.iter().map(|(_, on)| on.summary.useful_gpu_seconds).sum();
    let mut cost: Vec<f64> = pairs
        .iter()
        .map(|(off, on)| 100.0 * (on.summary.mean_jct_seconds / off.summary.mean_jct_seconds - 1.0))
        .collect();
    cost.sort_by(f64::total_cmp);
    let partial: u64 = rows.iter().map(|r| r.summary.partial_starts).sum();
    format!(
        "Over {} replays in pairs: preemption shortened the high-priority jobs' mean queueing wherever they queued \
         ({shortened} of {}; summed over the pairs {:.2} h → {:.2} h). It threw away {:.2} % of the work done \
         (evicted jobs start over), and the mean JCT of all jobs moved by {:+.1} % (median) to {:+.1} % (worst); \
         {partial} jobs ran with part of their pods.",
        rows.len(),
        queued.len(),
        before / 3600.0,
        after / 3600.0,
        100.0 * lost / work.max(1.0),
        super::summary::percentile(&cost, 0.5),
        cost.last().copied().unwrap_or(f64::NAN),
    )
}

pub fn run(args: &JobsArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let rows = rows(args)?;
    let table = table(&rows);
    let verdict = verdict(&rows);
    print!("{table}\n{verdict}\n");
    println!("{} replays in {:.1} s", rows.len(), started.elapsed().as_secs_f64());
    if let Some(readme) = &args.readme {
        let mix = PriorityMix {
            high_share: if args.high_priority_share > 0.0 { args.high_priority_share } else { DEFAULT_HIGH_SHARE },
            seed: args.priority_seed,
        };
        let limit = args.limit.map_or(String::new(), |n| format!(", first {n} jobs per trace"));
        let header = format!(
            "Generated by `mlsim jobs --preemption`{limit}: mlsched; {:.0} % of the jobs high priority (seed {}), the \
             rest priority 0; run-time hints {}; backfill window {} jobs; evicted jobs start over (no checkpoint, \
             no grace period). Cluster per trace and load: offered GPU demand / load, whole racks (8 nodes × 8 \
             GPUs), 4 racks per spine, at least twice the largest gang (a load whose cluster that floor decides \
             is shown once). Queue = submission to the start of the run that finished.\n\n{verdict}\n\n",
            100.0 * mix.high_share,
            mix.seed,
            args.hints,
            args.window,
        );
        crate::readme::splice(readme, "jobs-preemption", &(header + &table))?;
        println!("updated {}", readme.display());
    }
    Ok(())
}
