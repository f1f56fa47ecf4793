//! Preemption in the pass: what the daemon asks to evict, and what its preemptor is told.

use serde_json::json;

use super::tests::{World, gang_member, gpu_node, pod, s};
use super::*;

fn bound(mut info: PodInfo, node: &str) -> PodInfo {
    info.node_name = Some(node.to_string());
    info
}

fn with_priority(name: &str, gpus: u32, priority: i32, extra: serde_json::Value) -> PodInfo {
    let mut info = pod(name, gpus, extra);
    info.pod.priority = priority;
    info
}

fn low_gang_member(name: &str, priority: i32) -> PodInfo {
    let mut info = gang_member(name, 8, "train", 2);
    info.pod.priority = priority;
    info
}

/// Two 8-GPU nodes held by a 2-pod gang of priority 10.
fn full_world() -> World {
    let mut w = World::new(vec![gpu_node("a", 8), gpu_node("b", 8)]);
    w.add(bound(low_gang_member("train-0", 10), "a"), s(0));
    w.add(bound(low_gang_member("train-1", 10), "b"), s(0));
    w
}

fn message_of<'a>(r: &'a PassResult, name: &str) -> &'a str {
    r.unschedulable.iter().find(|(p, _, _)| p.name == name).map(|(_, _, m)| m.as_str()).unwrap_or_default()
}

#[test]
fn a_pod_that_needs_one_node_evicts_the_whole_lower_priority_gang_and_waits_for_it_on_its_nominated_node() {
    let mut w = full_world();
    w.add(with_priority("urgent", 8, 1000, json!({})), s(1));
    let r = w.pass(s(1));
    assert!(r.binds.is_empty());
    assert_eq!(r.preemptions.len(), 1);
    let order = &r.preemptions[0];
    assert_eq!(order.preemptor, "pod ml/urgent");
    let mut victims: Vec<&str> = order.victims.iter().map(|(p, _)| p.name.as_str()).collect();
    victims.sort_unstable();
    assert_eq!(victims, ["train-0", "train-1"], "part of a gang is never a victim");
    assert_eq!(order.nominated.len(), 1);
    let nominated = order.nominated[0].1.clone();
    assert!(nominated == "a" || nominated == "b");

    // Evicted, the victims terminate: they still hold their GPUs, and nothing more is evicted meanwhile.
    for (name, node) in [("train-0", "a"), ("train-1", "b")] {
        let mut terminating = low_gang_member(name, 10);
        terminating.deleting = true;
        w.state.apply_pod(bound(terminating, node));
    }
    let r = w.pass(s(3));
    assert!(r.binds.is_empty() && r.preemptions.is_empty());
    assert!(message_of(&r, "urgent").contains(&format!("preempted on {nominated}")), "{}", message_of(&r, "urgent"));

    // Gone: the preemptor takes the node it was nominated to.
    w.state.delete_pod("ml/train-0");
    w.state.delete_pod("ml/train-1");
    w.queue.activate_backoff();
    let r = w.pass(s(4));
    assert_eq!(r.binds.len(), 1);
    assert_eq!(r.binds[0].members[0].node, nominated);
    assert!(r.preemptions.is_empty());
}

#[test]
fn preemption_policy_never_evicts_nothing_and_says_so() {
    let mut w = full_world();
    w.add(with_priority("polite", 8, 1000, json!({"spec": {"preemptionPolicy": "Never"}})), s(1));
    let r = w.pass(s(1));
    assert!(r.preemptions.is_empty() && r.binds.is_empty());
    assert!(message_of(&r, "polite").contains("preemptionPolicy is Never"), "{}", message_of(&r, "polite"));
}

#[test]
fn a_gang_that_would_not_fit_even_after_evicting_everything_lower_evicts_nothing() {
    let mut w = full_world();
    for i in 0..3 {
        let mut m = gang_member(&format!("big-{i}"), 8, "big", 3);
        m.pod.priority = 1000;
        w.add(m, s(1));
    }
    let r = w.pass(s(1));
    assert!(r.preemptions.is_empty() && r.binds.is_empty());
    assert!(message_of(&r, "big-0").contains("would not fit even with all 1 lower-priority units evicted"));
}

#[test]
fn equal_or_higher_priority_is_never_a_victim_so_two_gangs_cannot_take_turns() {
    let mut w = World::new(vec![gpu_node("a", 8), gpu_node("b", 8)]);
    // B (200) runs on both nodes; A (100) waits and could run only where B runs.
    for (i, node) in ["a", "b"].into_iter().enumerate() {
        let mut m = gang_member(&format!("b-{i}"), 8, "gang-b", 2);
        m.pod.priority = 200;
        w.add(bound(m, node), s(0));
    }
    for i in 0..2 {
        let mut m = gang_member(&format!("a-{i}"), 8, "gang-a", 2);
        m.pod.priority = 100;
        w.add(m, s(1));
    }
    let r = w.pass(s(1));
    assert!(r.preemptions.is_empty() && r.binds.is_empty());
}

#[test]
fn an_eviction_refused_lets_the_room_go_and_the_preemptor_tries_again_after_a_while() {
    let mut w = full_world();
    w.add(with_priority("urgent", 8, 1000, json!({})), s(1));
    let first = w.pass(s(1));
    assert_eq!(first.preemptions.len(), 1);
    // While nominated, a retry does not evict again ...
    w.queue.activate_backoff();
    assert!(w.pass(s(2)).preemptions.is_empty());
    // ... and once the evictions are refused (a PodDisruptionBudget), not for PREEMPTION_RETRY either,
    // while its members are told why.
    let why = "eviction of ml/train-0 refused: Cannot evict pod as it would violate the pod's disruption budget.";
    let unit = w.state.preemption_failed(&mut w.queue, "pod ml/urgent", why.to_string(), s(2));
    assert_eq!(unit, Some(UnitKey::Pod("ml/urgent".into())));
    w.queue.activate_backoff();
    let waiting = w.pass(s(3));
    assert!(waiting.preemptions.is_empty());
    assert!(message_of(&waiting, "urgent").contains(&format!("the last attempt stopped: {why}")));
    w.queue.activate_backoff();
    let again = w.pass(s(2) + super::preemption::PREEMPTION_RETRY);
    assert_eq!(again.preemptions.len(), 1);
    assert_eq!(again.preemptions[0].victims.len(), 2);
}
