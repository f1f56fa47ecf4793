//! `mlsim bound` on the bundled default workload: the proven bounds sit below every placement the
//! replays and the offline placements reach that they apply to, and they are not the trivial 0.

use mlsched::plugins::policy::Policy;
use mlsim::bound::bound_seed;
use mlsim::replay::{ReplayInput, replay};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, read_nodes, read_pods};

#[test]
fn the_bound_is_below_every_placement_and_above_zero_on_the_default_workload() {
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let pods = read_pods(&BUNDLED_PODS).unwrap();
    let seed = 42;
    let bound = bound_seed(&nodes, &pods, seed, 1.3).unwrap();
    assert!(bound.arrived_pct >= 99.5 && bound.arrived_pct <= 100.5, "{bound:?}");
    // The default's 810-milli shares leave slivers only its few small shares fill: the GPU configuration
    // rows see it, the summed capacity alone (0 %) does not.
    assert!(bound.lp_bound_pct > 2.5, "{bound:?}");
    assert!(bound.lp_bound_pct <= bound.offline_pct, "{bound:?}");
    assert!((bound.lp_bound_pct - bound.lp_solver_pct).abs() <= 0.05, "certificate far from the LP: {bound:?}");
    let must_run = bound.lp_bound_cpu_placed_pct.expect("the default's CPU-only pods fit");
    assert!(must_run >= bound.lp_bound_pct - 0.01, "{bound:?}");
    // Left free, the relaxation gets to ~3 % by leaving out early one-GPU pods and giving their room to
    // pods that come later. A placement that runs every one-GPU pod arriving before 95 % cannot, and no
    // such placement reaches 3.5 %.
    let no_early_failure = bound.lp_bound_no_early_failure_pct.expect("some placement runs the early pods");
    assert!(no_early_failure > 3.5 && no_early_failure > bound.lp_bound_pct + 0.3, "{bound:?}");
    for policy in [Policy::BestFit, Policy::Fgd, Policy::Mlsched] {
        let replayed = replay(&ReplayInput { nodes: &nodes, pods: &pods, policy, seed, tune: 1.3 }, &mut |_, _| {});
        let unallocated = replayed.unallocated_gpu_pct_at_100.unwrap();
        assert!(
            bound.lp_bound_pct <= unallocated,
            "{policy}: bound {} above the replay's {unallocated}",
            bound.lp_bound_pct
        );
        assert_eq!(replayed.cpu_only_failed_by_100, 0, "{policy} failed CPU-only pods on the default");
        assert!(must_run <= unallocated, "{policy}: every CPU-only pod ran, yet below the bound for that case");
        let first_failure = replayed.first_one_gpu_failure_arrived_pct.expect("the cluster fills up by 100 %");
        if first_failure >= mlsim::bound::NO_FAILURE_BEFORE_PCT {
            assert!(
                no_early_failure <= unallocated,
                "{policy}: failed no one-GPU pod before 95 %, yet below that bound"
            );
        } else {
            assert_eq!(policy, Policy::BestFit, "only BestFit fails a one-GPU pod before 95 % ({first_failure:.2})");
        }
    }
}
