//! Topology-aware gangs never finish later than topology-blind ones: every shared training-job trace
//! (each ITP cluster, each Philly virtual cluster on its own cluster, Philly whole), at the default load
//! and a higher one, with the default slowdown model. The full sweep (four loads × nine slowdown models)
//! is `mlsim jobs --sweep`, generated into `bench/README.md`; this is the subset that fits CI's time.
//!
//! The traces live beside the repository (`../shared/traces`). CI always has them, so there a missing
//! folder fails; a clone without them skips, loudly.

mod common;

use std::path::PathBuf;

use mlsim::jobs::JobsArgs;
use mlsim::jobs::slowdown::{DEFAULT_ALPHA_RACK, DEFAULT_ALPHA_SPINE};
use mlsim::jobs::sweep::{P99_TOLERANCE, SweepGrid, sweep, sweep_traces};

/// The shared traces folder, if it holds both the ITP and the Philly traces.
fn traces_dir() -> Option<PathBuf> {
    common::shared_trace("microsoft-itp-2021")?;
    common::shared_trace("philly-pollux")?;
    common::shared_trace("")
}

fn args() -> JobsArgs {
    JobsArgs::default()
}

#[test]
fn mlsched_is_never_slower_than_gang_on_any_shared_trace_at_two_loads() {
    let Some(dir) = traces_dir() else { return };
    let traces = sweep_traces(&dir, None).unwrap();
    assert!(traces.len() >= 18, "7 ITP clusters, 10 Philly VCs, Philly whole: {}", traces.len());
    let grid = SweepGrid { loads: vec![0.7, 0.9], alphas: vec![(DEFAULT_ALPHA_RACK, DEFAULT_ALPHA_SPINE)] };
    let cells = sweep(&traces, &grid, &args());
    assert_eq!(cells.len(), 2 * traces.len());
    let mut faster = 0;
    for c in &cells {
        let (m, g) = (&c.mlsched, &c.gang);
        eprintln!(
            "{} load {}: {} gangs on {}: mean JCT {:.2} h vs gang {:.2} h, p99 {:.1} vs {:.1} h ({:.1} s + {:.1} s)",
            c.trace,
            c.load,
            c.gangs,
            c.cluster,
            m.mean_jct_seconds / 3600.0,
            g.mean_jct_seconds / 3600.0,
            m.p99_jct_seconds / 3600.0,
            g.p99_jct_seconds / 3600.0,
            m.elapsed_seconds,
            g.elapsed_seconds
        );
        assert_eq!(m.jobs_finished + m.jobs_too_large, m.jobs, "{} load {}: every job finishes", c.trace, c.load);
        assert_eq!(m.partial_gang_gpu_seconds, 0.0, "{} load {}: no partial gang", c.trace, c.load);
        assert!(
            m.mean_jct_seconds <= g.mean_jct_seconds,
            "{} load {}: mlsched mean JCT {:.0} s above gang's {:.0} s",
            c.trace,
            c.load,
            m.mean_jct_seconds,
            g.mean_jct_seconds
        );
        assert!(
            c.p99_ratio() <= P99_TOLERANCE,
            "{} load {}: mlsched p99 {:.0} s more than 2 % above gang's {:.0} s",
            c.trace,
            c.load,
            m.p99_jct_seconds,
            g.p99_jct_seconds
        );
        assert!(c.holds());
        if m.multi_pod_jobs == 0 {
            assert_eq!(m.mean_jct_seconds, g.mean_jct_seconds, "{}: no gang, no difference", c.trace);
        }
        faster += usize::from(m.mean_jct_seconds < 0.99 * g.mean_jct_seconds);
    }
    // Where gangs meet contention (ITP 01, 02, 04, 06, Philly b436b2 and ee9e8c, Philly whole), locality
    // pays: at least one of the two loads of each is more than 1 % faster.
    assert!(faster >= 7, "only {faster} cells more than 1 % faster than gang");
}
