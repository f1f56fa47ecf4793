//! Which scheduling units (single pods, gangs) are tried in the next pass, in what order, and when a
//! failed one is tried again. Pure: time is a `Duration` since the scheduler started.
//!
//! - Order: higher priority first, then first seen (FIFO).
//! - Backoff: after the n-th unschedulable attempt a unit waits `initial * 2^(n-1)`, at most `max`.
//! - Re-activation: a cluster change that could help (node added or changed, a pod deleted) makes every
//!   backing-off unit eligible at once; its attempt count stays, so repeated failures still back off.
//! - A gang waiting for members sleeps until a member arrives (`touch`) or its timeout is due.
//! - A unit whose binds are in flight is never tried.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKey {
    Pod(String),
    Gang(String),
}

impl std::fmt::Display for UnitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitKey::Pod(k) => write!(f, "pod {k}"),
            UnitKey::Gang(k) => write!(f, "gang {k}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitEntry {
    pub seq: u64,
    pub priority: i32,
    /// When the unit (re-)entered the queue; gang timeouts count from here.
    pub arrival: Duration,
    pub attempts: u32,
    /// Not tried before this instant; `None` = ready.
    pub not_before: Option<Duration>,
    pub in_flight: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `attempts`-th failure (1-based).
    pub fn after(&self, attempts: u32) -> Duration {
        let factor = 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
        self.initial.mul_f64(factor).min(self.max)
    }
}

/// Counts for `scheduler_pending_pods{queue}` (in units, not pods).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub active: usize,
    pub backoff: usize,
    pub in_flight: usize,
}

#[derive(Debug, Clone)]
pub struct SchedulingQueue {
    units: HashMap<UnitKey, UnitEntry>,
    next_seq: u64,
    backoff: Backoff,
    /// Units with binds in flight, so [`all_in_flight`](Self::all_in_flight) needs no walk over the queue.
    in_flight: usize,
}

