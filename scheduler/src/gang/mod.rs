//! All-or-none gangs: a group of pods that run together or not at all.
//!
//! - `plan`: decides one gang as a single transaction on the snapshot (`plan_gang`).
//! - `queue`: holds gangs until quorum, orders them, ages the ones that keep being skipped.
//! - `units`: a queued gang between passes: backoff, binding, activation by cluster changes.
//! - `outlook`: what the caller knows about run times, and when room frees up (backfill, locality waits).
//! - `preempt`: which lower-priority units, whole, a gang that fits nowhere may evict.
//!
//! How a simulator drives it: a job arrives → build a [`Gang`] of its pods and `plan_gang` it (or put it
//! in a [`GangQueue`] and call `schedule_pass`); on `Ok` the members are already assumed in the snapshot.
//! The job finishes → `GangPlacement::release` (or `Snapshot::forget` each member).

pub mod min_resources;
pub mod outlook;
pub mod plan;
pub mod preempt;
pub mod queue;
pub mod units;

#[cfg(test)]
mod preempt_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod units_tests;

use std::time::Duration;

use thiserror::Error;

use crate::core::{NodeId, Pod, Snapshot, SnapshotError};
use crate::topology::DomainId;

pub use min_resources::MinResources;
pub use outlook::{NoHints, RuntimeHints};
pub use plan::{PlanOptions, plan_gang, plan_gang_with};
pub use preempt::{NoPreemption, Preemption, RunningUnit, plan_preemption};
pub use queue::{GangQueue, PassOutcome, PreemptOutcome, QueueConfig, QueueError, TimedOutGang};
pub use units::{Backoff, QueueCounts, UnitStatus};

/// Where a gang must (or would like to) be kept together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyRequirement {
    /// A topology level label, e.g. `network.mlsched.io/rack`.
    pub level: String,
    /// Required: the gang runs inside one domain of this level (or a tighter one) or not at all.
    /// Preferred: the same is tried first, then looser levels; with run times known, the queue may wait
    /// for a domain of this level instead (`queue`).
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gang {
    pub name: String,
    /// How many members must be placed together for any to be placed.
    pub min_member: usize,
    /// The member pods that exist so far.
    pub members: Vec<Pod>,
    /// How many members the job will ever create, when known; lets `min_member` above it be refused
    /// at once instead of waiting forever.
    pub expected_members: Option<usize>,
    /// How long the gang may wait, counted from its arrival in the queue.
    pub timeout: Option<Duration>,
    pub priority: i32,
    pub topology: Option<TopologyRequirement>,
    /// What must be free in the cluster before a placement is tried (a PodGroup's `minResources`, less what
    /// its running members hold).
    pub min_resources: Option<MinResources>,
    /// Whether it may evict lower-priority units when it fits nowhere (`preemptionPolicy:
    /// PreemptLowerPriority`, the default); `false` for `Never`.
    pub may_preempt: bool,
}

impl Gang {
    /// The checks that do not need a cluster: a name, a quorum of at least one, a quorum the job can meet.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a gang needs a name".into());
        }
        if self.min_member == 0 {
            return Err("min_member must be at least 1".into());
        }
        if let Some(expected) = self.expected_members
            && expected < self.min_member
        {
            return Err(format!(
                "min_member {} can never be met: the job has only {expected} members",
                self.min_member
            ));
        }
        Ok(())
    }

    pub fn new(name: impl Into<String>, min_member: usize, members: Vec<Pod>) -> Self {
        Gang {
            name: name.into(),
            min_member,
            members,
            expected_members: None,
            timeout: None,
            priority: 0,
            topology: None,
            min_resources: None,
            may_preempt: true,
        }
    }

    /// A pod outside any gang is scheduled as a gang of one, named by the pod.
    pub fn single(pod: Pod) -> Self {
        let priority = pod.priority;
        Gang { priority, ..Gang::new(pod.key.clone(), 1, vec![pod]) }
    }

    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn with_expected_members(mut self, expected: usize) -> Self {
        self.expected_members = Some(expected);
        self
    }

    pub fn requiring(mut self, level: impl Into<String>) -> Self {
        self.topology = Some(TopologyRequirement { level: level.into(), required: true });
        self
    }

    pub fn preferring(mut self, level: impl Into<String>) -> Self {
        self.topology = Some(TopologyRequirement { level: level.into(), required: false });
        self
    }

    pub fn has_quorum(&self) -> bool {
        self.members.len() >= self.min_member
    }
}

/// Where one member went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPlacement {
    pub pod_key: String,
    pub node: NodeId,
    pub gpus: Vec<usize>,
}

/// How tight the chosen placement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementTier {
    SingleNode,
    /// Inside one domain of this level.
    Domain {
        level: usize,
        domain: DomainId,
    },
    /// Across several top-level domains.
    Cluster,
}

/// A gang that was placed: every member listed here is assumed in the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct GangPlacement {
    pub gang: String,
    pub members: Vec<MemberPlacement>,
    /// Members beyond `min_member` that found no room; they stay pending.
    pub left_pending: Vec<String>,
    pub tier: PlacementTier,
    /// Mean pairwise switch hops among the members (`Topology::placement_cost`).
    pub spread_hops: f64,
}

impl GangPlacement {
    pub fn nodes(&self) -> Vec<NodeId> {
        self.members.iter().map(|m| m.node).collect()
    }

    /// Gives every member's resources back (the job finished or was evicted).
    pub fn release(&self, snapshot: &mut Snapshot) -> Result<(), SnapshotError> {
        for member in &self.members {
            snapshot.forget(&member.pod_key)?;
        }
        Ok(())
    }
}

/// Why a gang was not placed. Nothing of it is held in the snapshot.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum GangUnschedulable {
    #[error("gang {gang}: invalid: {reason}")]
    Invalid { gang: String, reason: String },
    #[error("gang {gang}: waiting for members: {have}/{min_member} exist")]
    WaitingForMembers { gang: String, have: usize, min_member: usize },
    /// The cluster has less free than the gang's `minResources`: it was not planned.
    #[error("gang {gang}: minResources not free in the cluster: {}", shortfall.join("; "))]
    MinResources { gang: String, shortfall: Vec<String> },
    /// Not enough room anywhere, or not in one domain of the required level.
    #[error("{message}")]
    NoRoom { gang: String, placeable: usize, min_member: usize, message: String },
}

impl GangUnschedulable {
    pub fn gang(&self) -> &str {
        match self {
            GangUnschedulable::Invalid { gang, .. }
            | GangUnschedulable::WaitingForMembers { gang, .. }
            | GangUnschedulable::MinResources { gang, .. }
            | GangUnschedulable::NoRoom { gang, .. } => gang,
        }
    }
}
