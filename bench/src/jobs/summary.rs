//! What one job replay measured, and the comparison table.

use std::fmt::Write as _;

use serde::Serialize;

use super::engine::{EngineConfig, EngineResult};
use super::slowdown::Spread;
use super::trace::Job;

#[derive(Debug, Clone, Serialize)]
pub struct JobsSummary {
    pub trace: String,
    pub policy: String,
    pub cluster: String,
    pub cluster_gpus: u64,
    pub alpha_rack: f64,
    pub alpha_spine: f64,
    pub window: usize,
    pub partial_timeout_seconds: f64,
    pub jobs: usize,
    pub jobs_finished: usize,
    /// Jobs needing more nodes than the cluster has (never queued).
    pub jobs_too_large: usize,
    /// Jobs of more than one pod (the gangs).
    pub multi_pod_jobs: usize,
    pub partial_gang_gpu_seconds: f64,
    pub partial_gang_timeouts: u64,
    /// Submission to finish, over finished jobs.
    pub mean_jct_seconds: f64,
    pub p50_jct_seconds: f64,
    pub p99_jct_seconds: f64,
    /// Submission to start, over finished jobs.
    pub mean_queue_seconds: f64,
    pub p99_queue_seconds: f64,
    /// Mean JCT of multi-pod jobs only.
    pub mean_gang_jct_seconds: f64,
    /// Work done (trace durations × GPUs of finished jobs) / (GPUs × makespan).
    pub gpu_utilization: f64,
    /// GPU-seconds held by any pod (incl. slowdown and partial gangs) / (GPUs × makespan).
    pub gpu_allocated: f64,
    /// Mean pairwise switch hops on the real tree, over started multi-pod jobs.
    pub mean_gang_spread_hops: f64,
    /// Of started multi-pod jobs: share that crossed racks (incl. spines), and spines.
    pub cross_rack_gang_fraction: f64,
    pub cross_spine_gang_fraction: f64,
    /// Per job size (GPUs): how long its jobs waited and ran, and how often they crossed racks.
    pub by_size: Vec<SizeClass>,
    /// Gang waits (a waiting gang not placed in a pass), and the share of them with the gang's GPUs free.
    pub gang_waits: u64,
    pub gang_waits_with_gpus_free_fraction: f64,
    /// Per priority level (lowest first): how long its finished jobs waited and took.
    pub by_priority: Vec<PriorityClass>,
    pub preemptions: u64,
    pub evictions: u64,
    /// GPU-seconds of work lost to evictions (jobs start over).
    pub evicted_gpu_seconds: f64,
    /// GPU-seconds of the trace's durations of finished jobs (the work done, without slowdown).
    pub useful_gpu_seconds: f64,
    /// Jobs that started with fewer pods than they have (gang policies: 0).
    pub partial_starts: u64,
    pub makespan_seconds: f64,
    pub scheduling_passes: u64,
    pub elapsed_seconds: f64,
}

/// Finished jobs of one size class.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SizeClass {
    /// `1`, `2-8`, `9-16`, `17-32`, `33+` GPUs.
    pub gpus: &'static str,
    pub jobs: usize,
    pub mean_queue_seconds: f64,
    /// Start to finish, slowdown included.
    pub mean_run_seconds: f64,
    pub mean_jct_seconds: f64,
    pub cross_rack_fraction: f64,
}

/// Finished jobs of one priority.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PriorityClass {
    pub priority: i32,
    pub jobs: usize,
    pub mean_jct_seconds: f64,
    pub p99_jct_seconds: f64,
    /// Submission to the start of the run that finished (time lost to evictions included).
    pub mean_queue_seconds: f64,
    pub p99_queue_seconds: f64,
    /// Jobs of this priority evicted at least once, and evictions in all.
    pub jobs_evicted: usize,
    pub evictions: u64,
}

