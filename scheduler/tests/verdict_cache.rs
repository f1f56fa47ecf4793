//! The verdict cache changes no decision: for every policy, in the scheduler's profile (policy plus network
//! proximity), a profile that keeps verdicts and scores across cycles decides every pod of a random
//! sequence of arrivals and departures exactly as the same profile filtering and scoring afresh, on whole
//! clusters and on subsets of nodes (the gang planner's domains), with MIG, model restrictions, selectors
//! and taints in play. The cluster spans three blocks of node stamps, so that unchanged blocks are skipped
//! while others are summarized again.

use std::sync::Arc;

use mlsched::core::selector::{Taint, TaintEffect};
use mlsched::core::{GpuRequest, MIB, MigRequest, Node, Pod, Resources, Snapshot};
use mlsched::frag::TypicalShapes;
use mlsched::framework::cycle::{choose, feasible_among};
use mlsched::framework::{Profile, schedule_one};
use mlsched::plugins::NetworkProximityScore;
use mlsched::plugins::policy::{Policy, PolicyInputs, scheduler_profile};
use proptest::prelude::*;

fn cluster() -> Snapshot {
    let mut nodes = Vec::new();
    for i in 0..150 {
        let res = Resources::new([16_000, 32_000, 64_000][i % 3], 256 * 1024 * MIB, 110);
        let node = match i % 6 {
            0 | 1 => Node::new(format!("v100-{i:02}"), res).with_gpus(8, "V100"),
            2 => Node::new(format!("t4-{i:02}"), res).with_gpus(4, "T4"),
            3 => Node::new(format!("mig-{i:02}"), res).with_mig_gpus(2, "A100-80GB").expect("a MIG model"),
            4 => Node::new(format!("cpu-{i:02}"), res),
            _ => {
                let mut n = Node::new(format!("tainted-{i:02}"), res).with_gpus(2, "V100");
                n.taints.push(Taint {
                    key: "dedicated".into(),
                    value: "batch".into(),
                    effect: TaintEffect::NoSchedule,
                });
                n
            }
        };
        nodes.push(node.with_label("zone", if i < 75 { "a" } else { "b" }).with_label("rack", format!("r{}", i / 4)));
    }
    Snapshot::new(nodes).unwrap()
}

/// A handful of shapes, so that shapes repeat and the cache is exercised.
fn shape(kind: u8, cpu: u8, near: bool) -> Pod {
    let gpu = match kind % 6 {
        0 => GpuRequest::none(),
        1 => GpuRequest::whole(1),
        2 => GpuRequest::whole(2),
        3 => GpuRequest::shared(250),
        4 => GpuRequest::shared(500).with_models(vec![Arc::from("T4")]),
        _ => GpuRequest::none(),
    };
    let mut pod = Pod::new("", Resources::new([1000, 4000, 12_000][cpu as usize % 3], MIB, 1), gpu);
    if kind % 6 == 5 {
        pod.mig =
            Some(MigRequest { profile: if cpu.is_multiple_of(2) { "1g.10gb" } else { "3g.40gb" }.into(), count: 1 });
    }
    if kind >= 6 {
        pod.node_selector.insert("zone".into(), "b".into());
    }
    if near {
        pod.near_nodes = vec!["v100-00".into(), "v100-07".into()];
    }
    pod
}

#[derive(Debug, Clone)]
enum Step {
    Arrive { kind: u8, cpu: u8, near: bool },
    Leave(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0u8..12, 0u8..3, any::<bool>()).prop_map(|(kind, cpu, near)| Step::Arrive { kind, cpu, near }),
        1 => (0usize..1000).prop_map(Step::Leave),
    ];
    prop::collection::vec(step, 1..120)
}

fn profile(policy: Policy) -> Profile {
    let typical = TypicalShapes::from_pods(
        &(0..12).map(|k| Pod { key: format!("t{k}"), ..shape(k, k, false) }).collect::<Vec<_>>(),
        TypicalShapes::DEFAULT_COVERAGE,
    );
    let proximity = NetworkProximityScore::from_labels(&["zone", "rack"]).unwrap();
    scheduler_profile(policy, PolicyInputs { seed: 3, typical }, 1000, Some(proximity))
}

fn check_policy(policy: Policy, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut snapshot = cluster();
    let mut cached = profile(policy);
    let mut fresh = profile(policy).without_verdict_cache();
    let mut placed: Vec<String> = Vec::new();
    let subset: Vec<usize> = (0..snapshot.nodes().len()).filter(|i| i % 3 != 1).collect();
    for (n, step) in steps.iter().enumerate() {
        match *step {
            Step::Arrive { kind, cpu, near } => {
                let pod = Pod { key: format!("ns/p{n}"), ..shape(kind, cpu, near) };
                cached.observe_arrival(&pod);
                fresh.observe_arrival(&pod);
                let on_subset = |profile: &Profile| {
                    let (feasible, reasons) = feasible_among(profile, &snapshot, &pod, subset.iter().copied());
                    (choose(profile, &snapshot, &pod, &feasible), feasible, reasons)
                };
                prop_assert_eq!(on_subset(&cached), on_subset(&fresh), "{} on a subset, step {}", policy, n);
                let decision = schedule_one(&cached, &snapshot, &pod);
                prop_assert_eq!(&decision, &schedule_one(&fresh, &snapshot, &pod), "{}, step {}", policy, n);
                if let Ok(d) = decision {
                    snapshot.assume_decision(&pod, &d).unwrap();
                    placed.push(pod.key);
                }
            }
            Step::Leave(i) if !placed.is_empty() => {
                let key = placed.swap_remove(i % placed.len());
                snapshot.forget(&key).unwrap();
            }
            Step::Leave(_) => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn cached_verdicts_decide_as_fresh_ones(steps in steps()) {
        for policy in Policy::EXTENDED {
            check_policy(policy, &steps)?;
        }
    }
}

#[test]
fn a_rebuilt_snapshot_is_not_mistaken_for_the_one_cached() {
    // Same node names and ids, same per-node change count, different contents: stamps tell them apart.
    let cached = profile(Policy::MlschedOnline);
    let mut a = cluster();
    let filler = Pod { key: "ns/fill".into(), ..shape(2, 0, false) };
    let on_a = schedule_one(&cached, &a, &filler).unwrap();
    a.assume_decision(&filler, &on_a).unwrap();
    let mut b = cluster();
    let other = Pod { key: "ns/other".into(), ..shape(0, 2, false) };
    let on_b = schedule_one(&cached, &b, &other).unwrap();
    b.assume_decision(&other, &on_b).unwrap();
    let probe = Pod { key: "ns/probe".into(), ..shape(2, 0, false) };
    let fresh = profile(Policy::MlschedOnline).without_verdict_cache();
    for s in [&a, &b] {
        assert_eq!(schedule_one(&cached, s, &probe), schedule_one(&fresh, s, &probe));
    }
}
