//! The gang-aware queue: gangs (and single pods, as gangs of one) wait here until they are placed whole.
//!
//! - **Quorum**: a gang is not tried until `min_member` of its pods exist; its members are held back.
//! - **Order**: higher priority first, then earlier arrival. Each pass tries every gang in that order and
//!   places what fits, so a gang that does not fit never blocks smaller work behind it (backfill).
//! - **Aging, so the big gang does not starve in turn**: every pass in which a gang is tried and does not
//!   fit counts as a skip. Once a gang has been skipped `reserve_after_skips` times, the first such gang
//!   in queue order holds a *reservation*: the nodes of the tightest domain it could use once empty (the
//!   one closest to fitting it now, see `reservation_for`). For the rest of the pass, no gang behind it
//!   is placed on those nodes, so pods finishing there free room for it rather than for newcomers. Work
//!   that fits elsewhere still flows. One reservation at a time, always for the oldest starving gang of
//!   the highest priority, so reservations cannot deadlock each other. A gang that could not fit even in
//!   an empty cluster (or its required level) reserves nothing; its timeout ends its wait.
//! - **Timeouts**: a gang whose `timeout` has passed since it arrived is removed and reported. It never
//!   held anything: gangs are placed whole or not at all. Time is passed in by the caller (`now`), so the
//!   queue stays pure and a simulator drives it with its own clock.

use std::cmp::Reverse;
use std::time::Duration;

use thiserror::Error;

use super::plan::{PlanOptions, plan_gang_with, reservation_for};
use super::{Gang, GangPlacement, GangUnschedulable};
use crate::core::{Pod, Snapshot};
use crate::framework::Profile;
use crate::topology::Topology;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Skips after which the oldest starving gang reserves its domain.
    pub reserve_after_skips: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { reserve_after_skips: 3 }
    }
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("gang {0} is already queued")]
    DuplicateGang(String),
    #[error("no queued gang named {0}")]
    UnknownGang(String),
    #[error("gang {gang}: {reason}")]
    InvalidGang { gang: String, reason: String },
}

#[derive(Debug, Clone)]
struct QueuedGang {
    gang: Gang,
    arrival: u64,
    arrived_at: Duration,
    skips: u32,
    last_reason: Option<String>,
}

