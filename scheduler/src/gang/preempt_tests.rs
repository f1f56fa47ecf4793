//! Gang-aware preemption: the planner's choice of victims, and the queue's nominations.

use std::time::Duration;

use super::tests::{cluster, gang, profile, topology};
use super::*;
use crate::framework::Profile;
use crate::topology::Topology;

/// Places `gang`'s pods one per node on `nodes` (all GPUs of the pod's size, from GPU 0).
fn run_on(snapshot: &mut Snapshot, gang: &Gang, nodes: &[&str]) -> RunningUnit {
    for (pod, node) in gang.members.iter().zip(nodes) {
        let id = snapshot.node_id(node).unwrap();
        let devices: Vec<usize> = (0..pod.gpu.count as usize).collect();
        snapshot.assume(pod, id, &devices).unwrap();
    }
    RunningUnit {
        name: gang.name.clone(),
        priority: gang.priority,
        pods: gang.members.iter().map(|p| p.key.clone()).collect(),
        started: Duration::ZERO,
    }
}

fn node_names(snapshot: &Snapshot, nodes: &[NodeId]) -> Vec<String> {
    nodes.iter().map(|&n| snapshot.nodes()[n].name.clone()).collect()
}

#[test]
fn the_lowest_priority_level_that_makes_room_gives_the_victims() {
    let mut snapshot = cluster(&[("s1", "r1", 4)]);
    let topo = topology(&snapshot);
    let running = vec![
        run_on(&mut snapshot, &gang("low-a", 2, 8), &["r1-n0", "r1-n1"]),
        run_on(&mut snapshot, &gang("mid", 1, 8).with_priority(5), &["r1-n2"]),
        run_on(&mut snapshot, &gang("low-b", 1, 4), &["r1-n3"]),
    ];
    let high = gang("high", 2, 8).with_priority(10);
    let plan = plan_preemption(&profile(), &snapshot, &topo, &high, &running, None).unwrap();
    assert_eq!(plan.victims, ["low-a"], "one whole low gang frees two nodes; mid and low-b are spared");
    assert_eq!(node_names(&snapshot, &plan.nodes), ["r1-n0", "r1-n1"]);
    // Three whole nodes: every priority-0 unit goes, the priority-5 one still stays.
    let higher = gang("higher", 3, 8).with_priority(10);
    let plan = plan_preemption(&profile(), &snapshot, &topo, &higher, &running, None).unwrap();
    assert_eq!(plan.victims, ["low-a", "low-b"]);
    // Four: mid must go too, the level above.
    let all = gang("all", 4, 8).with_priority(10);
    assert_eq!(
        plan_preemption(&profile(), &snapshot, &topo, &all, &running, None).unwrap().victims,
        ["low-a", "low-b", "mid"]
    );
}

#[test]
fn a_gang_is_evicted_whole_and_a_smaller_unit_is_preferred_when_either_would_do() {
    let mut snapshot = cluster(&[("s1", "r1", 3)]);
    let topo = topology(&snapshot);
    let running = vec![
        run_on(&mut snapshot, &gang("trainer", 2, 8), &["r1-n0", "r1-n1"]),
        run_on(&mut snapshot, &gang("notebook", 1, 8), &["r1-n2"]),
    ];
    let one_node = gang("urgent", 1, 8).with_priority(1);
    let plan = plan_preemption(&profile(), &snapshot, &topo, &one_node, &running, None).unwrap();
    assert_eq!(plan.victims, ["notebook"], "evicting half of trainer is never an option");
    // Only the trainer's room is big enough: it goes whole, both pods, for one node's worth.
    let two_nodes = gang("urgent2", 2, 8).with_priority(1);
    let plan = plan_preemption(&profile(), &snapshot, &topo, &two_nodes, &running, None).unwrap();
    assert_eq!(plan.victims, ["trainer"]);
    assert_eq!(plan.nodes.len(), 2);
}

#[test]
fn nothing_is_evicted_for_a_gang_that_cannot_fit_or_may_not_preempt() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let running = vec![run_on(&mut snapshot, &gang("low", 2, 8), &["r1-n0", "r1-n1"])];
    let too_big = gang("too-big", 3, 8).with_priority(10);
    assert_eq!(
        plan_preemption(&profile(), &snapshot, &topo, &too_big, &running, None),
        Err(NoPreemption::WouldNotFit { gang: "too-big".into(), units: 1 })
    );
    let mut polite = gang("polite", 1, 8).with_priority(10);
    polite.may_preempt = false;
    assert!(matches!(
        plan_preemption(&profile(), &snapshot, &topo, &polite, &running, None),
        Err(NoPreemption::Never { .. })
    ));
    let peer = gang("peer", 1, 8);
    assert!(matches!(
        plan_preemption(&profile(), &snapshot, &topo, &peer, &running, None),
        Err(NoPreemption::NoLowerPriority { .. })
    ));
    assert_eq!(snapshot.placed_pods(), 2, "planning preemption changes nothing");
}

