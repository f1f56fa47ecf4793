//! Decisions per second of the core on a half-full 10,000-node cluster: the bundled openb node list repeated
//! until it holds 10,000 nodes (each copy renamed), filled with the default trace's pods by the FGD method
//! until half of the stream has arrived, then the time of one decision (filter + score + choose, no assume)
//! for each of the next 64 pods. The profile is the one that placed the first half, so its memo is warm, as
//! the live scheduler's is after its first minutes.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mlsched::framework::schedule_one;
use mlsched::plugins::policy::Policy;
use mlsim::replay::{ReplayInput, ReplayState};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, read_nodes, read_pods};

const NODES: usize = 10_000;

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
        let next: Vec<_> = state.remaining().iter().take(64).map(|p| p.pod.clone()).collect();
        group.bench_function(policy.name(), |b| {
            b.iter(|| {
                for pod in &next {
                    let _ = black_box(schedule_one(&state.profile, &state.snapshot, pod));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ten_thousand_nodes);
criterion_main!(benches);
