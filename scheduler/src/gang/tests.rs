use std::time::Duration;

use super::plan::reservation_for;
use super::*;
use crate::core::{GpuRequest, MIB, Node, Resources};
use crate::framework::Profile;
use crate::plugins::{GpuFit, NodeAffinityFilter, NodeUnschedulable, ResourcesFit, TaintToleration};
use crate::topology::{HOSTNAME_LABEL, Topology};

const SPINE: &str = "network.mlsched.io/spine";
const RACK: &str = "network.mlsched.io/rack";

pub(super) fn profile() -> Profile {
    Profile::new("gang-test")
        .filter(NodeUnschedulable)
        .filter(NodeAffinityFilter)
        .filter(TaintToleration)
        .filter(ResourcesFit)
        .filter(GpuFit)
}

fn gpu_node(name: &str, spine: &str, rack: &str, gpus: usize) -> Node {
    Node::new(name, Resources::new(128_000, 1024 * MIB, 110))
        .with_gpus(gpus, "A100")
        .with_label(SPINE, spine)
        .with_label(RACK, rack)
        .with_label(HOSTNAME_LABEL, name)
}

/// `racks` of (spine, rack, nodes) with 8-GPU nodes named `{rack}-n{i}`.
pub(super) fn cluster(racks: &[(&str, &str, usize)]) -> Snapshot {
    let nodes = racks
        .iter()
        .flat_map(|&(spine, rack, count)| (0..count).map(move |i| gpu_node(&format!("{rack}-n{i}"), spine, rack, 8)))
        .collect();
    Snapshot::new(nodes).unwrap()
}

pub(super) fn topology(snapshot: &Snapshot) -> Topology {
    Topology::from_labels(&[SPINE, RACK, HOSTNAME_LABEL], snapshot.nodes()).unwrap()
}

fn pods(gang: &str, count: usize, gpus: u32) -> Vec<Pod> {
    (0..count)
        .map(|i| Pod::new(format!("{gang}/p{i}"), Resources::new(1000, MIB, 1), GpuRequest::whole(gpus)))
        .collect()
}

pub(super) fn gang(name: &str, count: usize, gpus: u32) -> Gang {
    Gang::new(name, count, pods(name, count, gpus))
}

fn rack_of(snapshot: &Snapshot, node: NodeId) -> &str {
    &snapshot.nodes()[node].labels[RACK]
}

