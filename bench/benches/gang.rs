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
//!
//! `preempt_on_5000_full_nodes`: the same tree with every node full of priority-0 pods, and a priority-10
//! gang of 16 × 8 GPUs that fits nowhere (`plan_preemption`, victims chosen and confirmed on copies):
//! - `whole_node_pods`: one 8-GPU pod per node; the 16 youngest free 16 nodes.
//! - `half_node_pods`: two 4-GPU pods per node, and the younger half of each node's pair are the 5,000
//!   youngest: the hardest order, where 5,016 evictions come before 16 nodes are whole again.
//!
//! `queue_between_passes`: what the live scheduler asks its `GangQueue` on every batch of events (`ready`,
//! `counts`, `next_wakeup`) with 10 units waiting, beside 5,000 placed units still binding (a throttled
//! scheduler's backlog) and beside none: the backlog should cost nothing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mlsched::core::{GpuRequest, MIB, Node, Pod, Resources, Snapshot};
use mlsched::framework::Profile;
use mlsched::gang::{Backoff, Gang, GangQueue, QueueConfig, RunningUnit, plan_gang, plan_preemption};
use mlsched::plugins::{GpuFit, NodeAffinityFilter, NodeUnschedulable, ResourcesFit, TaintToleration};
use mlsched::topology::{HOSTNAME_LABEL, Topology};

const SPINE: &str = "network.mlsched.io/spine";
const RACK: &str = "network.mlsched.io/rack";

fn fat_tree() -> Snapshot {
    let mut snapshot = empty_fat_tree();
    for id in (0..5000).step_by(3) {
        let pod = Pod::new(format!("running/{id}"), Resources::new(8000, 64 * MIB, 1), GpuRequest::whole(4));
        snapshot.assume(&pod, id, &[0, 1, 2, 3]).unwrap();
    }
    snapshot
}

fn empty_fat_tree() -> Snapshot {
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
    Snapshot::new(nodes).unwrap()
}

/// Every node full of priority-0 single pods of `gpus` GPUs; the `k`-th pod of every node started after
/// all the `k-1`-th ones.
fn full_fat_tree(gpus: u32) -> (Snapshot, Vec<RunningUnit>) {
    let mut snapshot = empty_fat_tree();
    let mut running = Vec::new();
    for k in 0..8 / gpus {
        for id in 0..5000 {
            let name = format!("low/{id}-{k}");
            let pod = Pod::new(&name, Resources::new(8000, 64 * MIB, 1), GpuRequest::whole(gpus));
            let devices: Vec<usize> = (k * gpus..(k + 1) * gpus).map(|d| d as usize).collect();
            snapshot.assume(&pod, id, &devices).unwrap();
            let started = Duration::from_secs(u64::from(k) * 5000 + id as u64);
            running.push(RunningUnit { name: name.clone(), priority: 0, pods: vec![name], started });
        }
    }
    (snapshot, running)
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

fn bench_preemption(c: &mut Criterion) {
    let profile = profile();
    let urgent = gang("urgent", 16, 8).with_priority(10);
    let mut group = c.benchmark_group("preempt_on_5000_full_nodes");
    group.sample_size(10);
    for (name, gpus) in [("whole_node_pods", 8), ("half_node_pods", 4)] {
        let (snapshot, running) = full_fat_tree(gpus);
        let topology = Topology::from_labels(&[SPINE, RACK, HOSTNAME_LABEL], snapshot.nodes()).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let plan = plan_preemption(&profile, &snapshot, &topology, &urgent, &running, None).expect("room");
                assert_eq!(plan.victims.len(), (16 * 8 / gpus) as usize);
                black_box(plan.nodes.len())
            })
        });
    }
    group.finish();
}

/// A live queue with 10 units backing off, after `binding` single-pod units were placed and not yet bound.
fn queue_with_binding(binding: usize) -> GangQueue {
    let backoff = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) };
    let mut queue = GangQueue::new(QueueConfig { backoff, ..QueueConfig::default() });
    let mut snapshot = empty_fat_tree();
    let topology = Topology::from_labels(&[SPINE, RACK, HOSTNAME_LABEL], snapshot.nodes()).unwrap();
    for i in 0..binding {
        let pod = Pod::new(format!("placed/{i}"), Resources::new(1000, 64 * MIB, 1), GpuRequest::whole(1));
        queue.add_gang(Gang::single(pod), Duration::ZERO).unwrap();
    }
    let placed = queue.schedule_pass(&profile(), &mut snapshot, &topology, Duration::ZERO).placed.len();
    assert_eq!(placed, binding);
    for i in 0..10 {
        queue.add_gang(gang(&format!("waiting-{i}"), 1, 16), Duration::ZERO).unwrap();
    }
    let waiting = queue.schedule_pass(&profile(), &mut snapshot, &topology, Duration::ZERO).waiting.len();
    assert_eq!(waiting, 10, "16 GPUs fit on no node");
    queue
}

fn bench_queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_between_passes");
    for binding in [0, 5000] {
        let queue = queue_with_binding(binding);
        group.bench_function(format!("{binding}_binding"), |b| {
            let now = Duration::from_millis(500);
            b.iter(|| black_box((queue.ready(now).len(), queue.counts(now), queue.next_wakeup())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gang, bench_preemption, bench_queue);
criterion_main!(benches);
