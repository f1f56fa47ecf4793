//! The queue's units between passes: when a gang is due, how it backs off, while it binds.
//!
//! A caller whose view of the cluster arrives as events (the live scheduler) keeps one [`GangQueue`] for
//! as long as it runs: a pod's arrival `touch`es its unit (queued before its members are known, given
//! them by `upsert` when a pass tries it), a cluster change that could help calls `activate_backoff`,
//! a bind's end calls `bind_finished` or `failed`, and `next_wakeup` says when to pass again. A simulator
//! drives the same calls from its own clock (`mlsim jobs`).

use std::time::Duration;

use super::Gang;
use super::queue::{GangQueue, QueuedGang};

/// How long a unit that did not fit waits: `initial * 2^(n-1)` after its n-th try, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// No wait: every unit is due at every pass.
    pub const NONE: Backoff = Backoff { initial: Duration::ZERO, max: Duration::ZERO };

    /// The wait after the `attempts`-th failure (1-based).
    pub fn after(&self, attempts: u32) -> Duration {
        let factor = 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
        self.initial.mul_f64(factor).min(self.max)
    }
}

/// Units by state, for `scheduler_pending_pods{queue}` (in units, not pods).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub active: usize,
    pub backoff: usize,
    pub in_flight: usize,
}

/// Where one queued unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitStatus {
    pub priority: i32,
    /// The profile it was last queued for.
    pub profile: usize,
    /// When it (re-)entered the queue; its timeout counts from here.
    pub arrived_at: Duration,
    pub attempts: u32,
    /// Not tried before this; `None` = due; `Duration::MAX` = asleep until touched.
    pub not_before: Option<Duration>,
    pub binding: bool,
}

impl GangQueue {
    /// A unit gained a pod (or changed): queued if new (with no members yet: a pass tries it once the
    /// caller `upsert`s them), due now unless binding, at the highest priority it has been touched with.
    pub fn touch(&mut self, name: &str, priority: i32, now: Duration) {
        match self.entries.get_mut(name) {
            Some(entry) => {
                entry.gang.priority = entry.gang.priority.max(priority);
                entry.not_before = None;
            }
            None => {
                self.insert(Gang::new(name, 1, Vec::new()).with_priority(priority), 0, now);
            }
        }
    }

    pub fn unit(&self, name: &str) -> Option<UnitStatus> {
        let e = self.entries.get(name)?;
        Some(UnitStatus {
            priority: e.gang.priority,
            profile: e.profile,
            arrived_at: e.arrived_at,
            attempts: e.attempts,
            not_before: e.not_before,
            binding: !self.waiting.contains(name),
        })
    }

    /// Whether `entry`, not binding, is tried at a pass at `now`: its backoff over, or holding the last
    /// pass's reservation (the room stays held only while its holder takes part in every pass).
    pub(super) fn is_due(&self, name: &str, entry: &QueuedGang, now: Duration) -> bool {
        entry.not_before.is_none_or(|t| t <= now) || self.reserved_for() == Some(name)
    }

    /// The units a pass at `now` would try, in queue order.
    pub fn ready(&self, now: Duration) -> Vec<String> {
        self.in_order(|name, entry| self.is_due(name, entry, now))
    }

    /// The unit did not fit, or its binds failed: it is no longer binding, and backs off. The wait.
    pub fn failed(&mut self, name: &str, now: Duration) -> Option<Duration> {
        let backoff = self.config.backoff;
        let entry = self.entries.get_mut(name)?;
        self.waiting.insert(name.to_string());
        Some(entry.back_off(&backoff, now))
    }

    /// A gang below quorum sleeps until a member arrives (`touch`), or until `wake` (its timeout).
    pub fn sleep_until(&mut self, name: &str, wake: Option<Duration>) {
        if let Some(entry) = self.entries.get_mut(name) {
            entry.not_before = Some(wake.unwrap_or(Duration::MAX));
        }
    }

    /// Its wait ran out (counted by the caller): a new wait starts now, after a backoff.
    pub fn restart(&mut self, name: &str, now: Duration) {
        self.failed(name, now);
        if let Some(entry) = self.entries.get_mut(name) {
            entry.arrived_at = now;
        }
    }

    /// Its binds ended and it stays queued (members beyond its quorum may come): due again.
    pub fn bind_finished(&mut self, name: &str) {
        if let Some(entry) = self.entries.get_mut(name) {
            entry.not_before = None;
            self.waiting.insert(name.to_string());
        }
    }

    /// A cluster change that could make units fit (a node added or grown, a pod gone): every backing-off
    /// unit is due now; its attempts stay, so repeated failures still back off. Units asleep for members
    /// keep sleeping. How many were woken.
    pub fn activate_backoff(&mut self) -> usize {
        let mut woken = 0;
        for name in &self.waiting {
            let entry = self.entries.get_mut(name).expect("waiting names are entries");
            if entry.attempts > 0 && entry.not_before.is_some_and(|t| t != Duration::MAX) {
                entry.not_before = None;
                woken += 1;
            }
        }
        woken
    }

    /// Every unit is binding: nothing to try, whatever the time (a throttled scheduler with a backlog,
    /// checked on every event without a walk over the queue).
    pub fn all_binding(&self) -> bool {
        self.waiting.is_empty()
    }

    /// When the next backing-off unit is due.
    pub fn next_wakeup(&self) -> Option<Duration> {
        if self.all_binding() {
            return None;
        }
        let waits = self.waiting.iter().filter_map(|name| self.entries[name].not_before);
        waits.filter(|t| *t != Duration::MAX).min()
    }

    pub fn counts(&self, now: Duration) -> QueueCounts {
        let mut c = QueueCounts { in_flight: self.entries.len() - self.waiting.len(), ..QueueCounts::default() };
        for e in self.waiting.iter().map(|name| &self.entries[name]) {
            if e.not_before.is_none_or(|t| t <= now) {
                c.active += 1;
            } else {
                c.backoff += 1;
            }
        }
        c
    }
}