fn members_per_rack(snapshot: &Snapshot, placement: &GangPlacement) -> Vec<(String, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for node in placement.nodes() {
        *counts.entry(rack_of(snapshot, node).to_string()).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

/// Fills `gpus` GPUs of `node` with a placeholder pod.
fn occupy(snapshot: &mut Snapshot, node: &str, gpus: u32) {
    let id = snapshot.node_id(node).unwrap();
    let pod = Pod::new(format!("filler/{node}"), Resources::new(1, 1, 1), GpuRequest::whole(gpus));
    let devices: Vec<usize> = (0..gpus as usize).collect();
    snapshot.assume(&pod, id, &devices).unwrap();
}

#[test]
fn two_gangs_that_fit_only_one_at_a_time_never_share_the_cluster() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let first = gang("g1", 3, 4);
    let second = gang("g2", 3, 4);
    let placed = plan_gang(&profile(), &mut snapshot, &first, &topo).unwrap();
    assert_eq!(placed.members.len(), 3);
    let before = snapshot.nodes().to_vec();
    let err = plan_gang(&profile(), &mut snapshot, &second, &topo).unwrap_err();
    assert!(matches!(err, GangUnschedulable::NoRoom { placeable: 1, .. }), "{err}");
    assert_eq!(snapshot.nodes(), &before[..], "the waiting gang holds nothing");
    assert!(second.members.iter().all(|p| snapshot.placement(&p.key).is_none()));
    placed.release(&mut snapshot).unwrap();
    let placed_second = plan_gang(&profile(), &mut snapshot, &second, &topo).unwrap();
    assert_eq!(placed_second.members.len(), 3);
}

#[test]
fn a_failed_gang_leaves_the_snapshot_exactly_as_it_was() {
    let mut snapshot = cluster(&[("s1", "r1", 2), ("s1", "r2", 2)]);
    occupy(&mut snapshot, "r1-n0", 3);
    let topo = topology(&snapshot);
    let nodes_before = snapshot.nodes().to_vec();
    let pods_before = snapshot.placed_pods();
    // 5 whole nodes asked of a cluster with 3 idle ones and one partly used.
    let err = plan_gang(&profile(), &mut snapshot, &gang("big", 5, 8), &topo).unwrap_err();
    assert_eq!(snapshot.nodes(), &nodes_before[..]);
    assert_eq!(snapshot.placed_pods(), pods_before);
    let message = err.to_string();
    assert!(message.starts_with("gang big: 3/5 members placeable (min_member 5)"), "{message}");
    assert!(message.contains(&format!("0/2 {RACK} domains can hold 5 pods (largest holds 2)")), "{message}");
}

#[test]
fn a_gang_is_rolled_back_when_a_member_fails_after_others_were_assumed() {
    // The sizing member fits everywhere; a second shape is rejected by every node, so the plan on
    // paper succeeds and the real placement fails part-way.
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let mut members = pods("mixed", 3, 1);
    members[2].node_selector.insert("pool".into(), "nowhere".into());
    members[2].requests.cpu_milli = 500;
    let before = snapshot.nodes().to_vec();
    let err = plan_gang(&profile(), &mut snapshot, &Gang::new("mixed", 3, members), &topo).unwrap_err();
    assert_eq!(snapshot.nodes(), &before[..]);
    assert_eq!(snapshot.placed_pods(), 0);
    assert!(err.to_string().contains("last attempt failed at pod mixed/p2"), "{err}");
}

#[test]
fn the_tightest_domain_that_fits_is_chosen() {
    let mut snapshot = cluster(&[("s1", "r1", 4), ("s1", "r2", 4), ("s2", "r3", 4), ("s2", "r4", 4)]);
    let topo = topology(&snapshot);
    let on_one_node = plan_gang(&profile(), &mut snapshot, &gang("small", 4, 2), &topo).unwrap();
    assert_eq!(on_one_node.tier, PlacementTier::SingleNode);
    assert_eq!(on_one_node.spread_hops, 0.0);
    let in_one_rack = plan_gang(&profile(), &mut snapshot, &gang("rack", 3, 8), &topo).unwrap();
    assert!(matches!(in_one_rack.tier, PlacementTier::Domain { level: 1, .. }), "{:?}", in_one_rack.tier);
    assert_eq!(members_per_rack(&snapshot, &in_one_rack).len(), 1);
    assert_eq!(in_one_rack.spread_hops, 2.0);
    let in_one_spine = plan_gang(&profile(), &mut snapshot, &gang("spine", 6, 8), &topo).unwrap();
    assert!(matches!(in_one_spine.tier, PlacementTier::Domain { level: 0, .. }), "{:?}", in_one_spine.tier);
    let spines: std::collections::BTreeSet<_> =
        in_one_spine.nodes().iter().map(|&n| snapshot.nodes()[n].labels[SPINE].clone()).collect();
    assert_eq!(spines.len(), 1);
}

#[test]
fn members_are_split_evenly_over_the_domains_used() {
    // Racks hold 15, 8, 8 and 1 single-GPU members: 16 go 8 + 8, not 15 + 1.
    let mut snapshot = cluster(&[("s1", "big", 2), ("s1", "a", 1), ("s1", "b", 1)]);
    snapshot.add_node(gpu_node("tiny-n0", "s1", "tiny", 1)).unwrap();
    occupy(&mut snapshot, "big-n0", 1);
    let topo = topology(&snapshot);
    let placed = plan_gang(&profile(), &mut snapshot, &gang("even", 16, 1), &topo).unwrap();
    assert_eq!(members_per_rack(&snapshot, &placed), vec![("a".to_string(), 8), ("b".to_string(), 8)]);
}

#[test]
fn best_fit_among_racks_keeps_an_empty_rack_whole() {
    let mut snapshot = cluster(&[("s1", "empty", 4), ("s1", "partial", 4)]);
    occupy(&mut snapshot, "partial-n0", 8);
    occupy(&mut snapshot, "partial-n1", 8);
    let topo = topology(&snapshot);
    let placed = plan_gang(&profile(), &mut snapshot, &gang("two", 2, 8), &topo).unwrap();
    assert_eq!(members_per_rack(&snapshot, &placed), vec![("partial".to_string(), 2)]);
    let big = plan_gang(&profile(), &mut snapshot, &gang("four", 4, 8), &topo).unwrap();
    assert_eq!(members_per_rack(&snapshot, &big), vec![("empty".to_string(), 4)]);
}

#[test]
fn a_required_level_fails_with_a_reason_and_a_preferred_one_falls_back() {
    let mut snapshot = cluster(&[("s1", "r1", 2), ("s1", "r2", 2)]);
    let topo = topology(&snapshot);
    let required = gang("req", 3, 8).requiring(RACK);
    let before = snapshot.nodes().to_vec();
    let err = plan_gang(&profile(), &mut snapshot, &required, &topo).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&format!("0/2 {RACK} domains can hold 3 pods (largest holds 2)")), "{message}");
    assert!(message.contains(&format!("required level {RACK} allows no looser placement")), "{message}");
    assert_eq!(snapshot.nodes(), &before[..]);
    let preferred = gang("pref", 3, 8).preferring(RACK);
    let placed = plan_gang(&profile(), &mut snapshot, &preferred, &topo).unwrap();
    assert!(matches!(placed.tier, PlacementTier::Domain { level: 0, .. }));
    let mut counts: Vec<usize> = members_per_rack(&snapshot, &placed).into_iter().map(|(_, n)| n).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 2]);
}

