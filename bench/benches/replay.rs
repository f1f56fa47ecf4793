//! Hot paths of the simulator: one whole FGD replay of the paper's default trace, and the time of one
//! scheduling decision per policy on a cluster that is half full, on the default trace and on a stress
//! variant where CPU runs out first (mlsched's CPU-scarce stranding regime).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mlsched::framework::schedule_one;
use mlsched::plugins::policy::{Policy, PolicyInputs, profile_for};
use mlsim::replay::{ReplayInput, ReplayState, replay};
use mlsim::trace::{BUNDLED_NODES, BUNDLED_PODS, Source, TracePod, read_nodes, read_pods};

fn whole_replay(c: &mut Criterion) {
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let pods = read_pods(&BUNDLED_PODS).unwrap();
    let mut group = c.benchmark_group("replay_default");
    group.sample_size(10);
    for policy in [Policy::BestFit, Policy::Fgd] {
        group.bench_function(policy.name(), |b| {
            b.iter(|| {
                let input = ReplayInput { nodes: &nodes, pods: &pods, policy, seed: 42, tune: 1.3 };
                black_box(replay(&input, &mut |_, _| {}))
            })
        });
    }
    group.finish();
}

/// One decision (filter + score + choose, no assume) for each of the next 64 pods, from the state reached
/// after half of the stream. Every batch gets a fresh profile, so memoizing policies start cold: this is
/// the cost of a decision on a cluster state they have not seen, the worst case for them.
fn one_decision(c: &mut Criterion) {
    decisions_half_full(c, "decision_half_full", &read_pods(&BUNDLED_PODS).unwrap(), &Policy::EXTENDED);
}

/// The same on `cpux4` (4x the default's CPU-only pods, `mlsim stress --seed 1`), where the workload asks
/// more CPU per GPU than the cluster has and mlsched, given the prior, prices stranding by the expected fill
/// and the per-shape threshold. Its fill table is built with the prior, when the profile is made, so outside
/// the timed part, as FGD's typical shapes are. A fresh `mlsched-online` knows no shapes yet, so it is left
/// out.
fn one_decision_cpu_scarce(c: &mut Criterion) {
    let Source::Bundled { bytes, .. } = BUNDLED_PODS else { unreachable!("the default list is bundled") };
    let variant = mlsim::stress::VARIANTS.iter().find(|v| v.name == "cpux4").expect("cpux4");
    let (csv, _) = mlsim::stress::generate(bytes, variant, 1).unwrap();
    let pods = read_pods(&Source::Bundled { name: "cpux4", bytes: &csv }).unwrap();
    decisions_half_full(c, "decision_half_full_cpux4", &pods, &[Policy::BestFit, Policy::Fgd, Policy::Mlsched]);
}

fn decisions_half_full(c: &mut Criterion, name: &str, pods: &[TracePod], policies: &[Policy]) {
    let nodes = read_nodes(&BUNDLED_NODES).unwrap();
    let mut group = c.benchmark_group(name);
    for &policy in policies {
        let mut state = ReplayState::new(&ReplayInput { nodes: &nodes, pods, policy, seed: 42, tune: 1.3 });
        let half = state.stream.len() / 2;
        for _ in 0..half {
            state.step();
        }
        let next: Vec<_> = state.remaining().iter().take(64).map(|p| p.pod.clone()).collect();
        let inputs = PolicyInputs { seed: 42, typical: state.typical().clone() };
        group.bench_function(policy.name(), |b| {
            b.iter_batched(
                || profile_for(policy, inputs.clone()),
                |profile| {
                    for pod in &next {
                        let _ = black_box(schedule_one(&profile, &state.snapshot, pod));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, whole_replay, one_decision, one_decision_cpu_scarce);
criterion_main!(benches);
