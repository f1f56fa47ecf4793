//! Deciding one 512-pod gang on a 5000-node fat tree (10 spines × 25 racks × 20 nodes, 8 GPUs each).
//!
//! A third of the nodes already run a 4-GPU pod, so best fit and domain splitting have real choices.
//! - `whole_nodes`: 512 pods × 8 GPUs. No spine has 512 idle nodes, so the gang is split over two
//!   spines and ~26 racks: the hardest placement path.
//! - `one_gpu_each`: 512 pods × 1 GPU (64 nodes' worth), packed inside one spine.
//! - `rollback`: 600 pods × 8 GPUs with `min_member` 600 does not fit once assumed member by member
//!   (the estimate says yes; a GPU model pin on the last member makes the final attempt fail), so
//!   every attempt is rolled back: the cost of a gang that waits.
//! - `snapshot_clone`: what planning on a clone would pay before deciding anything.
//!
//! Each decision runs on a fresh copy of the snapshot (made outside the timed part).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mlsched::core::{GpuRequest, MIB, Node, Pod, Resources, Snapshot};
use mlsched::framework::Profile;
use mlsched::gang::{Gang, plan_gang};
use mlsched::plugins::{GpuFit, NodeAffinityFilter, NodeUnschedulable, ResourcesFit, TaintToleration};
use mlsched::topology::{HOSTNAME_LABEL, Topology};

const SPINE: &str = "network.mlsched.io/spine";
const RACK: &str = "network.mlsched.io/rack";

fn fat_tree() -> Snapshot {
    let mut nodes = Vec::with_capacity(5000);
    for spine in 0..10 {
        for rack in 0..25 {
            for host in 0..20 {
                let name = format!("s{spine}-r{rack}-n{host}");
                nodes.push(
                    Node::new(&name, Resources::new(128_000, 1024 * 1024 * MIB, 110))
                        .with_gpus(8, "H100")
                        .with_label(SPINE, format!("s{spine}"))
                        .with_label(RACK, format!("s{spine}-r{rack}"))
                        .with_label(HOSTNAME_LABEL, name),
                );
            }
        }
    }
    let mut snapshot = Snapshot::new(nodes).unwrap();
    for id in (0..5000).step_by(3) {
        let pod = Pod::new(format!("running/{id}"), Resources::new(8000, 64 * MIB, 1), GpuRequest::whole(4));
        snapshot.assume(&pod, id, &[0, 1, 2, 3]).unwrap();
    }
    snapshot
}

fn gang(name: &str, size: usize, gpus: u32) -> Gang {
    let members = (0..size)
        .map(|i| Pod::new(format!("{name}/worker-{i}"), Resources::new(8000, 64 * MIB, 1), GpuRequest::whole(gpus)))
        .collect();
    Gang::new(name, size, members)
}

fn profile() -> Profile {
    Profile::new("bench")
        .filter(NodeUnschedulable)
        .filter(NodeAffinityFilter)
        .filter(TaintToleration)
        .filter(ResourcesFit)
        .filter(GpuFit)
}

fn bench_gang(c: &mut Criterion) {
    let snapshot = fat_tree();
    let topology = Topology::from_labels(&[SPINE, RACK, HOSTNAME_LABEL], snapshot.nodes()).unwrap();
    let profile = profile();
    let whole_nodes = gang("whole", 512, 8);
    let one_gpu = gang("single", 512, 1);
    let mut doomed = gang("doomed", 600, 8);
    doomed.members[599].gpu = GpuRequest::whole(4).with_models(vec!["B200".into()]);

    let mut group = c.benchmark_group("gang_512_on_5000_nodes");
    for (name, gang) in [("whole_nodes", &whole_nodes), ("one_gpu_each", &one_gpu)] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || snapshot.clone(),
                |s| {
                    let placement = plan_gang(&profile, s, gang, &topology).expect("the gang fits");
                    black_box(placement.spread_hops)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.bench_function("rollback", |b| {
        b.iter_batched_ref(
            || snapshot.clone(),
            |s| black_box(plan_gang(&profile, s, &doomed, &topology).is_err()),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("snapshot_clone", |b| b.iter(|| black_box(snapshot.clone())));
    group.finish();
}

criterion_group!(benches, bench_gang);
criterion_main!(benches);