#[test]
fn nodes_without_topology_labels_are_used_only_when_nothing_tighter_fits() {
    let mut nodes = vec![gpu_node("known", "s1", "r1", 8)];
    nodes.extend(
        (0..3).map(|i| Node::new(format!("bare{i}"), Resources::new(128_000, 1024 * MIB, 110)).with_gpus(8, "A100")),
    );
    let mut snapshot = Snapshot::new(nodes).unwrap();
    let topo = topology(&snapshot);
    let placed = plan_gang(&profile(), &mut snapshot, &gang("wide", 3, 8), &topo).unwrap();
    assert_eq!(placed.tier, PlacementTier::Cluster, "the unknown domain is not offered as a tight one");
    assert_eq!(placed.members.len(), 3);
    assert_eq!(placed.spread_hops, 6.0);
}

#[test]
fn more_members_than_room_places_min_member_and_leaves_the_rest_pending() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let elastic = Gang::new("elastic", 2, pods("elastic", 4, 8));
    let placed = plan_gang(&profile(), &mut snapshot, &elastic, &topo).unwrap();
    assert_eq!(placed.members.len(), 2);
    assert_eq!(placed.left_pending, vec!["elastic/p2".to_string(), "elastic/p3".to_string()]);
}

#[test]
fn bad_gangs_get_clear_errors() {
    let mut snapshot = cluster(&[("s1", "r1", 1)]);
    let topo = topology(&snapshot);
    let profile = profile();
    let mut plan = |g: Gang| plan_gang(&profile, &mut snapshot, &g, &topo).unwrap_err().to_string();
    assert_eq!(plan(Gang::new("zero", 0, pods("zero", 1, 1))), "gang zero: invalid: min_member must be at least 1");
    assert_eq!(
        plan(Gang::new("never", 4, pods("never", 2, 1)).with_expected_members(2)),
        "gang never: invalid: min_member 4 can never be met: the job has only 2 members"
    );
    assert_eq!(plan(Gang::new("early", 4, pods("early", 2, 1))), "gang early: waiting for members: 2/4 exist");
    assert!(plan(gang("zone", 1, 1).requiring("topology.kubernetes.io/zone")).contains("unknown topology level"));
    let twice = Gang::new("twice", 2, [pods("twice", 1, 1), pods("twice", 1, 1)].concat());
    assert_eq!(plan(twice), "gang twice: invalid: pod twice/p0 is listed twice");
    let stale = Topology::from_labels(&[RACK], &[]).unwrap();
    let err = plan_gang(&profile, &mut snapshot, &gang("stale", 1, 1), &stale).unwrap_err();
    assert!(err.to_string().contains("rebuild it when nodes change"));
}

