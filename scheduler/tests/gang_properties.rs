//! Properties of gang placement over random clusters and random sequences of gangs arriving and
//! finishing: a gang is never partly placed (between 1 and `min_member - 1` members), no node is ever
//! over-committed, and a gang that is not placed leaves the snapshot exactly as it was.

use mlsched::core::{GPU_MILLI, GpuRequest, MIB, Node, Pod, Resources, Snapshot};
use mlsched::framework::Profile;
use mlsched::gang::{Gang, GangPlacement, plan_gang};
use mlsched::plugins::{GpuFit, NodeAffinityFilter, NodeUnschedulable, ResourcesFit, TaintToleration};
use mlsched::topology::{HOSTNAME_LABEL, Topology};
use proptest::prelude::*;

const SPINE: &str = "network.mlsched.io/spine";
const RACK: &str = "network.mlsched.io/rack";

#[derive(Debug, Clone)]
struct NodeSpec {
    spine: u8,
    rack: u8,
    gpus: usize,
    cpu_cores: i64,
    labelled: bool,
}

#[derive(Debug, Clone)]
struct GangSpec {
    members: usize,
    min_member: usize,
    gpu: GpuRequest,
    cpu_milli: i64,
    require_rack: Option<bool>,
}

#[derive(Debug, Clone)]
enum Step {
    Arrive(GangSpec),
    /// Finish the placed gang at this index (modulo how many are running).
    Finish(usize),
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (0u8..3, 0u8..3, prop_oneof![Just(0usize), Just(4), Just(8)], 4i64..64, prop::bool::weighted(0.9))
        .prop_map(|(spine, rack, gpus, cpu_cores, labelled)| NodeSpec { spine, rack, gpus, cpu_cores, labelled })
}

fn gpu_request() -> impl Strategy<Value = GpuRequest> {
    prop_oneof![
        Just(GpuRequest::none()),
        (1u32..=8).prop_map(GpuRequest::whole),
        (100i64..=900).prop_map(GpuRequest::shared),
    ]
}

fn gang_spec() -> impl Strategy<Value = GangSpec> {
    (1usize..=8, gpu_request(), 500i64..16_000, prop::option::of(any::<bool>())).prop_flat_map(
        |(members, gpu, cpu_milli, require_rack)| {
            (1..=members).prop_map(move |min_member| GangSpec {
                members,
                min_member,
                gpu: gpu.clone(),
                cpu_milli,
                require_rack,
            })
        },
    )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![3 => gang_spec().prop_map(Step::Arrive), 1 => any::<usize>().prop_map(Step::Finish)]
}

fn build_cluster(specs: &[NodeSpec]) -> Snapshot {
    let nodes = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = format!("n{i}");
            let mut node =
                Node::new(&name, Resources::new(s.cpu_cores * 1000, 256 * MIB, 16)).with_gpus(s.gpus, "A100");
            if s.labelled {
                node = node.with_label(SPINE, format!("s{}", s.spine)).with_label(RACK, format!("r{}", s.rack));
            }
            node.with_label(HOSTNAME_LABEL, name)
        })
        .collect();
    Snapshot::new(nodes).unwrap()
}

fn build_gang(name: &str, spec: &GangSpec) -> Gang {
    let members = (0..spec.members)
        .map(|i| Pod::new(format!("{name}/p{i}"), Resources::new(spec.cpu_milli, MIB, 1), spec.gpu.clone()))
        .collect();
    let gang = Gang::new(name, spec.min_member, members);
    match spec.require_rack {
        Some(true) => gang.requiring(RACK),
        Some(false) => gang.preferring(RACK),
        None => gang,
    }
}

fn profile() -> Profile {
    Profile::new("prop")
        .filter(NodeUnschedulable)
        .filter(NodeAffinityFilter)
        .filter(TaintToleration)
        .filter(ResourcesFit)
        .filter(GpuFit)
}

fn assert_no_overcommit(snapshot: &Snapshot) -> Result<(), TestCaseError> {
    for node in snapshot.nodes() {
        prop_assert!(
            node.allocatable.insufficient(&node.requested).is_empty(),
            "{} over-committed: {}",
            node.name,
            node.requested
        );
        for gpu in &node.gpus {
            prop_assert!((0..=GPU_MILLI).contains(&gpu.used_milli), "{} GPU at {} milli", node.name, gpu.used_milli);
        }
    }
    // The node totals are exactly the sum of the placements on them.
    let mut gpu_from_placements = vec![0i64; snapshot.nodes().len()];
    for (_, placement) in snapshot.placements() {
        gpu_from_placements[placement.node] += placement.gpus.devices.iter().map(|(_, m)| m).sum::<i64>();
    }
    for (node, expected) in snapshot.nodes().iter().zip(gpu_from_placements) {
        prop_assert_eq!(node.gpus.iter().map(|g| g.used_milli).sum::<i64>(), expected);
    }
    Ok(())
}

fn assert_all_or_none(snapshot: &Snapshot, gangs: &[Gang]) -> Result<(), TestCaseError> {
    for gang in gangs {
        let placed = gang.members.iter().filter(|p| snapshot.placement(&p.key).is_some()).count();
        prop_assert!(
            placed == 0 || placed >= gang.min_member,
            "gang {} has {placed}/{} placed",
            gang.name,
            gang.min_member
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn gangs_are_placed_whole_or_not_at_all(nodes in prop::collection::vec(node_spec(), 1..24), steps in prop::collection::vec(step(), 1..40)) {
        let mut snapshot = build_cluster(&nodes);
        let topology = Topology::from_labels(&[SPINE, RACK, HOSTNAME_LABEL], snapshot.nodes()).unwrap();
        let profile = profile();
        let mut seen: Vec<Gang> = Vec::new();
        let mut running: Vec<GangPlacement> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Arrive(spec) => {
                    let gang = build_gang(&format!("g{i}"), spec);
                    let before = snapshot.nodes().to_vec();
                    let placed_before = snapshot.placed_pods();
                    match plan_gang(&profile, &mut snapshot, &gang, &topology) {
                        Ok(placement) => {
                            prop_assert!(placement.members.len() >= gang.min_member);
                            prop_assert_eq!(placement.members.len() + placement.left_pending.len(), gang.members.len());
                            if spec.require_rack == Some(true) {
                                let racks: std::collections::BTreeSet<_> =
                                    placement.nodes().iter().map(|&n| topology.domain_of(n, 1)).collect();
                                prop_assert_eq!(racks.len(), 1, "a rack-required gang spans racks");
                            }
                            running.push(placement);
                        }
                        Err(_) => {
                            prop_assert_eq!(snapshot.nodes(), &before[..]);
                            prop_assert_eq!(snapshot.placed_pods(), placed_before);
                        }
                    }
                    seen.push(gang);
                }
                Step::Finish(which) => {
                    if !running.is_empty() {
                        let finished = running.remove(which % running.len());
                        finished.release(&mut snapshot).unwrap();
                    }
                }
            }
            assert_no_overcommit(&snapshot)?;
            assert_all_or_none(&snapshot, &seen)?;
        }
        for placement in running.drain(..) {
            placement.release(&mut snapshot).unwrap();
        }
        prop_assert_eq!(snapshot.placed_pods(), 0);
        prop_assert!(snapshot.nodes().iter().all(|n| n.requested == Resources::default() && n.gpus.iter().all(|g| g.used_milli == 0)));
    }
}