fn priority_classes(jobs: &[Job], result: &EngineResult) -> Vec<PriorityClass> {
    let mut levels: Vec<i32> = result.outcomes.iter().map(|o| o.priority).collect();
    levels.sort_unstable();
    levels.dedup();
    levels
        .into_iter()
        .map(|priority| {
            let (mut jct, mut queue, mut jobs_evicted, mut evictions) = (Vec::new(), Vec::new(), 0, 0);
            for (job, o) in jobs.iter().zip(&result.outcomes).filter(|(_, o)| o.priority == priority) {
                if let (Some(start), Some(finish)) = (o.start, o.finish) {
                    jct.push(finish - job.submit);
                    queue.push(start - job.submit);
                }
                jobs_evicted += usize::from(o.evictions > 0);
                evictions += u64::from(o.evictions);
            }
            let (mean_jct, mean_queue) = (mean(&jct), mean(&queue));
            jct.sort_by(f64::total_cmp);
            queue.sort_by(f64::total_cmp);
            PriorityClass {
                priority,
                jobs: jct.len(),
                mean_jct_seconds: mean_jct,
                p99_jct_seconds: percentile(&jct, 0.99),
                mean_queue_seconds: mean_queue,
                p99_queue_seconds: percentile(&queue, 0.99),
                jobs_evicted,
                evictions,
            }
        })
        .collect()
}

/// The job size classes, by GPUs: (label, smallest, largest).
pub const SIZE_CLASSES: [(&str, u32, u32); 5] =
    [("1", 1, 1), ("2-8", 2, 8), ("9-16", 9, 16), ("17-32", 17, 32), ("33+", 33, u32::MAX)];

/// The index in [`SIZE_CLASSES`] of a job of `gpus` GPUs.
pub fn size_class(gpus: u32) -> usize {
    SIZE_CLASSES.iter().position(|&(_, lo, hi)| (lo..=hi).contains(&gpus)).unwrap_or(0)
}

fn size_classes(jobs: &[Job], result: &EngineResult) -> Vec<SizeClass> {
    SIZE_CLASSES
        .iter()
        .map(|&(label, lo, hi)| {
            let (mut queue, mut run, mut jct, mut cross) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
            for (job, o) in jobs.iter().zip(&result.outcomes) {
                if let (true, Some(start), Some(finish)) = ((lo..=hi).contains(&job.gpus), o.start, o.finish) {
                    queue.push(start - job.submit);
                    run.push(finish - start);
                    jct.push(finish - job.submit);
                    cross += usize::from(o.spread >= Some(Spread::CrossRack));
                }
            }
            SizeClass {
                gpus: label,
                jobs: jct.len(),
                mean_queue_seconds: mean(&queue),
                mean_run_seconds: mean(&run),
                mean_jct_seconds: mean(&jct),
                cross_rack_fraction: if jct.is_empty() { 0.0 } else { cross as f64 / jct.len() as f64 },
            }
        })
        .collect()
}

/// Linear-interpolated percentile of sorted values (`q` in 0..=1); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { f64::NAN } else { values.iter().sum::<f64>() / values.len() as f64 }
}