#[test]
fn a_nominated_gang_keeps_the_freed_room_until_it_lapses() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let profile = profile();
    let running = vec![run_on(&mut snapshot, &gang("low", 2, 8), &["r1-n0", "r1-n1"])];
    let mut queue = GangQueue::new(QueueConfig::default());
    queue.add_gang(gang("high", 2, 8).with_priority(10), Duration::ZERO).unwrap();
    let pass = queue.schedule_pass(&profile, &mut snapshot, &topo, Duration::ZERO);
    assert!(pass.placed.is_empty());
    let preempted = queue.preempt(&profile, &snapshot, &topo, &running, Duration::ZERO);
    assert_eq!(preempted.preemption.as_ref().map(|p| p.victims.clone()), Some(vec!["low".to_string()]));
    assert_eq!(queue.nomination("high").map(<[NodeId]>::len), Some(2));
    // One victim pod has terminated, the other has not: high still cannot run, and a newcomer of lower
    // priority that would fit on the freed node is kept off it.
    snapshot.forget("low/p0").unwrap();
    queue.add_gang(gang("newcomer", 1, 8), Duration::from_secs(1)).unwrap();
    let pass = queue.schedule_pass(&profile, &mut snapshot, &topo, Duration::from_secs(10));
    assert!(pass.placed.is_empty(), "{:?}", pass.placed);
    assert!(queue.preempt(&profile, &snapshot, &topo, &running, Duration::from_secs(10)).preemption.is_none());
    // The last victim pod goes: high takes both nodes.
    snapshot.forget("low/p1").unwrap();
    let pass = queue.schedule_pass(&profile, &mut snapshot, &topo, Duration::from_secs(20));
    assert_eq!(pass.placed.iter().map(|p| p.gang.as_str()).collect::<Vec<_>>(), ["high"]);
    assert!(queue.nomination("high").is_none());
}

/// Two 8-GPU nodes held by gang `low`, and gang `high` (priority 10, 2 × 8 GPUs) nominated to them by a
/// preemption at time 0. No aging reservation: what holds the room is the nomination alone.
struct Nominated {
    snapshot: Snapshot,
    topology: Topology,
    profile: Profile,
    running: Vec<RunningUnit>,
    queue: GangQueue,
}

fn nominated_high() -> Nominated {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topology = topology(&snapshot);
    let profile = profile();
    let running = vec![run_on(&mut snapshot, &gang("low", 2, 8), &["r1-n0", "r1-n1"])];
    let mut queue = GangQueue::new(QueueConfig { reserve_after_skips: u32::MAX, ..QueueConfig::default() });
    queue.add_gang(gang("high", 2, 8).with_priority(10), Duration::ZERO).unwrap();
    queue.schedule_pass(&profile, &mut snapshot, &topology, Duration::ZERO);
    assert!(queue.preempt(&profile, &snapshot, &topology, &running, Duration::ZERO).preemption.is_some());
    Nominated { snapshot, topology, profile, running, queue }
}

#[test]
fn a_nomination_whose_victims_never_go_lapses_and_frees_the_room() {
    let Nominated { mut snapshot, topology, profile, mut queue, .. } = nominated_high();
    // Only one victim pod is ever evicted (a disruption budget refused the other).
    snapshot.forget("low/p0").unwrap();
    queue.add_gang(gang("newcomer", 1, 8), Duration::from_secs(1)).unwrap();
    let timeout = QueueConfig::default().nomination_timeout;
    let pass = queue.schedule_pass(&profile, &mut snapshot, &topology, timeout - Duration::from_secs(1));
    assert!(pass.placed.is_empty());
    let pass = queue.schedule_pass(&profile, &mut snapshot, &topology, timeout);
    assert_eq!(pass.placed.iter().map(|p| p.gang.as_str()).collect::<Vec<_>>(), ["newcomer"]);
    assert!(queue.nomination("high").is_none());
}

#[test]
fn a_refused_preemption_lets_the_room_go_and_waits_before_asking_again() {
    let Nominated { snapshot, topology, profile, running, mut queue } = nominated_high();
    let retry_at = Duration::from_secs(10);
    queue.preemption_refused("high", retry_at);
    assert!(queue.nomination("high").is_none(), "the room is no longer held");
    let before = queue.preempt(&profile, &snapshot, &topology, &running, retry_at - Duration::from_secs(1));
    assert_eq!(before, PreemptOutcome::default(), "no second attempt before {retry_at:?}");
    let after = queue.preempt(&profile, &snapshot, &topology, &running, retry_at);
    assert_eq!(after.preemption.map(|p| p.victims), Some(vec!["low".to_string()]));
}

