//! `mlsim drift` on a stream that switches from large to small GPU shares halfway: mlsched-online's
//! fading window follows the new mix, where counting all history and a prior set before the change do not.

use mlsched::plugins::mlsched_score::LEARNER_HALF_LIFE;
use mlsched::plugins::policy::Policy;
use mlsim::drift::{DriftRun, Learner, run};
use mlsim::stress::{VARIANTS, generate};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, Source, TracePod, read_nodes, read_pods};

fn variant(name: &str) -> Vec<TracePod> {
    let Source::Bundled { bytes, .. } = BUNDLED_PODS else { unreachable!() };
    let variant = VARIANTS.iter().find(|v| v.name == name).unwrap();
    let (csv, _) = generate(bytes, variant, 1).unwrap();
    read_pods(&Source::Bundled { name, bytes: &csv }).unwrap()
}

fn mean(runs: &[DriftRun], learner: Learner, pick: impl Fn(&DriftRun) -> Option<f64>) -> f64 {
    let values: Vec<f64> = runs.iter().filter(|r| r.learner == learner).filter_map(pick).collect();
    assert!(!values.is_empty(), "{learner:?}");
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn the_fading_window_follows_a_changed_mix_and_packs_better_for_it() {
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let (first, second) = (variant("sharelarge"), variant("sharesmall"));
    let fading = Learner::Online(Some(LEARNER_HALF_LIFE));
    let all_history = Learner::Online(None);
    let stale = Learner::StalePrior(Policy::Mlsched);
    let runs = run(&nodes, &first, &second, &[fading, all_history, stale], &[42, 43, 44]);

    // The learned mix, 2048 pods after the switch (checkpoint 2): close to the new one only with fading.
    let distance = |l| mean(&runs, l, |r| r.distances[2]);
    assert!(distance(fading) < 0.35, "fading window still {} away", distance(fading));
    assert!(distance(fading) < 0.5 * distance(all_history), "{} vs {}", distance(fading), distance(all_history));

    // And the placements follow: less GPU left unallocated than with all history or the stale prior.
    let unallocated = |l| mean(&runs, l, |r| r.unallocated_pct);
    assert!(unallocated(fading) < unallocated(all_history), "{} vs {}", unallocated(fading), unallocated(all_history));
    assert!(unallocated(fading) < unallocated(stale), "{} vs {}", unallocated(fading), unallocated(stale));
}
