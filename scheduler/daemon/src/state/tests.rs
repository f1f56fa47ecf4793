//! The scheduling pass and bind bookkeeping on translated objects, without any API server.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use mlsched::core::{MIB, Node, Resources};
use mlsched::framework::Profile;
use mlsched::plugins::policy::{Policy, PolicyInputs, profile_for};
use serde_json::json;

use super::*;
use crate::translate::translate_pod;
use mlsched::gang::{Backoff, QueueConfig};

pub(super) fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A bind the API server answered with `code`.
fn failed(code: u16) -> Result<(), BindError> {
    Err(crate::error::api_error(code).into())
}

pub(super) fn gpu_node(name: &str, gpus: usize) -> Node {
    Node::new(name, Resources::new(64_000, 256 * 1024 * MIB, 110))
        .with_gpus(gpus, "A100")
        .with_label("kubernetes.io/hostname", name)
}

pub(super) fn pod(name: &str, gpus: u32, extra: serde_json::Value) -> PodInfo {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "ml", "uid": format!("uid-{name}")},
        "spec": {"schedulerName": "mlsched", "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}, "requests": {"cpu": "1"}}}]}
    });
    merge(&mut v, extra);
    translate_pod(&serde_json::from_value(v).unwrap()).unwrap()
}

/// The pods told they cannot be scheduled yet, with the message, ordered by name.
fn told(r: &PassResult) -> Vec<(String, String)> {
    let mut told: Vec<(String, String)> = r.unschedulable.iter().map(|(p, _, m)| (p.name.clone(), m.clone())).collect();
    told.sort();
    told
}

fn pod_group_member(name: &str, group: &str) -> PodInfo {
    pod(name, 1, json!({"metadata": {"labels": {"scheduling.x-k8s.io/pod-group": group}}}))
}

