//! The verdict cache leaves every decision of a replay unchanged: each policy replays the bundled trace
//! twice, once with its profile keeping verdicts and scores across cycles (as every replay and the scheduler
//! run) and once filtering and scoring every node afresh, and every pod ends on the same node and devices, or
//! fails in both.

use mlsched::framework::Profile;
use mlsched::plugins::policy::Policy;
use mlsim::replay::{ReplayInput, ReplayState};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, read_nodes, read_pods};

#[test]
fn every_policy_decides_every_pod_of_the_default_trace_as_without_the_cache() {
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let pods = read_pods(&BUNDLED_PODS).unwrap();
    for policy in Policy::EXTENDED {
        let input = ReplayInput { nodes: &nodes, pods: &pods, policy, seed: 42, tune: 1.3 };
        let mut cached = ReplayState::new(&input);
        let mut fresh = ReplayState::new(&input);
        let profile = std::mem::replace(&mut fresh.profile, Profile::new("placeholder"));
        fresh.profile = profile.without_verdict_cache();
        assert!(cached.profile.verdicts.is_enabled() && !fresh.profile.verdicts.is_enabled());
        let (mut placed, mut failed) = (0, 0);
        while !cached.is_done() {
            let key = cached.remaining()[0].pod.key.clone();
            cached.step();
            fresh.step();
            let (a, b) = (cached.snapshot.placement(&key), fresh.snapshot.placement(&key));
            assert_eq!(a, b, "{policy}: pod {key}");
            if a.is_some() { placed += 1 } else { failed += 1 }
        }
        assert!(fresh.is_done());
        assert!(
            placed > 5_000 && failed > 0,
            "{policy}: the replay reaches a full cluster ({placed} placed, {failed} failed)"
        );
    }
}