fn queue_with(gangs: Vec<Gang>) -> GangQueue {
    let mut queue = GangQueue::new(QueueConfig { reserve_after_skips: 2, ..QueueConfig::default() });
    for (i, g) in gangs.into_iter().enumerate() {
        queue.add_gang(g, Duration::from_secs(i as u64)).unwrap();
    }
    queue
}

#[test]
fn queue_holds_members_until_quorum() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let mut queue = queue_with(vec![Gang::new("late", 2, pods("late", 1, 1))]);
    let outcome = queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::ZERO);
    assert!(outcome.placed.is_empty());
    assert_eq!(outcome.waiting[0].1, "gang late: waiting for members: 1/2 exist");
    assert_eq!(snapshot.placed_pods(), 0);
    queue.add_member("late", pods("late", 2, 1).pop().unwrap()).unwrap();
    let outcome = queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::ZERO);
    assert_eq!(outcome.placed.len(), 1);
    // Placed, it binds: queued, never tried again, until the caller says how its binds went.
    assert!(queue.unit("late").unwrap().binding);
    assert!(queue.ready(Duration::ZERO).is_empty());
    assert!(queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::ZERO).placed.is_empty());
    queue.remove("late");
    assert!(queue.is_empty());
}

#[test]
fn queue_orders_by_priority_then_arrival_and_backfills_around_a_blocked_gang() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let mut queue =
        queue_with(vec![gang("low", 2, 8), gang("huge", 3, 8).with_priority(10), gang("high", 1, 8).with_priority(5)]);
    let outcome = queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::ZERO);
    let placed: Vec<&str> = outcome.placed.iter().map(|p| p.gang.as_str()).collect();
    assert_eq!(placed, vec!["high"], "huge cannot fit and does not block high; low no longer fits");
    assert_eq!(queue.skips("huge"), Some(1));
    assert_eq!(queue.skips("low"), Some(1));
}

#[test]
fn a_gang_skipped_too_often_reserves_its_domain_from_lower_work() {
    let mut snapshot = cluster(&[("s1", "r1", 2), ("s1", "r2", 2)]);
    occupy(&mut snapshot, "r1-n0", 8);
    let topo = topology(&snapshot);
    let profile = profile();
    let mut queue = queue_with(vec![gang("big", 2, 8).requiring(RACK).with_priority(1)]);
    occupy(&mut snapshot, "r2-n0", 8);
    // Pass 1: big is skipped once; pass 2: twice, so it reserves the rack closest to fitting it.
    queue.schedule_pass(&profile, &mut snapshot, &topo, Duration::ZERO);
    queue.add_gang(gang("small", 1, 8), Duration::from_secs(1)).unwrap();
    let reserved = reservation_for(&profile, &snapshot, &gang("big", 2, 8).requiring(RACK), &topo).unwrap();
    let outcome = queue.schedule_pass(&profile, &mut snapshot, &topo, Duration::from_secs(2));
    assert_eq!(outcome.reserved_for.as_deref(), Some("big"));
    let small = outcome.placed.iter().find(|p| p.gang == "small").expect("small fits outside the reservation");
    assert!(small.nodes().iter().all(|n| !reserved.contains(n)));
    // The filler in big's reserved rack finishes: big gets the rack, not newer work.
    let reserved_rack = rack_of(&snapshot, reserved[0]).to_string();
    snapshot.forget(&format!("filler/{reserved_rack}-n0")).unwrap();
    queue.add_gang(gang("newer", 1, 8), Duration::from_secs(3)).unwrap();
    let outcome = queue.schedule_pass(&profile, &mut snapshot, &topo, Duration::from_secs(3));
    assert_eq!(outcome.placed.first().map(|p| p.gang.as_str()), Some("big"));
}