pub fn summarize(
    trace: &str,
    jobs: &[Job],
    config: &EngineConfig,
    result: &EngineResult,
    elapsed_seconds: f64,
) -> JobsSummary {
    let mut jct = Vec::new();
    let mut queue = Vec::new();
    let mut gang_jct = Vec::new();
    let (mut hops, mut cross_rack, mut cross_spine, mut gangs_started) = (Vec::new(), 0usize, 0usize, 0usize);
    let per_node = config.cluster.gpus_per_node;
    let multi = |j: &Job| j.gpus > per_node;
    for (job, o) in jobs.iter().zip(&result.outcomes) {
        if let (Some(start), Some(finish)) = (o.start, o.finish) {
            jct.push(finish - job.submit);
            queue.push(start - job.submit);
            if multi(job) {
                gang_jct.push(finish - job.submit);
            }
        }
        if o.start.is_some() && multi(job) {
            gangs_started += 1;
            hops.push(o.spread_hops);
            cross_rack += usize::from(o.spread >= Some(Spread::CrossRack));
            cross_spine += usize::from(o.spread == Some(Spread::CrossSpine));
        }
    }
    let mean_jct = mean(&jct);
    let mean_queue = mean(&queue);
    jct.sort_by(f64::total_cmp);
    queue.sort_by(f64::total_cmp);
    let capacity = config.cluster.gpus() as f64 * result.end;
    let frac = |n: usize| if gangs_started == 0 { 0.0 } else { n as f64 / gangs_started as f64 };
    JobsSummary {
        trace: trace.to_string(),
        policy: config.policy.name().to_string(),
        cluster: config.cluster.to_string(),
        cluster_gpus: config.cluster.gpus(),
        alpha_rack: config.slowdown.alpha_rack,
        alpha_spine: config.slowdown.alpha_spine,
        window: config.window,
        partial_timeout_seconds: config.partial_timeout,
        jobs: jobs.len(),
        jobs_finished: jct.len(),
        jobs_too_large: result.outcomes.iter().filter(|o| o.too_large).count(),
        multi_pod_jobs: jobs.iter().filter(|j| multi(j)).count(),
        partial_gang_gpu_seconds: result.partial_gang_gpu_seconds,
        partial_gang_timeouts: result.partial_gang_timeouts,
        mean_jct_seconds: mean_jct,
        p50_jct_seconds: percentile(&jct, 0.5),
        p99_jct_seconds: percentile(&jct, 0.99),
        mean_queue_seconds: mean_queue,
        p99_queue_seconds: percentile(&queue, 0.99),
        mean_gang_jct_seconds: mean(&gang_jct),
        gpu_utilization: if capacity > 0.0 { result.useful_gpu_seconds / capacity } else { 0.0 },
        gpu_allocated: if capacity > 0.0 { result.allocated_gpu_seconds / capacity } else { 0.0 },
        mean_gang_spread_hops: if hops.is_empty() { 0.0 } else { mean(&hops) },
        cross_rack_gang_fraction: frac(cross_rack),
        cross_spine_gang_fraction: frac(cross_spine),
        by_size: size_classes(jobs, result),
        gang_waits: result.gang_waits,
        gang_waits_with_gpus_free_fraction: if result.gang_waits == 0 {
            0.0
        } else {
            result.gang_waits_with_gpus_free as f64 / result.gang_waits as f64
        },
        by_priority: priority_classes(jobs, result),
        preemptions: result.preemptions,
        evictions: result.evictions,
        evicted_gpu_seconds: result.evicted_gpu_seconds,
        useful_gpu_seconds: result.useful_gpu_seconds,
        partial_starts: result.partial_starts,
        makespan_seconds: result.end,
        scheduling_passes: result.passes,
        elapsed_seconds,
    }
}

/// One row per (trace, policy).
pub fn markdown_table(summaries: &[JobsSummary]) -> String {
    let mut out = String::from(
        "| trace | cluster (GPUs) | jobs (gangs) | policy | finished | mean JCT h | p50 JCT h | p99 JCT h | gang JCT h | \
         mean queue h | GPU util % | gang spread hops | cross-rack gangs % | partial-gang GPU-h (timeouts) | run s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let h = |s: f64| s / 3600.0;
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} ({}) | {} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {:.0} ({}) | {:.1} |",
            s.trace,
            s.cluster,
            s.cluster_gpus,
            s.jobs,
            s.multi_pod_jobs,
            s.policy,
            s.jobs_finished,
            h(s.mean_jct_seconds),
            h(s.p50_jct_seconds),
            h(s.p99_jct_seconds),
            h(s.mean_gang_jct_seconds),
            h(s.mean_queue_seconds),
            100.0 * s.gpu_utilization,
            s.mean_gang_spread_hops,
            100.0 * s.cross_rack_gang_fraction,
            h(s.partial_gang_gpu_seconds),
            s.partial_gang_timeouts,
            s.elapsed_seconds,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(percentile(&[0.0, 10.0], 0.99), 9.9);
    }
}