/// Runs passes, preempting and evicting (victims go at once and queue again), until nothing changes;
/// `gangs` are all the gangs there are. Returns how many units were evicted.
fn settle(
    snapshot: &mut Snapshot,
    queue: &mut GangQueue,
    gangs: &[Gang],
    running: &mut Vec<(Gang, RunningUnit)>,
) -> usize {
    let (profile, topo) = (profile(), topology(snapshot));
    let mut evictions = 0;
    for round in 0..20u64 {
        let now = Duration::from_secs(round);
        let pass = queue.schedule_pass(&profile, snapshot, &topo, now);
        for placed in &pass.placed {
            assert!(running.iter().all(|(g, _)| g.name != placed.gang), "{} placed twice", placed.gang);
            queue.remove(&placed.gang).expect("a placed gang binds until it is removed");
            let gang = gangs.iter().find(|g| g.name == placed.gang).unwrap().clone();
            let unit = RunningUnit {
                name: gang.name.clone(),
                priority: gang.priority,
                pods: gang.members.iter().map(|p| p.key.clone()).collect(),
                started: now,
            };
            running.push((gang, unit));
        }
        let units: Vec<RunningUnit> = running.iter().map(|(_, u)| u.clone()).collect();
        let Some(preemption) = queue.preempt(&profile, snapshot, &topo, &units, now).preemption else {
            if pass.placed.is_empty() {
                return evictions;
            }
            continue;
        };
        for victim in &preemption.victims {
            let at = running.iter().position(|(g, _)| &g.name == victim).unwrap();
            let (gang, unit) = running.remove(at);
            unit.pods.iter().for_each(|p| drop(snapshot.forget(p).unwrap()));
            queue.add_gang(gang, now).unwrap();
            evictions += 1;
        }
    }
    panic!("preemption did not settle in 20 rounds");
}

#[test]
fn three_priority_levels_settle_without_a_preemption_loop() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let low = gang("low", 2, 8);
    let mid = gang("mid", 2, 8).with_priority(5);
    let mid_peer = gang("mid-peer", 2, 8).with_priority(5);
    let high = gang("high", 1, 8).with_priority(10);
    let gangs = [low.clone(), mid.clone(), mid_peer.clone(), high.clone()];
    let mut running = vec![(low.clone(), run_on(&mut snapshot, &low, &["r1-n0", "r1-n1"]))];
    let mut queue = GangQueue::new(QueueConfig::default());
    queue.add_gang(mid, Duration::ZERO).unwrap();
    queue.add_gang(mid_peer, Duration::ZERO).unwrap();
    let evictions = settle(&mut snapshot, &mut queue, &gangs, &mut running);
    // mid evicts low; mid-peer, of the same priority, never evicts mid, nor mid it.
    assert_eq!(evictions, 1);
    assert_eq!(running.iter().map(|(g, _)| g.name.as_str()).collect::<Vec<_>>(), ["mid"]);
    // high needs one node: it evicts mid whole; then low, mid and mid-peer wait, and none evicts high.
    queue.add_gang(high, Duration::from_secs(30)).unwrap();
    let evictions = settle(&mut snapshot, &mut queue, &gangs, &mut running);
    assert_eq!(evictions, 1);
    assert_eq!(running.iter().map(|(g, _)| g.name.as_str()).collect::<Vec<_>>(), ["high"]);
    assert_eq!(queue.len(), 3);
    assert_eq!(snapshot.placed_pods(), 1, "no partial gang holds the free node");
}

#[test]
fn room_held_for_another_gang_is_neither_taken_nor_a_reason_to_evict() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let running = vec![run_on(&mut snapshot, &gang("low", 1, 8), &["r1-n0"])];
    let high = gang("high", 1, 8).with_priority(10);
    // r1-n1 is free: nothing to evict for.
    assert_eq!(
        plan_preemption(&profile(), &snapshot, &topo, &high, &running, None),
        Err(NoPreemption::NotNeeded { gang: "high".into() })
    );
    // r1-n1 is held for another gang: high makes its own room on r1-n0 instead of taking it.
    let held = [false, true];
    let plan = plan_preemption(&profile(), &snapshot, &topo, &high, &running, Some(&held)).unwrap();
    assert_eq!(
        (plan.victims, node_names(&snapshot, &plan.nodes)),
        (vec!["low".to_string()], vec!["r1-n0".to_string()])
    );
}