/// A gang whose wait ran out; it holds nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedOutGang {
    pub gang: Gang,
    pub waited: Duration,
    pub last_reason: Option<String>,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassOutcome {
    /// Placed gangs, in the order they were placed; their members are assumed in the snapshot.
    pub placed: Vec<GangPlacement>,
    pub timed_out: Vec<TimedOutGang>,
    /// Gangs removed because they can never be placed as given (unknown level, invalid pod...).
    pub rejected: Vec<(Gang, String)>,
    /// Gangs still waiting, with why (for PodGroup conditions and `FailedScheduling` events).
    pub waiting: Vec<(String, String)>,
    /// The gang whose domain was kept free of later work this pass.
    pub reserved_for: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GangQueue {
    config: QueueConfig,
    entries: Vec<QueuedGang>,
    next_arrival: u64,
}

impl GangQueue {
    pub fn new(config: QueueConfig) -> Self {
        GangQueue { config, entries: Vec::new(), next_arrival: 0 }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues a gang (its members so far may be fewer than `min_member`).
    pub fn add_gang(&mut self, gang: Gang, now: Duration) -> Result<(), QueueError> {
        self.add_gang_skipped(gang, now, 0)
    }

    /// Queues a gang that has already been skipped `skips` times, for a caller that keeps its own queue
    /// between passes (the live scheduler rebuilds this one each pass): its age carries over.
    pub fn add_gang_skipped(&mut self, gang: Gang, now: Duration, skips: u32) -> Result<(), QueueError> {
        let invalid = |reason: String| QueueError::InvalidGang { gang: gang.name.clone(), reason };
        gang.validate().map_err(invalid)?;
        if self.entries.iter().any(|e| e.gang.name == gang.name) {
            return Err(QueueError::DuplicateGang(gang.name));
        }
        self.entries.push(QueuedGang { gang, arrival: self.next_arrival, arrived_at: now, skips, last_reason: None });
        self.next_arrival += 1;
        Ok(())
    }

    /// A pod outside any gang, queued as a gang of one.
    pub fn add_pod(&mut self, pod: Pod, now: Duration) -> Result<(), QueueError> {
        self.add_gang(Gang::single(pod), now)
    }

    /// A member that appeared after its gang was queued.
    pub fn add_member(&mut self, gang: &str, pod: Pod) -> Result<(), QueueError> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.gang.name == gang)
            .ok_or_else(|| QueueError::UnknownGang(gang.into()))?;
        if entry.gang.members.iter().any(|m| m.key == pod.key) {
            return Err(QueueError::InvalidGang {
                gang: gang.into(),
                reason: format!("pod {} is already a member", pod.key),
            });
        }
        entry.gang.members.push(pod);
        Ok(())
    }

    /// Takes a gang out of the queue (its job was deleted).
    pub fn remove(&mut self, gang: &str) -> Option<Gang> {
        let index = self.entries.iter().position(|e| e.gang.name == gang)?;
        Some(self.entries.remove(index).gang)
    }

    pub fn waiting_reason(&self, gang: &str) -> Option<&str> {
        self.entries.iter().find(|e| e.gang.name == gang)?.last_reason.as_deref()
    }

    pub fn skips(&self, gang: &str) -> Option<u32> {
        self.entries.iter().find(|e| e.gang.name == gang).map(|e| e.skips)
    }

    /// Expires timed-out gangs, then tries every other gang once in queue order.
    pub fn schedule_pass(
        &mut self,
        profile: &Profile,
        snapshot: &mut Snapshot,
        topology: &Topology,
        now: Duration,
    ) -> PassOutcome {
        let mut outcome = PassOutcome { timed_out: self.expire(now), ..PassOutcome::default() };
        self.entries.sort_by_key(|e| (Reverse(e.gang.priority), e.arrival));
        let mut avoid: Option<Vec<bool>> = None;
        let mut index = 0;
        while index < self.entries.len() {
            let entry = &mut self.entries[index];
            if !entry.gang.has_quorum() {
                let reason = GangUnschedulable::WaitingForMembers {
                    gang: entry.gang.name.clone(),
                    have: entry.gang.members.len(),
                    min_member: entry.gang.min_member,
                }
                .to_string();
                outcome.waiting.push((entry.gang.name.clone(), reason.clone()));
                entry.last_reason = Some(reason);
                index += 1;
                continue;
            }
            let options = PlanOptions { avoid: avoid.as_deref(), ..PlanOptions::default() };
            match plan_gang_with(profile, snapshot, &entry.gang, topology, &options) {
                Ok(placement) => {
                    outcome.placed.push(placement);
                    self.entries.remove(index);
                }
                Err(GangUnschedulable::Invalid { reason, .. }) => {
                    let removed = self.entries.remove(index);
                    outcome.rejected.push((removed.gang, reason));
                }
                Err(unschedulable) => {
                    entry.skips += 1;
                    let reason = unschedulable.to_string();
                    outcome.waiting.push((entry.gang.name.clone(), reason.clone()));
                    entry.last_reason = Some(reason);
                    if avoid.is_none()
                        && entry.skips >= self.config.reserve_after_skips
                        && let Some(nodes) = reservation_for(profile, snapshot, &entry.gang, topology)
                    {
                        let mut mask = vec![false; snapshot.nodes().len()];
                        nodes.into_iter().for_each(|n| mask[n] = true);
                        avoid = Some(mask);
                        outcome.reserved_for = Some(entry.gang.name.clone());
                    }
                    index += 1;
                }
            }
        }
        outcome
    }

    fn expire(&mut self, now: Duration) -> Vec<TimedOutGang> {
        let mut timed_out = Vec::new();
        self.entries.retain(|entry| {
            let waited = now.saturating_sub(entry.arrived_at);
            let expired = entry.gang.timeout.is_some_and(|limit| waited >= limit);
            if expired {
                timed_out.push(TimedOutGang {
                    gang: entry.gang.clone(),
                    waited,
                    last_reason: entry.last_reason.clone(),
                });
            }
            !expired
        });
        timed_out
    }
}