#[test]
fn a_gang_past_its_timeout_is_reported_holds_nothing_and_waits_again() {
    let mut snapshot = cluster(&[("s1", "r1", 1)]);
    let topo = topology(&snapshot);
    let mut queue = queue_with(vec![gang("slow", 2, 8).with_timeout(Duration::from_secs(300))]);
    let outcome = queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::from_secs(299));
    assert!(outcome.timed_out.is_empty());
    let outcome = queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::from_secs(300));
    assert_eq!(outcome.timed_out.len(), 1);
    assert_eq!(outcome.timed_out[0].waited, Duration::from_secs(300));
    assert!(outcome.timed_out[0].last_reason.as_deref().unwrap().contains("1/2 members placeable"));
    assert_eq!(snapshot.placed_pods(), 0);
    // Its pods still exist: a new wait starts now, and it times out again 300 s later, not at once.
    assert_eq!(queue.unit("slow").unwrap().arrived_at, Duration::from_secs(300));
    let outcome = queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::from_secs(599));
    assert!(outcome.timed_out.is_empty());
    assert_eq!(queue.schedule_pass(&profile(), &mut snapshot, &topo, Duration::from_secs(600)).timed_out.len(), 1);
}

#[test]
fn queue_refuses_gangs_that_can_never_run() {
    let mut queue = GangQueue::new(QueueConfig::default());
    let zero = queue.add_gang(Gang::new("z", 0, vec![]), Duration::ZERO).unwrap_err();
    assert_eq!(zero.to_string(), "gang z: min_member must be at least 1");
    assert!(queue.add_gang(Gang::new("n", 3, vec![]).with_expected_members(2), Duration::ZERO).is_err());
    queue.add_gang(Gang::new("ok", 1, vec![]), Duration::ZERO).unwrap();
    assert_eq!(queue.add_gang(Gang::new("ok", 1, vec![]), Duration::ZERO), Err(QueueError::DuplicateGang("ok".into())));
    assert_eq!(queue.add_member("missing", Pod::default()), Err(QueueError::UnknownGang("missing".into())));
}

#[test]
fn a_gang_without_a_required_level_holds_only_the_capacity_free_now() {
    // Two racks of two 8-GPU nodes. Three nodes are fully busy, one is free: a 3-node gang cannot start.
    // It holds the free node (others must not take it) and no busy one, since any node that frees up
    // anywhere lets it start; a rack-required gang reserves a whole rack instead.
    let mut s = cluster(&[("s1", "r1", 2), ("s1", "r2", 2)]);
    for busy in ["r1-n0", "r1-n1", "r2-n0"] {
        occupy(&mut s, busy, 8);
    }
    let topo = topology(&s);
    let free = s.node_id("r2-n1").unwrap();
    let big = gang("big", 3, 8);
    assert_eq!(reservation_for(&profile(), &s, &big, &topo), Some(vec![free]));
    let in_one_rack = gang("rack", 2, 8).requiring(RACK);
    let held = reservation_for(&profile(), &s, &in_one_rack, &topo).unwrap();
    assert_eq!(held.iter().map(|&n| rack_of(&s, n)).collect::<Vec<_>>(), vec!["r2", "r2"]);
    let impossible = gang("huge", 5, 8);
    assert_eq!(reservation_for(&profile(), &s, &impossible, &topo), None);
}

#[test]
fn a_gang_whose_min_resources_are_not_free_is_refused_before_planning() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    occupy(&mut snapshot, "r1-n0", 6);
    let topo = topology(&snapshot);
    // Two 1-GPU members fit, but the PodGroup says the job needs 12 GPUs free (10 are).
    let mut small = gang("g", 2, 1);
    small.min_resources = Some(MinResources { resources: Resources::new(2000, 0, 0), gpu_milli: 12_000 });
    let before = snapshot.nodes().to_vec();
    let err = plan_gang(&profile(), &mut snapshot, &small, &topo).unwrap_err();
    assert_eq!(err.to_string(), "gang g: minResources not free in the cluster: nvidia.com/gpu: 12 asked, 10 free");
    assert_eq!(snapshot.nodes(), &before[..]);
    small.min_resources.as_mut().unwrap().gpu_milli = 10_000;
    assert_eq!(plan_gang(&profile(), &mut snapshot, &small, &topo).unwrap().members.len(), 2);
}

