//! The six paper policies replayed over the paper's ten seeds reproduce the FGD artifact's published
//! means of unallocated GPU at 100 % arrived workload: within ±0.5 points on the default trace (bundled),
//! within ±1.0 on every published variant in the shared trace folder. In the same runs, mlsched's policy
//! leaves no more GPU unallocated than the better of FGD and BestFit, with the prior and learned online, on
//! every workload of the folder, the ones the artifact did not publish included (there only BestFit, FGD
//! and mlsched's two are replayed).

mod common;

use mlsched::plugins::policy::Policy;
use mlsim::compare::run_all;
use mlsim::published::Published;
use mlsim::reproduce::{WorkloadResult, rows, run_workload, shared_workloads, tolerance, workload_file};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, Source, read_nodes, read_pods};

const SEEDS: [u64; 10] = [42, 43, 44, 45, 46, 47, 48, 49, 50, 51];

fn check(workload: &str, pods: &[mlsim::trace::TracePod]) {
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let published = Published::load().unwrap();
    if !published.workloads().iter().any(|w| w == workload) {
        return check_unpublished(workload, &nodes, pods, &published);
    }
    let result = run_workload(workload, &nodes, pods, &SEEDS);
    let rows = rows(&result, &published);
    assert_eq!(rows.len(), 8);
    let mean = |p: Policy| rows.iter().find(|r| r.policy == p).expect("every policy ran").ours.0;
    let best = mean(Policy::Fgd).min(mean(Policy::BestFit));
    for ours in [Policy::Mlsched, Policy::MlschedOnline] {
        assert!(mean(ours) <= best, "{workload}: {ours} {:.2} > min(fgd, bestfit) {best:.2}", mean(ours));
    }
    let mut misses = Vec::new();
    for r in rows.iter().filter(|r| Policy::ALL.contains(&r.policy)) {
        let published = r.published.expect("the artifact published every policy of this workload");
        eprintln!("{workload} {}: {:.2} (published {published:.2})", r.policy, r.ours.0);
        if r.within_tolerance() != Some(true) {
            misses.push(format!("{} {:.2} vs {published:.2}", r.policy, r.ours.0));
        }
    }
    assert!(misses.is_empty(), "{workload}: outside ±{}: {misses:?}", tolerance(workload));
}

/// No published means to reproduce: BestFit, FGD and mlsched's two only, mlsched's at or below the better
/// of BestFit and FGD.
fn check_unpublished(workload: &str, nodes: &[mlsched::core::Node], pods: &[mlsim::trace::TracePod], p: &Published) {
    let policies = [Policy::BestFit, Policy::Fgd, Policy::Mlsched, Policy::MlschedOnline];
    let result = WorkloadResult { workload: workload.into(), summaries: run_all(nodes, pods, &policies, &SEEDS, 1.3) };
    let rows = rows(&result, p);
    assert_eq!(rows.len(), 4);
    let mean = |p: Policy| rows.iter().find(|r| r.policy == p).expect("every policy ran").ours.0;
    let best = mean(Policy::Fgd).min(mean(Policy::BestFit));
    for ours in [Policy::Mlsched, Policy::MlschedOnline] {
        eprintln!("{workload} {ours}: {:.2} (min(fgd, bestfit) {best:.2})", mean(ours));
        assert!(mean(ours) <= best, "{workload}: {ours} {:.2} > min(fgd, bestfit) {best:.2}", mean(ours));
    }
}

#[test]
fn default_workload_reproduces_the_published_means() {
    check("default", &read_pods(&BUNDLED_PODS).unwrap());
}

/// The variants live beside the repository (`../shared/traces/alibaba-gpu-2023`), not in it. CI always
/// has them, so there a missing folder fails; a user's clone without them skips this test, loudly.
#[test]
fn variant_workloads_reproduce_the_published_means() {
    let Some(dir) = common::shared_trace("alibaba-gpu-2023") else { return };
    let workloads = shared_workloads(&dir).unwrap();
    for published in Published::load().unwrap().workloads() {
        assert!(workloads.contains(&published), "the shared folder lacks the published workload {published}");
    }
    for workload in workloads.iter().filter(|w| *w != "default") {
        let pods = read_pods(&Source::File(&workload_file(&dir, workload))).unwrap();
        check(workload, &pods);
    }
}
