//! Decisions per second of the core on a half-full 10,000-node cluster: the bundled openb node list repeated
//! until it holds 10,000 nodes (each copy renamed), filled with the default trace's pods by the FGD method
//! until half of the stream has arrived. One iteration decides and assumes the next 1,024 pods of the stream
//! in order, as a replay does, then forgets them again. The profile is the one that placed the first half,
//! so its score memo is warm, as the live scheduler's is after its first minutes.
//!
//! Each policy runs twice on the same state in the same process: `fresh`, filtering and scoring every node
//! in every cycle (the profile's verdict cache switched off: the core before the cache), and `cached`, the
//! shipped profile, whose cache is filled by the first (warm-up) iterations.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mlsched::framework::schedule_one;
use mlsched::framework::verdicts::VerdictCache;
use mlsched::plugins::policy::Policy;
use mlsim::replay::{ReplayInput, ReplayState};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, read_nodes, read_pods};

const NODES: usize = 10_000;
const PODS_PER_ITERATION: usize = 1_024;

fn decide_assume_forget(state: &mut ReplayState, next: &[mlsched::core::Pod]) -> usize {
    let mut placed = Vec::with_capacity(next.len());
    for pod in next {
        if let Ok(decision) = black_box(schedule_one(&state.profile, &state.snapshot, pod)) {
            state.snapshot.assume_decision(pod, &decision).expect("a feasible decision can be assumed");
            placed.push(&pod.key);
        }
    }
    for key in &placed {
        state.snapshot.forget(key).expect("placed above");
    }
    placed.len()
}

fn ten_thousand_nodes(c: &mut Criterion) {
    let base = read_nodes(&BUNDLED_NODES).unwrap();
    let pods = read_pods(&BUNDLED_PODS).unwrap();
    let nodes: Vec<_> = (0..NODES)
        .map(|i| {
            let mut n = base[i % base.len()].clone();
            n.name = format!("{}-c{}", n.name, i / base.len());
            n
        })
        .collect();
    let mut group = c.benchmark_group("decision_half_full_10k_nodes");
    group.sample_size(10);
    for policy in [Policy::MlschedOnline, Policy::Fgd, Policy::BestFit] {
        let mut state = ReplayState::new(&ReplayInput { nodes: &nodes, pods: &pods, policy, seed: 42, tune: 1.3 });
        let half = state.stream.len() / 2;
        for _ in 0..half {
            state.step();
        }
        let next: Vec<_> = state.remaining().iter().take(PODS_PER_ITERATION).map(|p| p.pod.clone()).collect();
        let cache = std::mem::replace(&mut state.profile.verdicts, VerdictCache::disabled());
        group
            .bench_function(format!("{}/fresh", policy.name()), |b| b.iter(|| decide_assume_forget(&mut state, &next)));
        state.profile.verdicts = cache;
        let before = state.profile.verdicts.hits_and_misses();
        group.bench_function(format!("{}/cached", policy.name()), |b| {
            b.iter(|| decide_assume_forget(&mut state, &next))
        });
        let after = state.profile.verdicts.hits_and_misses();
        let (hits, misses) = (after.0 - before.0, after.1 - before.1);
        println!("{}/cached: {hits} cycles found their shape kept, {misses} did not", policy.name());
    }
    group.finish();
}

criterion_group!(benches, ten_thousand_nodes);
criterion_main!(benches);
