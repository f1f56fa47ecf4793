//! The queue between passes: backoff, activation, binding, sleeping for members.

use std::time::Duration;

use super::tests::{cluster, gang, profile, topology};
use super::*;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn live_queue() -> GangQueue {
    GangQueue::new(QueueConfig { backoff: Backoff { initial: s(1), max: s(60) }, ..QueueConfig::default() })
}

#[test]
fn backoff_doubles_and_caps() {
    let b = Backoff { initial: s(1), max: s(60) };
    let waits: Vec<u64> = (1..=8).map(|n| b.after(n).as_secs()).collect();
    assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    assert_eq!(b.after(1000), s(60));
    assert_eq!(Backoff::NONE.after(5), Duration::ZERO);
}

#[test]
fn touched_units_are_ready_by_priority_then_first_touch() {
    let mut q = live_queue();
    q.touch("a", 0, s(0));
    q.touch("b", 10, s(1));
    q.touch("g", 0, s(2));
    q.touch("c", 10, s(3));
    q.touch("a", 0, s(4));
    assert_eq!(q.ready(s(4)), ["b", "c", "a", "g"]);
    assert_eq!(q.unit("a").unwrap().arrived_at, s(0), "touch keeps the arrival");
}

#[test]
fn a_gang_without_room_backs_off_until_its_time_or_a_cluster_change() {
    let mut snapshot = cluster(&[("s1", "r1", 1)]);
    let topo = topology(&snapshot);
    let mut q = live_queue();
    q.add_gang(gang("big", 2, 8), s(0)).unwrap();
    let pass = q.schedule_pass(&profile(), &mut snapshot, &topo, s(0));
    assert_eq!(pass.waiting.len(), 1);
    assert_eq!(q.unit("big").unwrap().not_before, Some(s(1)));
    assert!(q.schedule_pass(&profile(), &mut snapshot, &topo, s(0)).waiting.is_empty(), "not tried while backing off");
    assert_eq!(q.next_wakeup(), Some(s(1)));
    assert_eq!(q.counts(s(0)), QueueCounts { active: 0, backoff: 1, in_flight: 0 });
    q.schedule_pass(&profile(), &mut snapshot, &topo, s(1));
    assert_eq!(q.unit("big").unwrap().not_before, Some(s(3)), "the second wait is twice the first");
    assert_eq!(q.activate_backoff(), 1);
    assert_eq!(q.ready(s(1)), ["big"]);
    assert_eq!(q.unit("big").unwrap().attempts, 2, "attempts survive activation");
}

#[test]
fn a_placed_gang_binds_until_told_and_a_failed_bind_backs_it_off() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let mut q = live_queue();
    q.add_gang(gang("a", 1, 8), s(0)).unwrap();
    q.add_gang(gang("b", 1, 8), s(0)).unwrap();
    assert!(!q.all_binding());
    assert_eq!(q.schedule_pass(&profile(), &mut snapshot, &topo, s(0)).placed.len(), 2);
    assert!(q.all_binding(), "nothing to try");
    assert_eq!(q.next_wakeup(), None);
    assert_eq!(q.counts(s(0)).in_flight, 2);
    q.failed("b", s(0));
    assert!(!q.all_binding());
    assert_eq!(q.unit("b").unwrap().not_before, Some(s(1)));
    q.bind_finished("a");
    assert_eq!(q.ready(s(0)), ["a"], "done binding, it stays for members beyond its quorum");
    q.remove("b");
    q.remove("a");
    assert!(q.all_binding() && q.is_empty());
}

#[test]
fn a_gang_below_quorum_sleeps_through_cluster_changes_until_a_member_arrives() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let mut q = live_queue();
    let mut partial = gang("g", 2, 8);
    let second = partial.members.pop().unwrap();
    q.add_gang(partial, s(0)).unwrap();
    assert_eq!(q.schedule_pass(&profile(), &mut snapshot, &topo, s(0)).waiting.len(), 1);
    q.activate_backoff();
    assert!(q.ready(s(100)).is_empty(), "a gang below quorum is not woken by cluster changes");
    assert_eq!(q.next_wakeup(), None);
    q.add_member("g", second).unwrap();
    assert_eq!(q.schedule_pass(&profile(), &mut snapshot, &topo, s(5)).placed.len(), 1);
}

#[test]
fn a_gang_holding_the_reservation_is_tried_while_it_backs_off() {
    let mut snapshot = cluster(&[("s1", "r1", 2)]);
    let topo = topology(&snapshot);
    let mut q = GangQueue::new(QueueConfig {
        backoff: Backoff { initial: s(10), max: s(60) },
        reserve_after_skips: 1,
        ..QueueConfig::default()
    });
    q.add_gang(gang("running", 1, 8), s(0)).unwrap();
    assert_eq!(q.schedule_pass(&profile(), &mut snapshot, &topo, s(0)).placed.len(), 1);
    q.add_gang(gang("big", 2, 8), s(0)).unwrap();
    assert_eq!(q.schedule_pass(&profile(), &mut snapshot, &topo, s(0)).reserved_for.as_deref(), Some("big"));
    assert_eq!(q.unit("big").unwrap().not_before, Some(s(10)));
    assert_eq!(q.ready(s(1)), ["big"], "its room stays held only while it takes part");
    q.add_gang(gang("small", 1, 8), s(1)).unwrap();
    let pass = q.schedule_pass(&profile(), &mut snapshot, &topo, s(1));
    assert_eq!(pass.reserved_for.as_deref(), Some("big"));
    assert!(pass.placed.is_empty(), "small stays off the node held for big: {:?}", pass.placed);
}
