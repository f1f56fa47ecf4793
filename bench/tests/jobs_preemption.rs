//! Gang-aware preemption in the replay: on the shared ITP traces at a load where queues are long, with a
//! fifth of the jobs high priority, preemption shortens the high-priority jobs' queueing, every job still
//! finishes, no job ever runs with part of its pods, and the work thrown away is bounded. The table over
//! every shared trace is `mlsim jobs --preemption`, generated into `bench/README.md`.
//!
//! The traces live beside the repository (`../shared/traces`). CI always has them, so there a missing
//! folder fails; a clone without them skips, loudly.

mod common;

use mlsim::jobs::engine::HIGH_PRIORITY;
use mlsim::jobs::{ITP_CLUSTERS, JobPolicy, JobsArgs, JobsSummary, load, run_one};

fn high_queue(s: &JobsSummary) -> f64 {
    s.by_priority.iter().find(|c| c.priority == HIGH_PRIORITY).expect("a fifth of the jobs are high").mean_queue_seconds
}

#[test]
fn preemption_shortens_high_priority_queueing_without_partial_gangs() {
    let Some(dir) = common::shared_trace("microsoft-itp-2021") else { return };
    let base = JobsArgs { load: 0.9, high_priority_share: 0.2, ..JobsArgs::default() };
    let mut shortened = 0;
    for cluster in ITP_CLUSTERS {
        let jobs = load(&dir.join(format!("cluster{cluster}.csv")), None).unwrap();
        let off = run_one(cluster, &jobs, JobPolicy::Mlsched, &base);
        let on = run_one(cluster, &jobs, JobPolicy::Mlsched, &JobsArgs { preempt: true, ..base.clone() });
        let (before, after) = (high_queue(&off), high_queue(&on));
        eprintln!(
            "itp-{cluster}: high-priority queue {before:.0} s -> {after:.0} s; {} preemptions, {:.1} % of work lost",
            on.preemptions,
            100.0 * on.evicted_gpu_seconds / on.useful_gpu_seconds
        );
        for s in [&off, &on] {
            assert_eq!(s.partial_starts, 0, "itp-{cluster}: a gang ran with part of its pods");
            assert_eq!(s.jobs_finished + s.jobs_too_large, s.jobs, "itp-{cluster}: every job finishes");
        }
        assert_eq!((off.preemptions, off.evicted_gpu_seconds), (0, 0.0));
        assert!(on.evictions >= on.preemptions, "itp-{cluster}: every preemption evicts");
        // Where high-priority jobs queue at all, preemption shortens it.
        if before > 600.0 {
            assert!(on.preemptions > 0, "itp-{cluster}");
            assert!(after < before, "itp-{cluster}: {after} vs {before}");
            shortened += 1;
        }
        assert!(on.evicted_gpu_seconds <= 0.25 * on.useful_gpu_seconds, "itp-{cluster}: too much work thrown away");
    }
    assert!(shortened >= 3, "high-priority jobs queued on only {shortened} ITP clusters");
}