/// A coscheduling PodGroup asking only `min_member`.
fn group(min_member: usize) -> PodGroupInfo {
    PodGroupInfo { min_member, timeout: None, topology: None, min_resources: Ok(None), api: PodGroupApi::Coscheduling }
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

pub(super) fn gang_member(name: &str, gpus: u32, gang: &str, size: usize) -> PodInfo {
    pod(
        name,
        gpus,
        json!({"metadata": {"annotations": {"mlsched.io/gang-name": gang, "mlsched.io/gang-size": size.to_string()}}}),
    )
}

/// The daemon's queue: `config` with a backoff of 1 s doubling to 60 s.
pub(super) fn live_queue(config: QueueConfig) -> GangQueue {
    GangQueue::new(QueueConfig { backoff: Backoff { initial: s(1), max: s(60) }, ..config })
}

pub(super) struct World {
    pub state: ClusterState,
    pub queue: GangQueue,
    profiles: Vec<Profile>,
}

impl World {
    pub(super) fn new(nodes: Vec<Node>) -> World {
        let mut state = ClusterState::new(vec!["kubernetes.io/hostname".into()], vec!["mlsched".into()], 2);
        for n in nodes {
            state.apply_node(n);
        }
        World {
            state,
            queue: live_queue(QueueConfig::default()),
            profiles: vec![profile_for(Policy::BestFit, PolicyInputs::default())],
        }
    }

    pub(super) fn add(&mut self, info: PodInfo, now: Duration) {
        if let (_, Some((unit, priority))) = self.state.apply_pod(info) {
            self.queue.touch(&unit.queue_name(), priority, now);
        }
    }

    pub(super) fn pass(&mut self, now: Duration) -> PassResult {
        self.state.run_pass(&mut self.queue, &self.profiles, now)
    }

    fn gpus_used(&mut self) -> i64 {
        self.state.gpu_usage().0 / 1000
    }
}

#[test]
fn a_pod_and_a_gang_of_the_same_name_are_two_units() {
    // A launcher pod `train` outside any gang, beside the gang `train` of two workers, in one namespace.
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.add(pod("train", 1, json!({})), s(0));
    w.add(gang_member("train-0", 2, "train", 2), s(0));
    w.add(gang_member("train-1", 2, "train", 2), s(0));
    let r = w.pass(s(0));
    let mut placed: Vec<(UnitKey, usize)> = r.binds.iter().map(|b| (b.unit.clone(), b.members.len())).collect();
    placed.sort();
    assert_eq!(placed, [(UnitKey::Pod("ml/train".into()), 1), (UnitKey::Gang("ml/train".into()), 2)]);
    assert_eq!(w.gpus_used(), 5);
    let mut queued: Vec<&str> = w.queue.names().collect();
    queued.sort_unstable();
    assert_eq!(queued, ["ml/train", "pod ml/train"]);
    assert!(queued.iter().all(|name| w.queue.unit(name).unwrap().binding), "each is held while it binds");
}

#[test]
fn single_pods_land_where_the_core_says_and_are_assumed() {
    let mut w = World::new(vec![gpu_node("a", 4), gpu_node("b", 8)]);
    w.add(pod("p", 3, json!({})), s(0));
    let r = w.pass(s(0));
    assert_eq!(r.binds.len(), 1);
    let bind = &r.binds[0].members[0];
    // Best fit: the 4-GPU node is the tighter fit.
    assert_eq!(bind.node, "a");
    assert_eq!(bind.gpus.len(), 3);
    assert_eq!(bind.pod.uid, "uid-p");
    assert_eq!(w.gpus_used(), 3, "assumed before the bind returns");
    assert!(w.pass(s(0)).binds.is_empty(), "an in-flight unit is not tried again");
    let follow = w.state.bind_result(&mut w.queue, &r.binds[0].unit, "ml/p", Ok(()), s(0));
    assert!(matches!(follow, BindFollowUp::Bound { ref node, .. } if node == "a"));
    // The watch then shows it bound: nothing double-counted.
    let mut bound = pod("p", 3, json!({"spec": {"nodeName": "a"}}));
    bound.gpu_index = Some(bind.gpus.clone());
    w.state.apply_pod(bound);
    assert_eq!(w.gpus_used(), 3);
    assert_eq!(w.state.pending_pods(), 0);
    assert_eq!(w.state.finished_units(std::iter::once(&r.binds[0].unit)).len(), 1);
}

#[test]
fn a_gang_is_placed_whole_or_not_at_all_and_a_new_node_unblocks_it() {
    let mut w = World::new(vec![gpu_node("a", 4), gpu_node("b", 3)]);
    for i in 0..8 {
        w.add(gang_member(&format!("w{i}"), 1, "job", 8), s(0));
    }
    let r = w.pass(s(0));
    assert!(r.binds.is_empty());
    assert_eq!(r.unschedulable.len(), 8);
    assert_eq!(w.gpus_used(), 0, "a gang that does not fit holds nothing");
    assert!(r.unschedulable.iter().all(|(_, reason, m)| *reason == "Unschedulable" && m.contains("ml/job")));
    assert_eq!(r.gangs.len(), 1);
    assert!(w.pass(s(0)).unschedulable.is_empty(), "backing off");

    assert!(w.state.apply_node(gpu_node("c", 2)));
    assert_eq!(w.queue.activate_backoff(), 1);
    let r = w.pass(s(0));
    assert_eq!(r.binds.len(), 1);
    assert_eq!(r.binds[0].members.len(), 8);
    assert_eq!(w.gpus_used(), 8);
}

#[test]
fn an_unfittable_pod_gets_kube_schedulers_message() {
    let mut w = World::new(vec![gpu_node("a", 4), gpu_node("b", 4)]);
    w.add(pod("big", 8, json!({})), s(0));
    let r = w.pass(s(0));
    assert_eq!(r.unschedulable.len(), 1);
    let (p, reason, message) = &r.unschedulable[0];
    assert_eq!((p.key().as_str(), *reason), ("ml/big", "Unschedulable"));
    assert!(message.starts_with("0/2 nodes are available: 2 "), "{message}");
    assert_eq!(r.unschedulable_pods, 1);
    // Same message after a backoff: reporting dedupes on it.
    let r2 = w.pass(s(1));
    assert_eq!(&r2.unschedulable[0].2, message);
}

#[test]
fn a_failed_single_bind_forgets_and_backs_off() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    w.add(pod("p", 2, json!({})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    assert_eq!(w.gpus_used(), 2);
    let follow = w.state.bind_result(&mut w.queue, &unit, "ml/p", failed(500), s(0));
    assert!(matches!(follow, BindFollowUp::GaveUp { ref pods, .. } if pods.len() == 1));
    assert_eq!(w.gpus_used(), 0);
    assert!(w.queue.ready(s(0)).is_empty());
    assert_eq!(w.pass(s(1)).binds.len(), 1, "retried after the backoff");
}

/// A 4-GPU node and the gang `ml/job` of three 1-GPU members `w0..w2`, decided in one pass at 0 s: the
/// world, that pass and the gang's unit, its three binds in flight.
fn job_of_three_binding() -> (World, PassResult, UnitKey) {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    for i in 0..3 {
        w.add(gang_member(&format!("w{i}"), 1, "job", 3), s(0));
    }
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    (w, r, unit)
}

#[test]
fn a_gang_member_bind_is_retried_then_the_gang_is_given_up() {
    let (mut w, _, unit) = job_of_three_binding();
    assert_eq!(w.gpus_used(), 3);
    assert!(matches!(w.state.bind_result(&mut w.queue, &unit, "ml/w0", Ok(()), s(0)), BindFollowUp::Bound { .. }));
    for attempt in 1..=2 {
        match w.state.bind_result(&mut w.queue, &unit, "ml/w1", failed(500), s(0)) {
            BindFollowUp::Retry(m, n) => {
                assert_eq!((m.node.as_str(), n), ("a", attempt), "retried on its reserved node")
            }
            other => panic!("{other:?}"),
        }
    }
    match w.state.bind_result(&mut w.queue, &unit, "ml/w1", failed(500), s(0)) {
        BindFollowUp::GaveUp { pods, gang, .. } => {
            assert_eq!(pods.iter().map(PodRef::key).collect::<Vec<_>>(), vec!["ml/w1", "ml/w2"]);
            assert_eq!(gang.unwrap().reason, "GangBindFailed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.gpus_used(), 1, "only the member that was bound keeps its GPU");
}

#[test]
fn gangs_wait_for_quorum_and_for_their_pod_group() {
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.add(gang_member("w0", 1, "job", 2), s(0));
    let r = w.pass(s(0));
    assert!(r.binds.is_empty());
    assert_eq!(told(&r), [("w0".to_string(), "gang ml/job: waiting for members: 1/2 exist".to_string())]);
    assert_eq!(r.gangs[0].reason, "WaitingForMembers");
    assert!(w.pass(s(100)).gangs.is_empty(), "asleep until a member arrives");
    w.add(gang_member("w1", 1, "job", 2), s(1));
    assert_eq!(w.pass(s(1)).binds[0].members.len(), 2);

    let labelled = |n: &str| pod(n, 1, json!({"metadata": {"labels": {"scheduling.x-k8s.io/pod-group": "pg"}}}));
    w.add(labelled("x0"), s(2));
    let r = w.pass(s(2));
    assert!(r.binds.is_empty());
    assert!(r.gangs[0].message.contains("PodGroup ml/pg does not exist"), "{}", r.gangs[0].message);
    let unit = w.state.apply_pod_group("ml/pg".into(), group(1)).unwrap();
    w.queue.touch(&unit.queue_name(), 0, s(3));
    assert_eq!(w.pass(s(3)).binds.len(), 1);
}

#[test]
fn bound_pods_occupy_their_gpus_and_survive_node_updates() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    let mut other = pod("foreign", 2, json!({"spec": {"nodeName": "a", "schedulerName": "default-scheduler"}}));
    other.gpu_index = Some(vec![1, 3]);
    w.state.apply_pod(other);
    assert_eq!(w.state.snapshot().placement("ml/foreign").unwrap().gpus.indices().collect::<Vec<_>>(), vec![1, 3]);
    // A changed node rebuilds the snapshot; the pod keeps its devices.
    assert!(w.state.apply_node(gpu_node("a", 4).with_label("rack", "r1")));
    assert!(!w.state.apply_node(gpu_node("a", 4).with_label("rack", "r1")), "an identical node is no change");
    assert_eq!(w.state.snapshot().placement("ml/foreign").unwrap().gpus.indices().collect::<Vec<_>>(), vec![1, 3]);
    w.add(pod("mine", 2, json!({})), s(0));
    let r = w.pass(s(0));
    assert_eq!(r.binds[0].members[0].gpus, vec![0, 2]);
    assert!(w.state.delete_pod("ml/foreign"), "deleting a bound pod frees capacity");
    assert_eq!(w.gpus_used(), 2);
}

#[test]
fn a_bound_pod_on_a_node_seen_later_is_accounted_when_the_node_arrives() {
    let mut w = World::new(vec![]);
    w.state.apply_pod(pod("early", 1, json!({"spec": {"nodeName": "late"}})));
    assert_eq!(w.gpus_used(), 0);
    w.state.apply_node(gpu_node("late", 2));
    assert_eq!(w.gpus_used(), 1);
}

#[test]
fn priority_orders_competing_pods() {
    let mut w = World::new(vec![gpu_node("a", 2)]);
    w.add(pod("low", 2, json!({})), s(0));
    w.add(pod("high", 2, json!({"spec": {"priority": 100}})), s(1));
    let r = w.pass(s(1));
    assert_eq!(r.binds.len(), 1);
    assert_eq!(r.binds[0].members[0].pod.name, "high");
    assert_eq!(r.unschedulable[0].0.name, "low");
}

#[test]
fn a_bound_pod_that_over_commits_its_node_is_still_accounted() {
    // Another scheduler bound more GPUs than the node has free: the snapshot must show the node full, not
    // hide the pod and offer its room again.
    let mut w = World::new(vec![gpu_node("a", 2)]);
    w.state.apply_pod(pod("first", 2, json!({"spec": {"nodeName": "a", "schedulerName": "default-scheduler"}})));
    w.state.apply_pod(pod("second", 1, json!({"spec": {"nodeName": "a", "schedulerName": "default-scheduler"}})));
    assert!(w.state.snapshot().placement("ml/second").is_some(), "the over-committing pod is accounted");
    assert_eq!(w.state.snapshot().nodes()[0].gpus.iter().map(|g| g.free_milli()).sum::<i64>(), 0);
    w.add(pod("mine", 1, json!({})), s(0));
    assert!(w.pass(s(0)).binds.is_empty(), "no GPU is offered on the over-committed node");
}

#[test]
fn each_pod_of_ours_is_an_arrival_once_for_the_learning_policies() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    w.add(pod("p", 1, json!({})), s(0));
    w.add(pod("p", 1, json!({"metadata": {"labels": {"updated": "yes"}}})), s(0));
    w.add(pod("theirs", 1, json!({"spec": {"schedulerName": "default-scheduler"}})), s(0));
    // Bound before we started (history): an arrival too.
    w.add(pod("old", 2, json!({"spec": {"nodeName": "a"}})), s(0));
    let arrivals = w.state.take_arrivals();
    let seen: Vec<(usize, &str, u32)> = arrivals.iter().map(|(i, p)| (*i, p.key.as_str(), p.gpu.count)).collect();
    assert_eq!(seen, vec![(0, "ml/p", 1), (0, "ml/old", 2)]);
    assert!(w.state.take_arrivals().is_empty(), "taken once");
    // Bound by our own decision: the same pod, not a new arrival.
    w.add(pod("p", 1, json!({"spec": {"nodeName": "a"}})), s(0));
    assert!(w.state.take_arrivals().is_empty());
    // Deleted and created again under the same name: a new arrival.
    w.state.delete_pod("ml/p");
    w.add(pod("p", 1, json!({})), s(1));
    assert_eq!(w.state.take_arrivals().len(), 1);
}

#[test]
fn a_starving_pod_keeps_its_reservation_while_it_backs_off() {
    let mut w = World::new(vec![gpu_node("a", 4), gpu_node("b", 4)]);
    // One GPU taken on each node: the 4-GPU pod fits nowhere until one of them finishes.
    for node in ["a", "b"] {
        w.add(pod(&format!("blocker-{node}"), 1, json!({"spec": {"nodeName": node}})), s(0));
    }
    w.add(pod("big", 4, json!({})), s(0));
    let big = UnitKey::Pod("ml/big".into());
    let mut now = s(0);
    for _ in 0..3 {
        let r = w.pass(now);
        assert!(r.binds.is_empty());
        now = w.queue.unit(&big.queue_name()).unwrap().not_before.unwrap();
    }
    // Skipped three times: it now holds node "a" (the node that could hold it, fullest first, then by name).
    // A small pod arriving while "big" backs off must not take "a", though best fit and the name order
    // both prefer it.
    let arrival = now - s(1);
    w.add(pod("small", 1, json!({})), arrival);
    let r = w.pass(arrival);
    assert_eq!(r.binds.len(), 1);
    assert_eq!((r.binds[0].members[0].pod.name.as_str(), r.binds[0].members[0].node.as_str()), ("small", "b"));
    // The blocker on "a" finishes: the reserved room goes to "big".
    w.state.delete_pod("ml/blocker-a");
    w.queue.activate_backoff();
    let r = w.pass(arrival);
    assert_eq!(r.binds.len(), 1);
    assert_eq!((r.binds[0].members[0].pod.name.as_str(), r.binds[0].members[0].node.as_str()), ("big", "a"));
}

#[test]
fn the_queue_keeps_a_waiting_gang_between_passes_asleep_below_quorum_and_binding_once_placed() {
    let mut w = World::new(vec![gpu_node("a", 4), gpu_node("b", 4)]);
    w.add(pod("blocker", 1, json!({"spec": {"nodeName": "a"}})), s(0));
    w.add(gang_member("w0", 4, "job", 2), s(0));
    w.add(gang_member("w1", 4, "job", 2), s(0));
    let mut now = s(0);
    for pass in 1..=2 {
        assert!(w.pass(now).binds.is_empty());
        // One entry, kept (not rebuilt) across passes: its skips count on while it backs off.
        assert_eq!(w.queue.names().collect::<Vec<_>>(), ["ml/job"]);
        assert_eq!(w.queue.skips("ml/job"), Some(pass));
        now = w.queue.unit("ml/job").unwrap().not_before.unwrap();
    }
    // Tried only when ready: a pass while it backs off (for a pod that fits nowhere) leaves its count alone.
    w.add(pod("other", 8, json!({})), now - s(1));
    w.pass(now - s(1));
    assert_eq!(w.queue.skips("ml/job"), Some(2));
    // A member goes: below quorum, the gang sleeps until a member arrives; freed room does not wake it.
    w.state.delete_pod("ml/w1");
    w.queue.activate_backoff();
    assert!(w.pass(now).binds.is_empty());
    assert_eq!(w.queue.unit("ml/job").unwrap().not_before, Some(Duration::MAX));
    w.queue.activate_backoff();
    assert!(!w.queue.ready(now + s(600)).contains(&"ml/job".to_string()));
    // Back to quorum and room freed: placed whole, and binding until its binds are reported.
    w.state.delete_pod("ml/blocker");
    w.add(gang_member("w1", 4, "job", 2), now);
    let r = w.pass(now);
    assert_eq!(r.binds.len(), 1);
    assert_eq!(r.binds[0].members.len(), 2);
    assert!(w.queue.unit("ml/job").unwrap().binding);
    assert_eq!(w.queue.skips("ml/job"), Some(2), "the same entry throughout");
}

#[test]
fn a_pass_decides_a_bounded_number_of_units_in_queue_order_and_says_more_are_ready() {
    let nodes = (0..40).map(|i| gpu_node(&format!("n{i}"), 8)).collect();
    let mut w = World::new(nodes);
    let total = UNITS_PER_PASS + 10;
    for i in 0..total {
        w.add(pod(&format!("p{i:04}"), 1, json!({})), s(0));
    }
    let r = w.pass(s(0));
    assert!(r.more);
    assert_eq!(r.binds.len(), UNITS_PER_PASS);
    let first: Vec<String> = r.binds.iter().map(|b| b.members[0].pod.name.clone()).collect();
    assert_eq!(first, (0..UNITS_PER_PASS).map(|i| format!("p{i:04}")).collect::<Vec<_>>(), "first come, first decided");
    let r = w.pass(s(0));
    assert!(!r.more);
    assert_eq!(r.binds.len(), 10);
    assert_eq!(w.gpus_used(), total as i64);
}

#[test]
fn a_bound_single_pod_is_not_tried_again_until_the_watch_shows_it() {
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.add(pod("p", 1, json!({})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    w.state.bind_result(&mut w.queue, &unit, "ml/p", Ok(()), s(0));
    assert!(w.queue.all_binding(), "nothing to try: no pass runs on the events that follow");
    assert!(w.queue.ready(s(0)).is_empty());
    w.state.apply_pod(pod("p", 1, json!({"spec": {"nodeName": "a"}})));
    assert_eq!(w.state.finished_units(std::iter::once(&unit)), vec![unit.clone()]);
}

#[test]
fn a_single_pod_naming_an_unknown_topology_level_is_refused_with_the_known_levels() {
    let w = World::new(vec![gpu_node("a", 8)]);
    let required =
        |level: &str| pod("p", 1, json!({"metadata": {"annotations": {"mlsched.io/topology-required-level": level}}}));
    let err = w.state.check_topology_level(&required("network.mlsched.io/rak")).unwrap_err().0;
    assert!(err.contains("mlsched.io/topology-required-level"), "{err}");
    assert!(err.contains("\"network.mlsched.io/rak\"") && err.contains("(levels: kubernetes.io/hostname)"), "{err}");
    let preferred = pod("p", 1, json!({"metadata": {"annotations": {"mlsched.io/topology-preferred-level": "zone"}}}));
    assert!(w.state.check_topology_level(&preferred).unwrap_err().0.contains("mlsched.io/topology-preferred-level"));
    // A known level is met by whichever node the pod lands on.
    assert_eq!(w.state.check_topology_level(&required("kubernetes.io/hostname")), Ok(()));
    assert_eq!(w.state.check_topology_level(&pod("plain", 1, json!({}))), Ok(()));
    // Another scheduler's pod is not ours to judge.
    let theirs = pod(
        "t",
        1,
        json!({"metadata": {"annotations": {"mlsched.io/topology-required-level": "zone"}},
        "spec": {"schedulerName": "default-scheduler"}}),
    );
    assert_eq!(w.state.check_topology_level(&theirs), Ok(()));
}

#[test]
fn a_gang_members_unknown_level_is_refused_with_the_gang_in_the_pass() {
    let mut w = World::new(vec![gpu_node("a", 8)]);
    let member = pod(
        "w0",
        1,
        json!({"metadata": {"annotations": {"mlsched.io/gang-name": "job", "mlsched.io/gang-size": "1",
            "mlsched.io/topology-required-level": "zone"}}}),
    );
    assert_eq!(w.state.check_topology_level(&member), Ok(()), "checked with the gang, not alone");
    w.add(member, s(0));
    let r = w.pass(s(0));
    assert!(r.binds.is_empty());
    let (p, reason, message) = &r.unschedulable[0];
    assert_eq!((p.name.as_str(), *reason), ("w0", "InvalidSchedulingRequest"));
    assert!(message.contains("unknown topology level \"zone\""), "{message}");
}

#[test]
fn members_of_a_missing_pod_group_are_told_once_and_placed_when_it_appears() {
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.add(pod_group_member("x0", "pg"), s(0));
    w.add(pod_group_member("x1", "pg"), s(0));
    let r = w.pass(s(0));
    assert!(r.binds.is_empty());
    let first = told(&r);
    assert_eq!(first.len(), 2, "{first:?}");
    for (_, message) in &first {
        assert!(message.starts_with("PodGroup ml/pg does not exist"), "{message}");
    }
    assert!(r.unschedulable.iter().all(|(_, reason, _)| *reason == "Unschedulable"));
    assert_eq!(r.unschedulable_pods, 2);
    assert!(!r.gangs[0].pod_group, "no status is written to a PodGroup that does not exist");
    // Another member wakes the gang: only the newcomer is told, the others know already.
    w.add(pod_group_member("x2", "pg"), s(1));
    let r = w.pass(s(1));
    assert_eq!(told(&r).iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["x2"]);
    let unit = w.state.apply_pod_group("ml/pg".into(), group(3)).unwrap();
    w.queue.touch(&unit.queue_name(), 0, s(2));
    let r = w.pass(s(2));
    assert_eq!(r.binds[0].members.len(), 3);
    assert!(r.gangs[0].pod_group);
}

#[test]
fn members_of_a_gang_below_min_member_are_told_what_it_waits_for() {
    let mut w = World::new(vec![gpu_node("a", 8)]);
    let big = group(100_000);
    w.state.apply_pod_group("ml/big".into(), big);
    w.add(pod_group_member("b0", "big"), s(0));
    let r = w.pass(s(0));
    assert_eq!(told(&r), [("b0".to_string(), "gang ml/big: waiting for members: 1/100000 exist".to_string())]);
    assert_eq!(r.unschedulable[0].1, "Unschedulable");
    assert_eq!(r.gangs[0].message, "gang ml/big: waiting for members: 1/100000 exist");
    w.add(pod_group_member("b1", "big"), s(1));
    let r = w.pass(s(1));
    assert_eq!(told(&r), [("b1".to_string(), "gang ml/big: waiting for members: 2/100000 exist".to_string())]);
    assert_eq!(r.gangs[0].message, "gang ml/big: waiting for members: 2/100000 exist", "the PodGroup's count is live");
    // A new minMember is a new cause: everyone is told again.
    let unit = w.state.apply_pod_group("ml/big".into(), group(5)).unwrap();
    w.queue.touch(&unit.queue_name(), 0, s(2));
    let r = w.pass(s(2));
    let names: Vec<String> = told(&r).into_iter().map(|(p, m)| format!("{p}: {m}")).collect();
    assert_eq!(
        names,
        ["b0: gang ml/big: waiting for members: 2/5 exist", "b1: gang ml/big: waiting for members: 2/5 exist"]
    );
    // Deleted and created again: a new pod, told again.
    w.state.delete_pod("ml/b1");
    w.add(pod_group_member("b1", "big"), s(3));
    assert_eq!(told(&w.pass(s(3))).len(), 1);
}

#[test]
fn a_gang_found_half_bound_is_completed_with_its_earlier_members_named_and_a_count_that_agrees() {
    let mut w = World::new(vec![gpu_node("a", 8), gpu_node("b", 8)]);
    w.state.apply_pod_group("ml/train".into(), group(4));
    // Bound by a previous leader: the watch shows them bound, no decision of this process put them there.
    for name in ["w0", "w1"] {
        w.add(
            pod(
                name,
                4,
                json!({"metadata": {"labels": {"scheduling.x-k8s.io/pod-group": "train"}}, "spec": {"nodeName": "a"}}),
            ),
            s(0),
        );
    }
    for name in ["w2", "w3"] {
        w.add(pod(name, 4, json!({"metadata": {"labels": {"scheduling.x-k8s.io/pod-group": "train"}}})), s(0));
    }
    let r = w.pass(s(0));
    let plan = &r.binds[0];
    assert_eq!(plan.members.len(), 2, "quorum counts the bound members");
    assert!(
        matches!(w.state.bind_result(&mut w.queue, &plan.unit, "ml/w2", Ok(()), s(0)), BindFollowUp::Bound { ref gang_done, .. } if gang_done.is_none())
    );
    match w.state.bind_result(&mut w.queue, &plan.unit, "ml/w3", Ok(()), s(0)) {
        BindFollowUp::Bound { gang_done: Some(g), bound_earlier, .. } => {
            assert_eq!(g.scheduled, 4);
            assert_eq!(g.message, "4 members bound (2 now, 2 earlier)");
            let earlier: Vec<(String, &str, &str)> =
                bound_earlier.iter().map(|(p, n)| (p.key(), p.uid.as_str(), n.as_str())).collect();
            assert_eq!(earlier, [("ml/w0".into(), "uid-w0", "a"), ("ml/w1".into(), "uid-w1", "a")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn members_this_scheduler_bound_are_not_named_again_when_their_gang_completes_later() {
    let (mut w, r, unit) = job_of_three_binding();
    let node_of =
        |r: &PassResult, pod: &str| r.binds[0].members.iter().find(|m| m.pod.name == pod).unwrap().node.clone();
    let w0_node = node_of(&r, "w0");
    w.state.bind_result(&mut w.queue, &unit, "ml/w0", Ok(()), s(0));
    // The watch shows w0 bound where this process put it; then the gang is given up and tried again.
    let mut bound = gang_member("w0", 1, "job", 3);
    bound.node_name = Some(w0_node);
    w.state.apply_pod(bound);
    for _ in 0..3 {
        w.state.bind_result(&mut w.queue, &unit, "ml/w1", failed(500), s(0));
    }
    let r = w.pass(s(10));
    assert_eq!(r.binds[0].members.len(), 2);
    w.state.bind_result(&mut w.queue, &unit, "ml/w1", Ok(()), s(10));
    match w.state.bind_result(&mut w.queue, &unit, "ml/w2", Ok(()), s(10)) {
        BindFollowUp::Bound { gang_done: Some(g), bound_earlier, .. } => {
            assert_eq!((g.scheduled, g.message.as_str()), (3, "3 members bound (2 now, 1 earlier)"));
            assert!(
                bound_earlier.is_empty(),
                "w0's Scheduled Event was this process's to write, and written: {bound_earlier:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_member_bound_by_another_scheduler_is_counted_but_not_given_a_scheduled_event_of_ours() {
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.state.apply_pod_group("ml/train".into(), group(2));
    let labels = json!({"scheduling.x-k8s.io/pod-group": "train"});
    w.add(pod("theirs", 1, json!({"metadata": {"labels": labels.clone()}, "spec": {"nodeName": "a", "schedulerName": "default-scheduler"}})), s(0));
    w.add(pod("mine", 1, json!({"metadata": {"labels": labels}})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    match w.state.bind_result(&mut w.queue, &unit, "ml/mine", Ok(()), s(0)) {
        BindFollowUp::Bound { gang_done: Some(g), bound_earlier, .. } => {
            assert_eq!((g.scheduled, g.message.as_str()), (2, "2 members bound (1 now, 1 earlier)"));
            assert!(bound_earlier.is_empty(), "{bound_earlier:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_single_bind_refused_as_bound_already_is_dropped_and_not_decided_again_once_the_watch_shows_it() {
    let mut w = World::new(vec![gpu_node("a", 4), gpu_node("b", 4)]);
    w.add(pod("p", 2, json!({})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    match w.state.bind_result(&mut w.queue, &unit, "ml/p", failed(409), s(0)) {
        BindFollowUp::Dropped { pod, kind } => assert_eq!((pod.key(), kind), ("ml/p".into(), ErrorKind::Conflict)),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.gpus_used(), 0, "the assumption is released");
    assert!(w.pass(s(0)).binds.is_empty(), "not decided again at once: it backs off while the watch catches up");
    // The watch shows it bound by someone else: it is accounted there, and its unit is finished.
    w.state.apply_pod(pod("p", 2, json!({"spec": {"nodeName": "b"}})));
    assert_eq!(w.gpus_used(), 2);
    assert_eq!(w.state.finished_units(std::iter::once(&unit)), vec![unit]);
    assert!(w.pass(s(10)).binds.is_empty(), "never bound again");
}

#[test]
fn a_conflict_seen_after_the_watch_showed_the_pod_bound_where_we_asked_keeps_its_accounting() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    w.add(pod("p", 2, json!({})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    // An earlier attempt bound it (its answer was lost); the watch shows that before the conflict comes.
    w.state.apply_pod(pod("p", 2, json!({"spec": {"nodeName": "a"}})));
    assert!(matches!(
        w.state.bind_result(&mut w.queue, &unit, "ml/p", failed(409), s(0)),
        BindFollowUp::Dropped { kind: ErrorKind::Conflict, .. }
    ));
    assert_eq!(w.gpus_used(), 2, "booked once, as the bound pod");
    assert_eq!(w.state.finished_units(std::iter::once(&unit)), vec![unit]);
}

#[test]
fn a_single_bind_refused_because_the_pod_is_gone_drops_the_pod_at_once() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    w.add(pod("p", 2, json!({})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    assert!(matches!(
        w.state.bind_result(&mut w.queue, &unit, "ml/p", failed(404), s(0)),
        BindFollowUp::Dropped { kind: ErrorKind::NotFound, .. }
    ));
    assert_eq!(w.gpus_used(), 0);
    assert_eq!(w.state.pending_pods(), 0, "dropped before the watch says it was deleted");
    assert_eq!(w.state.finished_units(std::iter::once(&unit)), vec![unit]);
    assert!(w.pass(s(10)).binds.is_empty());
}

#[test]
fn a_404_does_not_drop_a_new_pod_of_the_same_name() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    w.add(pod("p", 2, json!({})), s(0));
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    // Deleted and created again (a new uid) while the bind was out; the watch has shown the new pod.
    w.add(pod("p", 2, json!({"metadata": {"uid": "uid-p-2"}})), s(0));
    w.state.bind_result(&mut w.queue, &unit, "ml/p", failed(404), s(0));
    assert_eq!(w.state.pending_pods(), 1);
    assert_eq!(w.pass(s(10)).binds.len(), 1, "the new pod is scheduled after the backoff");
}

#[test]
fn a_gang_member_refused_as_bound_already_is_not_retried_and_the_rest_of_the_gang_binds() {
    let (mut w, _, unit) = job_of_three_binding();
    assert!(matches!(
        w.state.bind_result(&mut w.queue, &unit, "ml/w1", failed(409), s(0)),
        BindFollowUp::Dropped { kind: ErrorKind::Conflict, .. }
    ));
    assert_eq!(w.gpus_used(), 2, "only w1's assumption is released");
    assert!(matches!(
        w.state.bind_result(&mut w.queue, &unit, "ml/w0", Ok(()), s(0)),
        BindFollowUp::Bound { gang_done: None, .. }
    ));
    match w.state.bind_result(&mut w.queue, &unit, "ml/w2", Ok(()), s(0)) {
        BindFollowUp::Bound { gang_done: None, .. } => {}
        other => panic!("not every member bound by this flight, so no gang report: {other:?}"),
    }
    assert!(w.pass(s(0)).binds.is_empty(), "the gang backs off while the watch catches up");
    // The conflict was a false one: w1 is still pending after the backoff, and is placed alone (its two
    // gang mates count as bound).
    for name in ["w0", "w2"] {
        let mut bound = gang_member(name, 1, "job", 3);
        bound.node_name = Some("a".into());
        w.state.apply_pod(bound);
    }
    let r = w.pass(s(10));
    assert_eq!(r.binds.len(), 1);
    assert_eq!(r.binds[0].members.iter().map(|m| m.pod.name.as_str()).collect::<Vec<_>>(), ["w1"]);
    match w.state.bind_result(&mut w.queue, &unit, "ml/w1", Ok(()), s(10)) {
        BindFollowUp::Bound { gang_done: Some(g), .. } => assert_eq!(g.scheduled, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_gang_member_refused_for_good_gives_the_gang_up_at_once_and_a_throttled_one_is_retried() {
    let (mut w, _, unit) = job_of_three_binding();
    assert!(matches!(w.state.bind_result(&mut w.queue, &unit, "ml/w0", failed(429), s(0)), BindFollowUp::Retry(_, 1)));
    assert!(matches!(
        w.state.bind_result(&mut w.queue, &unit, "ml/w2", failed(404), s(0)),
        BindFollowUp::Dropped { kind: ErrorKind::NotFound, .. }
    ));
    match w.state.bind_result(&mut w.queue, &unit, "ml/w1", failed(403), s(0)) {
        BindFollowUp::GaveUp { pods, message, gang } => {
            // w2 is gone: it is not told anything.
            assert_eq!(pods.iter().map(PodRef::key).collect::<Vec<_>>(), vec!["ml/w0", "ml/w1"]);
            assert!(message.starts_with("binding ml/w1 failed: ApiError: "), "{message}");
            let gang = gang.unwrap();
            assert_eq!(gang.reason, "GangBindFailed");
            assert!(gang.message.starts_with("gang given up after 0 bind retries"), "{}", gang.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.gpus_used(), 0);
}

#[test]
fn a_bind_not_sent_is_given_up_at_once() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    for i in 0..2 {
        w.add(gang_member(&format!("w{i}"), 1, "job", 2), s(0));
    }
    let r = w.pass(s(0));
    let unit = r.binds[0].unit.clone();
    assert!(matches!(
        w.state.bind_result(&mut w.queue, &unit, "ml/w0", Err(BindError::NotSent), s(0)),
        BindFollowUp::GaveUp { .. }
    ));
    assert_eq!(w.gpus_used(), 0);
}

#[test]
fn a_bound_pod_resized_in_place_is_booked_at_its_new_size() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    let cpu = |n: &str| json!({"spec": {"nodeName": "a", "containers": [{"name": "c", "resources": {"requests": {"cpu": n}}}]}});
    w.state.apply_pod(pod("running", 0, cpu("1")));
    // Grown from 1 to 60 of the node's 64 CPUs: an 8-CPU pod no longer fits beside it.
    let (freed, _) = w.state.apply_pod(pod("running", 0, cpu("60")));
    assert!(freed, "a resize wakes the units backing off");
    let asks_8 = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "8"}}}]}});
    w.add(pod("new", 0, asks_8.clone()), s(0));
    let r = w.pass(s(0));
    assert!(r.binds.is_empty(), "placed beside a pod grown in place: {:?}", r.binds);
    // Shrunk back to 2: now it fits.
    w.state.apply_pod(pod("running", 0, cpu("2")));
    w.queue.touch("pod ml/new", 0, s(5));
    let r = w.pass(s(5));
    assert_eq!(r.binds.len(), 1, "fits once the running pod shrank");
    assert_eq!(r.binds[0].members[0].node, "a");
}

#[test]
fn min_resources_are_checked_before_placement_with_running_members_counted() {
    let min_resources = |gpus: &str| {
        let map = [("nvidia.com/gpu".to_string(), Quantity(gpus.into()))].into_iter().collect();
        crate::translate::min_resources(&map).map(Some)
    };
    let needing = |gpus: &str| PodGroupInfo { min_resources: min_resources(gpus), ..group(3) };
    let labels = json!({"scheduling.x-k8s.io/pod-group": "train"});
    let mut w = World::new(vec![gpu_node("a", 8), gpu_node("b", 8)]);
    // w0 runs already (a previous leader bound it) and holds 4 of the 20 GPUs asked.
    w.add(pod("w0", 4, json!({"metadata": {"labels": labels.clone()}, "spec": {"nodeName": "a"}})), s(0));
    for name in ["w1", "w2"] {
        w.add(pod(name, 4, json!({"metadata": {"labels": labels.clone()}})), s(0));
    }
    w.state.apply_pod_group("ml/train".into(), needing("20"));
    let r = w.pass(s(0));
    assert!(r.binds.is_empty(), "w1 and w2 fit, but 16 GPUs must be free and 12 are");
    let message = "gang ml/train: minResources not free in the cluster: nvidia.com/gpu: 16 asked, 12 free";
    assert_eq!(told(&r), [("w1".to_string(), message.to_string()), ("w2".to_string(), message.to_string())]);
    assert_eq!(r.gangs[0].message, message, "the PodGroup says so too");

    let unit = w.state.apply_pod_group("ml/train".into(), needing("12")).unwrap();
    w.queue.touch(&unit.queue_name(), 0, s(1));
    let r = w.pass(s(1));
    assert_eq!(r.binds[0].members.len(), 2, "8 asked beyond w0's 4, 12 free");

    // A minResources the scheduler cannot read makes the gang invalid, with the PodGroup named.
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.add(pod("x0", 1, json!({"metadata": {"labels": labels.clone()}})), s(0));
    w.state.apply_pod_group("ml/train".into(), PodGroupInfo { min_member: 1, ..needing("-2") });
    let r = w.pass(s(0));
    assert!(r.binds.is_empty());
    assert_eq!(r.unschedulable[0].1, crate::keys::REASON_INVALID);
    assert_eq!(r.unschedulable[0].2, "PodGroup ml/train: minResources nvidia.com/gpu: negative quantity \"-2\"");
}

#[test]
fn pod_groups_of_the_two_apis_never_stand_in_for_each_other() {
    let info = |min_member, api| PodGroupInfo { api, ..group(min_member) };
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.state.apply_pod_group("ml/train".into(), info(2, PodGroupApi::Coscheduling));
    w.state.apply_pod_group("ml/train".into(), info(5, PodGroupApi::Workload));
    // The Workload group goes: the coscheduling one of the same name stays, and a label member follows it.
    assert!(w.state.delete_pod_group("ml/train", PodGroupApi::Workload).is_some());
    assert_eq!(w.state.pod_group_keys(PodGroupApi::Coscheduling), ["ml/train"]);
    assert!(w.state.pod_group_keys(PodGroupApi::Workload).is_empty());
    for name in ["w0", "w1"] {
        w.add(pod_group_member(name, "train"), s(0));
    }
    assert_eq!(w.pass(s(0)).binds[0].members.len(), 2, "minMember 2 of the coscheduling group");
    // A member naming the Workload group through spec.schedulingGroup does not take the coscheduling one.
    let mut w = World::new(vec![gpu_node("a", 8)]);
    w.state.apply_pod_group("ml/job".into(), info(1, PodGroupApi::Coscheduling));
    w.add(pod("x", 1, json!({"spec": {"schedulingGroup": {"podGroupName": "job"}}})), s(0));
    let r = w.pass(s(0));
    assert!(r.binds.is_empty());
    assert_eq!(
        told(&r),
        [(
            "x".to_string(),
            "PodGroup ml/job does not exist (named by spec.schedulingGroup, scheduling.k8s.io/v1beta1); waiting until it \
             is created"
                .to_string()
        )]
    );
}

/// Racks r1 (nodes a, b) and r2 (c, d) of 8-GPU nodes; b runs a pod expected to end at 10,000 s and c one
/// expected at 100 s, so one node of each rack is free and r2 is whole again soon.
fn two_racks_one_freeing_soon(queue_config: QueueConfig) -> World {
    let mut state = ClusterState::new(vec!["rack".into(), "kubernetes.io/hostname".into()], vec!["mlsched".into()], 2);
    for (name, rack) in [("a", "r1"), ("b", "r1"), ("c", "r2"), ("d", "r2")] {
        state.apply_node(gpu_node(name, 8).with_label("rack", rack));
    }
    for (name, node, runtime) in [("long", "b", "10000"), ("short", "c", "100")] {
        let bound = json!({"spec": {"nodeName": node}, "metadata": {"annotations": {"mlsched.io/expected-runtime-seconds": runtime}}});
        state.apply_pod(pod(name, 8, bound));
    }
    World {
        state,
        queue: live_queue(queue_config),
        profiles: vec![profile_for(Policy::BestFit, PolicyInputs::default())],
    }
}

/// A two-member gang of 8-GPU pods that prefers one rack and declares its run time.
fn rack_preferring_pair(w: &mut World, runtime: &str) {
    for i in 0..2 {
        let extra = json!({"metadata": {"annotations": {
            "mlsched.io/gang-name": "pair", "mlsched.io/gang-size": "2",
            "mlsched.io/topology-preferred-level": "rack", "mlsched.io/expected-runtime-seconds": runtime}}});
        w.add(pod(&format!("w{i}"), 8, extra), s(0));
    }
}

fn racks_of(r: &PassResult) -> Vec<&str> {
    let mut nodes: Vec<&str> = r.binds.iter().flat_map(|b| b.members.iter().map(|m| m.node.as_str())).collect();
    nodes.sort();
    nodes
}

#[test]
fn a_gang_waits_for_a_rack_that_frees_sooner_than_spreading_would_cost() {
    let spread_cost = QueueConfig { spread_cost: vec![("rack".into(), 0.5)], ..QueueConfig::default() };
    // Spread now costs 1,800 s of a 3,600 s run; r2 is whole at 100 s: wait.
    let mut w = two_racks_one_freeing_soon(spread_cost.clone());
    rack_preferring_pair(&mut w, "3600");
    let r = w.pass(s(0));
    assert!(r.binds.is_empty(), "{:?}", r.binds);
    let (_, _, message) = &r.unschedulable[0];
    assert!(
        message.contains("waiting 100 s for rack=r2 to free up rather than running 50% longer spread now"),
        "{message}"
    );
    w.state.delete_pod("ml/short");
    w.queue.activate_backoff();
    assert_eq!(racks_of(&w.pass(s(100))), ["c", "d"], "placed in the rack it waited for");

    // A 100 s run loses only 50 s spread: it starts now, across the racks.
    let mut w = two_racks_one_freeing_soon(spread_cost);
    rack_preferring_pair(&mut w, "100");
    assert_eq!(racks_of(&w.pass(s(0))), ["a", "d"]);
    // Without a spread cost configured, spreading is free: it starts now too.
    let mut w = two_racks_one_freeing_soon(QueueConfig::default());
    rack_preferring_pair(&mut w, "3600");
    assert_eq!(racks_of(&w.pass(s(0))), ["a", "d"]);
}

#[test]
fn a_malformed_expected_runtime_is_refused_with_its_name() {
    let v = json!({
        "metadata": {"name": "p", "namespace": "ml", "uid": "u", "annotations": {"mlsched.io/expected-runtime-seconds": "1h"}},
        "spec": {"schedulerName": "mlsched", "containers": [{"name": "c"}]}
    });
    let err = translate_pod(&serde_json::from_value(v).unwrap()).unwrap_err().to_string();
    assert!(err.contains("mlsched.io/expected-runtime-seconds=\"1h\" must be whole seconds"), "{err}");
}

#[test]
fn only_a_node_change_that_may_help_cuts_the_backoff_short() {
    let mut w = World::new(vec![gpu_node("a", 4)]);
    let mut cordoned = gpu_node("a", 4);
    cordoned.unschedulable = true;
    assert!(!w.state.apply_node(cordoned.clone()), "a cordon helps no one");
    w.add(pod("p", 1, json!({})), s(0));
    assert!(w.pass(s(0)).binds.is_empty());
    let waits_until = w.queue.unit("pod ml/p").unwrap().not_before;
    let mut tainted = cordoned.clone();
    tainted.taints.push(mlsched::core::selector::Taint {
        key: "maintenance".into(),
        value: String::new(),
        effect: mlsched::core::selector::TaintEffect::NoSchedule,
    });
    assert!(!w.state.apply_node(tainted), "a new taint helps no one");
    assert!(w.state.apply_node(cordoned), "a taint removed may help");
    assert!(w.state.apply_node(gpu_node("a", 4)), "uncordoned");
    assert_eq!(w.queue.unit("pod ml/p").unwrap().not_before, waits_until, "the state only says; the loop activates");
    w.queue.activate_backoff();
    assert_eq!(w.pass(s(0)).binds.len(), 1);
}
