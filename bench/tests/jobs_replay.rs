//! `mlsim jobs` on the shared training-job traces: gangs never hold partial placements, topology-aware
//! gangs finish sooner than topology-blind ones, and pod-by-pod scheduling wastes GPUs on partial gangs.
//!
//! The traces live beside the repository (`../shared/traces`), not in it. CI always has them, so there a
//! missing file fails; a clone without them skips, loudly.
//!
//! To keep the file fast, the two large traces are cut to their first jobs (ITP cluster04: 4,000 of
//! 15,802; Philly: 12,000 of 55,055), with the default cluster sized for that prefix; every other shared
//! ITP cluster is replayed whole.

mod common;

use mlsim::jobs::{JobPolicy, JobsArgs, JobsSummary, load, run_one};

fn args() -> JobsArgs {
    JobsArgs::default()
}

/// The three policies on one trace (or its first `limit` jobs).
fn replay(relative: &str, limit: Option<usize>) -> Option<[JobsSummary; 3]> {
    let path = common::shared_trace(relative)?;
    let jobs = load(&path, limit).unwrap();
    let args = args();
    let runs = JobPolicy::ALL.map(|p| run_one(relative, &jobs, p, &args));
    for s in &runs {
        eprintln!(
            "{relative} {}: {} jobs ({} gangs) on {}: finished {}, mean JCT {:.2} h, partial-gang {:.1} GPU-h, {:.1} s",
            s.policy,
            s.jobs,
            s.multi_pod_jobs,
            s.cluster,
            s.jobs_finished,
            s.mean_jct_seconds / 3600.0,
            s.partial_gang_gpu_seconds / 3600.0,
            s.elapsed_seconds
        );
    }
    Some(runs)
}

/// What a trace is expected to show beyond the invariants.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Gangs met contention: mlsched's mean JCT is below gang's, and nogang wasted GPUs on partial gangs.
    MlschedFaster,
    /// Too few gangs to meet contention: all three policies finish every job, nothing more is claimed.
    Invariants,
}

fn check(relative: &str, limit: Option<usize>, expect: Expect) {
    let Some([mlsched, gang, nogang]) = replay(relative, limit) else { return };
    for s in [&mlsched, &gang, &nogang] {
        assert_eq!(s.jobs_finished + s.jobs_too_large, s.jobs, "{relative} {}: every job finishes", s.policy);
    }
    assert_eq!(mlsched.partial_gang_gpu_seconds, 0.0, "{relative}: gangs never hold a partial placement");
    assert_eq!(gang.partial_gang_gpu_seconds, 0.0, "{relative}: gangs never hold a partial placement");
    if mlsched.multi_pod_jobs == 0 {
        // No multi-node job: topology cannot matter, and single pods are placed the same way.
        assert_eq!(mlsched.mean_jct_seconds, gang.mean_jct_seconds, "{relative}");
        assert_eq!(nogang.partial_gang_gpu_seconds, 0.0, "{relative}");
        return;
    }
    assert!(
        mlsched.mean_gang_spread_hops <= gang.mean_gang_spread_hops,
        "{relative}: topology-aware gangs are at most as spread ({} vs {})",
        mlsched.mean_gang_spread_hops,
        gang.mean_gang_spread_hops
    );
    assert!(
        mlsched.mean_gang_jct_seconds <= gang.mean_gang_jct_seconds,
        "{relative}: multi-node jobs finish no later on average ({:.0} s vs {:.0} s)",
        mlsched.mean_gang_jct_seconds,
        gang.mean_gang_jct_seconds
    );
    if expect == Expect::Invariants {
        return;
    }
    assert!(nogang.partial_gang_gpu_seconds > 0.0, "{relative}: pods of incomplete gangs held GPUs");
    assert!(
        mlsched.mean_jct_seconds < gang.mean_jct_seconds,
        "{relative}: mlsched mean JCT {:.0} s is not below gang's {:.0} s",
        mlsched.mean_jct_seconds,
        gang.mean_jct_seconds
    );
}

#[test]
fn itp_cluster01() {
    check("microsoft-itp-2021/cluster01.csv", None, Expect::MlschedFaster);
}

#[test]
fn itp_cluster02() {
    check("microsoft-itp-2021/cluster02.csv", None, Expect::MlschedFaster);
}

#[test]
fn itp_cluster04_first_4000_jobs() {
    check("microsoft-itp-2021/cluster04.csv", Some(4000), Expect::MlschedFaster);
}

#[test]
fn itp_cluster06() {
    check("microsoft-itp-2021/cluster06.csv", None, Expect::MlschedFaster);
}

#[test]
fn itp_cluster08() {
    check("microsoft-itp-2021/cluster08.csv", None, Expect::Invariants);
}

#[test]
fn itp_cluster09() {
    check("microsoft-itp-2021/cluster09.csv", None, Expect::Invariants);
}

#[test]
fn itp_cluster10() {
    check("microsoft-itp-2021/cluster10.csv", None, Expect::Invariants);
}

#[test]
fn philly_first_12000_jobs() {
    check("philly-pollux/philly_jobs.csv.gz", Some(12_000), Expect::MlschedFaster);
}