/// Run times by pod key (ends) and by gang name (runtimes), in seconds.
struct Known {
    ends: Vec<(&'static str, u64)>,
    runtimes: Vec<(&'static str, u64)>,
}

impl RuntimeHints for Known {
    fn expected_end(&self, pod_key: &str) -> Option<Duration> {
        self.ends.iter().find(|(k, _)| *k == pod_key).map(|&(_, s)| Duration::from_secs(s))
    }
    fn expected_runtime(&self, gang: &Gang) -> Option<Duration> {
        self.runtimes.iter().find(|(g, _)| *g == gang.name).map(|&(_, s)| Duration::from_secs(s))
    }
}

#[test]
fn a_gang_gone_before_the_reserved_gang_can_start_backfills_its_room() {
    // Two racks of two nodes; one node of each busy (r2's frees at 500 s, r1's at 1000 s). "big" needs
    // three whole nodes, so it reserves the two free ones and can start at 500 s.
    let setup = || {
        let mut s = cluster(&[("s1", "r1", 2), ("s1", "r2", 2)]);
        occupy(&mut s, "r1-n0", 8);
        occupy(&mut s, "r2-n0", 8);
        let mut queue = GangQueue::new(QueueConfig { reserve_after_skips: 1, ..QueueConfig::default() });
        queue.add_gang(gang("big", 3, 8).with_priority(1), Duration::ZERO).unwrap();
        queue.add_gang(gang("short", 1, 8), Duration::ZERO).unwrap();
        queue.add_gang(gang("long", 1, 8), Duration::ZERO).unwrap();
        (s, queue)
    };
    let known = Known {
        ends: vec![("filler/r1-n0", 1000), ("filler/r2-n0", 500)],
        runtimes: vec![("short", 400), ("long", 600)],
    };
    let (mut s, mut queue) = setup();
    let topo = topology(&s);
    let outcome = queue.schedule_pass_with(&profile(), &mut s, &topo, Duration::ZERO, &known);
    assert_eq!(outcome.reserved_for.as_deref(), Some("big"));
    assert_eq!(outcome.backfilled, ["short"], "400 s ends before big can start at 500 s");
    let placed: Vec<&str> = outcome.placed.iter().map(|p| p.gang.as_str()).collect();
    assert_eq!(placed, ["short"], "600 s would delay big: long waits");
    // Knowing nothing, the reservation holds its room.
    let (mut s, mut queue) = setup();
    let outcome = queue.schedule_pass(&profile(), &mut s, &topo, Duration::ZERO);
    assert_eq!(outcome.reserved_for.as_deref(), Some("big"));
    assert!(outcome.placed.is_empty() && outcome.backfilled.is_empty());
}

#[test]
fn the_stretch_is_that_of_the_loosest_level_spanned() {
    let s = cluster(&[("s1", "r1", 2), ("s1", "r2", 1), ("s2", "r3", 1)]);
    let topo = topology(&s);
    let config = QueueConfig { spread_cost: vec![(RACK.into(), 0.3), (SPINE.into(), 0.6)], ..QueueConfig::default() };
    let id = |n: &str| s.node_id(n).unwrap();
    assert_eq!(config.stretch(&topo, &[id("r1-n0")]), 1.0);
    assert_eq!(config.stretch(&topo, &[id("r1-n0"), id("r1-n1")]), 1.0, "one rack");
    assert_eq!(config.stretch(&topo, &[id("r1-n0"), id("r2-n0")]), 1.3, "two racks of one spine");
    assert_eq!(config.stretch(&topo, &[id("r1-n0"), id("r2-n0"), id("r3-n0")]), 1.6, "two spines");
    assert_eq!(QueueConfig::default().stretch(&topo, &[id("r1-n0"), id("r3-n0")]), 1.0, "no cost configured");
}