impl SchedulingQueue {
    pub fn new(backoff: Backoff) -> Self {
        SchedulingQueue { units: HashMap::new(), next_seq: 0, backoff, in_flight: 0 }
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &UnitKey> {
        self.units.keys()
    }

    pub fn get(&self, key: &UnitKey) -> Option<&UnitEntry> {
        self.units.get(key)
    }

    /// A unit gained a pod (or was updated): queue it if new, and make it ready unless binding.
    pub fn touch(&mut self, key: UnitKey, priority: i32, now: Duration) {
        let seq = self.next_seq;
        let entry = self.units.entry(key).or_insert_with(|| UnitEntry {
            seq,
            priority,
            arrival: now,
            attempts: 0,
            not_before: None,
            in_flight: false,
        });
        if entry.seq == seq {
            self.next_seq += 1;
        }
        entry.priority = entry.priority.max(priority);
        entry.not_before = None;
    }

    pub fn remove(&mut self, key: &UnitKey) -> Option<UnitEntry> {
        let entry = self.units.remove(key)?;
        self.in_flight -= usize::from(entry.in_flight);
        Some(entry)
    }

    /// Every queued unit is binding: nothing to try, whatever the time (the state of a throttled scheduler
    /// with a backlog, checked on every event).
    pub fn all_in_flight(&self) -> bool {
        self.in_flight == self.units.len()
    }

    /// Units to try now, in queue order.
    pub fn ready(&self, now: Duration) -> Vec<UnitKey> {
        let mut ready: Vec<(&UnitKey, &UnitEntry)> =
            self.units.iter().filter(|(_, e)| !e.in_flight && e.not_before.is_none_or(|t| t <= now)).collect();
        ready.sort_by_key(|(_, e)| (Reverse(e.priority), e.seq));
        ready.into_iter().map(|(k, _)| k.clone()).collect()
    }

    /// The unit did not fit: back off.
    pub fn failed(&mut self, key: &UnitKey, now: Duration) -> Option<Duration> {
        let backoff = self.backoff;
        let entry = self.units.get_mut(key)?;
        entry.attempts += 1;
        self.in_flight -= usize::from(entry.in_flight);
        entry.in_flight = false;
        let wait = backoff.after(entry.attempts);
        entry.not_before = Some(now + wait);
        Some(wait)
    }

    /// A gang below quorum sleeps until a member arrives, or until `wake` (its timeout).
    pub fn sleep_until(&mut self, key: &UnitKey, wake: Option<Duration>) {
        if let Some(entry) = self.units.get_mut(key) {
            entry.not_before = Some(wake.unwrap_or(Duration::MAX));
        }
    }

    /// A gang timed out: it starts a new wait, after a backoff.
    pub fn restart(&mut self, key: &UnitKey, now: Duration) {
        self.failed(key, now);
        if let Some(entry) = self.units.get_mut(key) {
            entry.arrival = now;
        }
    }

    pub fn set_in_flight(&mut self, key: &UnitKey, in_flight: bool) {
        if let Some(entry) = self.units.get_mut(key) {
            if entry.in_flight != in_flight {
                self.in_flight = if in_flight { self.in_flight + 1 } else { self.in_flight - 1 };
            }
            entry.in_flight = in_flight;
            if !in_flight {
                entry.not_before = None;
            }
        }
    }

    /// A cluster change that could make unschedulable units fit: every backing-off unit is ready now.
    /// Gangs sleeping for members (not_before = MAX) keep sleeping.
    pub fn activate_backoff(&mut self) -> usize {
        let mut n = 0;
        for entry in self.units.values_mut() {
            if entry.not_before.is_some_and(|t| t != Duration::MAX) && entry.attempts > 0 {
                entry.not_before = None;
                n += 1;
            }
        }
        n
    }

    /// When the next backing-off unit becomes ready.
    pub fn next_wakeup(&self) -> Option<Duration> {
        if self.all_in_flight() {
            return None;
        }
        self.units.values().filter(|e| !e.in_flight).filter_map(|e| e.not_before).filter(|t| *t != Duration::MAX).min()
    }

    pub fn counts(&self, now: Duration) -> QueueCounts {
        let mut c = QueueCounts::default();
        for e in self.units.values() {
            if e.in_flight {
                c.in_flight += 1;
            } else if e.not_before.is_none_or(|t| t <= now) {
                c.active += 1;
            } else {
                c.backoff += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(Backoff { initial: s(1), max: s(60) })
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff { initial: s(1), max: s(60) };
        let waits: Vec<u64> = (1..=8).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.after(1000), s(60));
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = queue();
        q.touch(UnitKey::Pod("a".into()), 0, s(0));
        q.touch(UnitKey::Pod("b".into()), 10, s(1));
        q.touch(UnitKey::Gang("g".into()), 0, s(2));
        q.touch(UnitKey::Pod("c".into()), 10, s(3));
        let order: Vec<String> = q.ready(s(4)).iter().map(ToString::to_string).collect();
        assert_eq!(order, vec!["pod b", "pod c", "pod a", "gang g"]);
    }

    #[test]
    fn failed_units_back_off_and_cluster_changes_reactivate() {
        let mut q = queue();
        let a = UnitKey::Pod("a".into());
        q.touch(a.clone(), 0, s(0));
        assert_eq!(q.failed(&a, s(0)), Some(s(1)));
        assert!(q.ready(s(0)).is_empty());
        assert_eq!(q.next_wakeup(), Some(s(1)));
        assert_eq!(q.ready(s(1)), vec![a.clone()]);
        assert_eq!(q.failed(&a, s(1)), Some(s(2)));
        assert_eq!(q.failed(&a, s(3)), Some(s(4)));
        assert_eq!(q.counts(s(4)), QueueCounts { active: 0, backoff: 1, in_flight: 0 });
        assert_eq!(q.activate_backoff(), 1);
        assert_eq!(q.ready(s(4)), vec![a.clone()]);
        assert_eq!(q.get(&a).unwrap().attempts, 3, "attempts survive re-activation");
    }

    #[test]
    fn in_flight_units_are_not_tried_and_sleeping_gangs_wait_for_members() {
        let mut q = queue();
        let g = UnitKey::Gang("g".into());
        q.touch(g.clone(), 0, s(0));
        q.set_in_flight(&g, true);
        assert!(q.ready(s(0)).is_empty());
        assert_eq!(q.counts(s(0)).in_flight, 1);
        q.set_in_flight(&g, false);
        q.sleep_until(&g, None);
        q.activate_backoff();
        assert!(q.ready(s(100)).is_empty(), "a gang below quorum is not woken by cluster changes");
        assert_eq!(q.next_wakeup(), None);
        q.touch(g.clone(), 0, s(5));
        assert_eq!(q.ready(s(5)), vec![g.clone()]);
        assert_eq!(q.get(&g).unwrap().arrival, s(0), "touch keeps the arrival");
        q.restart(&g, s(9));
        assert_eq!(q.get(&g).unwrap().arrival, s(9));
    }

    #[test]
    fn all_in_flight_follows_every_way_a_unit_enters_or_leaves_flight() {
        let mut q = queue();
        assert!(q.all_in_flight(), "nothing queued, nothing to try");
        let (a, b) = (UnitKey::Pod("a".into()), UnitKey::Pod("b".into()));
        q.touch(a.clone(), 0, s(0));
        q.touch(b.clone(), 0, s(0));
        assert!(!q.all_in_flight());
        q.set_in_flight(&a, true);
        q.set_in_flight(&a, true);
        q.set_in_flight(&b, true);
        assert!(q.all_in_flight());
        assert_eq!(q.counts(s(0)).in_flight, 2);
        q.failed(&b, s(0));
        assert!(!q.all_in_flight());
        q.remove(&b);
        assert!(q.all_in_flight());
        q.remove(&a);
        q.touch(a.clone(), 0, s(1));
        assert!(!q.all_in_flight());
        q.set_in_flight(&a, true);
        q.restart(&a, s(2));
        assert!(!q.all_in_flight());
        assert_eq!(q.counts(s(2)).in_flight, 0);
    }
}
