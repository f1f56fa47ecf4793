//! Gang-aware preemption: which running units a waiting gang that fits nowhere may displace.
//!
//! - **Whole units only.** A victim is a running gang or a pod outside any gang, evicted whole: part of a
//!   gang is never a victim (it would leave the rest of its gang running uselessly).
//! - **Strictly lower priority.** A unit evicts only units below its own priority, so no two units can
//!   take turns evicting each other: every eviction moves room to a higher priority, and there are
//!   finitely many.
//! - **Lowest priority first.** Units are taken, lowest priority first and within a priority the youngest
//!   (the least work lost) and then the smallest first, until the gang fits; a higher level is touched only
//!   when all of the lower ones do not make room.
//! - **Fewest.** Of those, only units with a pod on the nodes the gang would take stay candidates, and
//!   each is spared, the most important and then the oldest and largest first, if the gang still fits
//!   without evicting it (kube-scheduler's "reprieve", done for the gang as a whole).
//! - **Nothing for nothing.** A gang that would not fit even with every lower-priority unit gone, whose
//!   `preemptionPolicy` is `Never`, or that fits already outside the room held for other gangs (it waits
//!   for a reservation or a nomination, not for room), evicts nothing. Room held for other gangs is not
//!   taken by preemption either.
//!
//! Pure: the plan is made on copies of the snapshot. The caller evicts the victims; the queue holds the
//! nodes for the preemptor meanwhile (its nomination, see `queue`).

use std::cmp::Reverse;
use std::time::Duration;

use thiserror::Error;

use super::plan::{PlanOptions, plan_gang_with, sizing_member};
use super::{Gang, GangPlacement};
use crate::core::{Node, NodeId, Pod, Snapshot};
use crate::framework::Profile;
use crate::topology::{Occupancy, Topology, copies_that_fit};

/// A running unit preemption may evict, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningUnit {
    /// The gang's name, or the pod's key for a pod outside any gang.
    pub name: String,
    pub priority: i32,
    /// Keys of its pods placed in the snapshot.
    pub pods: Vec<String>,
    /// When it started: the younger a unit, the less work its eviction throws away.
    pub started: Duration,
}

/// What a gang may evict to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    pub gang: String,
    /// Names of the units to evict, whole.
    pub victims: Vec<String>,
    /// The nodes the gang would take once they are gone: held for it (its nomination).
    pub nodes: Vec<NodeId>,
    /// Where each member would go (pod key, node): each pod's nominated node.
    pub members: Vec<(String, NodeId)>,
}

/// Why a gang evicts nothing.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum NoPreemption {
    #[error("gang {gang}: preemptionPolicy is Never")]
    Never { gang: String },
    #[error("gang {gang}: no running pods of lower priority to preempt")]
    NoLowerPriority { gang: String },
    #[error("gang {gang}: would not fit even with all {units} lower-priority units evicted; nothing was evicted")]
    WouldNotFit { gang: String, units: usize },
    /// It fits without evicting anything: what it waits for is room held for another gang, not room.
    #[error("gang {gang}: fits without evicting anything, outside the room held for other gangs")]
    NotNeeded { gang: String },
}

impl NoPreemption {
    /// The gang that evicts nothing.
    pub fn gang(&self) -> &str {
        match self {
            NoPreemption::Never { gang }
            | NoPreemption::NoLowerPriority { gang }
            | NoPreemption::WouldNotFit { gang, .. }
            | NoPreemption::NotNeeded { gang } => gang,
        }
    }
}

/// The victims that make room for `gang`, or why there are none. `running` lists every unit that may
/// be evicted (the caller leaves out what must not be, e.g. pods already terminating); `avoid` marks the
/// nodes held for other gangs (by node id, `true` = held), which preemption does not take either.
pub fn plan_preemption(
    profile: &Profile,
    snapshot: &Snapshot,
    topology: &Topology,
    gang: &Gang,
    running: &[RunningUnit],
    avoid: Option<&[bool]>,
) -> Result<Preemption, NoPreemption> {
    if !gang.may_preempt {
        return Err(NoPreemption::Never { gang: gang.name.clone() });
    }
    let mut lower: Vec<&RunningUnit> = running.iter().filter(|u| u.priority < gang.priority).collect();
    if lower.is_empty() {
        return Err(NoPreemption::NoLowerPriority { gang: gang.name.clone() });
    }
    // Lowest priority first; within a level the youngest, then the smallest, so little work is lost.
    lower.sort_by_key(|u| (u.priority, Reverse(u.started), u.pods.len(), u.name.clone()));
    let options = PlanOptions { avoid, ..PlanOptions::default() };
    let fits_without = |evicted: &[&RunningUnit]| fits_without(profile, snapshot, topology, gang, evicted, &options);
    if fits_without(&[]).is_some() {
        return Err(NoPreemption::NotNeeded { gang: gang.name.clone() });
    }
    let Some((evicted, members)) = first_room(profile, snapshot, topology, gang, &lower, &options) else {
        return Err(NoPreemption::WouldNotFit { gang: gang.name.clone(), units: lower.len() });
    };
    let on_nodes: Vec<&RunningUnit> = evicted
        .iter()
        .copied()
        .filter(|u| {
            u.pods.iter().any(|p| snapshot.placement(p).is_some_and(|pl| members.iter().any(|m| m.1 == pl.node)))
        })
        .collect();
    // Units elsewhere are not needed for that placement, but a planner may prefer other nodes once they
    // stay: confirm, and keep every unit evicted so far if the narrower set does not do.
    let (mut victims, mut members) = match fits_without(&on_nodes) {
        Some(narrow) => (on_nodes, narrow),
        None => (evicted, members),
    };
    // Reprieve: the most important, then the oldest and the largest (most work lost), are spared first.
    victims.sort_by_key(|u| (Reverse(u.priority), u.started, Reverse(u.pods.len()), u.name.clone()));
    let mut room = Room::without(snapshot, gang, &victims);
    let mut index = 0;
    while index < victims.len() {
        if room.needs(snapshot, victims[index]) {
            index += 1;
            continue;
        }
        let mut without = victims.clone();
        without.remove(index);
        match fits_without(&without) {
            Some(fewer) => {
                victims = without;
                members = fewer;
                room = Room::without(snapshot, gang, &victims);
            }
            None => index += 1,
        }
    }
    let mut victims: Vec<String> = victims.into_iter().map(|u| u.name.clone()).collect();
    victims.sort();
    let nodes = sorted_nodes(members.iter().map(|m| m.1).collect());
    Ok(Preemption { gang: gang.name.clone(), victims, nodes, members })
}

/// Evicts `lower` in order on a copy of `snapshot` until `gang` fits: the units evicted by then and the
/// nodes it would take. Planning is tried only once the nodes could hold `min_member` copies of the gang's
/// largest member by their free resources (the planner's own estimate, kept per node as pods go), so
/// evictions that free only parts of nodes cost no planning.
fn first_room<'a>(
    profile: &Profile,
    snapshot: &Snapshot,
    topology: &Topology,
    gang: &Gang,
    lower: &[&'a RunningUnit],
    options: &PlanOptions<'_>,
) -> Option<(Vec<&'a RunningUnit>, Assignments)> {
    let sizing = sizing_member(&gang.members);
    let mut work = snapshot.clone();
    let mut copies: Vec<u64> = work.nodes().iter().map(|n| copies_that_fit(n, sizing, Occupancy::Current)).collect();
    let mut total = copies.iter().fold(0u64, |sum, &c| sum.saturating_add(c));
    for (count, unit) in lower.iter().enumerate() {
        for pod in &unit.pods {
            // A pod the snapshot does not hold (already gone) frees nothing.
            if let Ok(placement) = work.forget(pod) {
                let n = placement.node;
                let now = copies_that_fit(&work.nodes()[n], sizing, Occupancy::Current);
                total = total.saturating_sub(copies[n]).saturating_add(now);
                copies[n] = now;
            }
        }
        if total < gang.min_member as u64 {
            continue;
        }
        if let Ok(placement) = plan_gang_with(profile, &mut work, gang, topology, options) {
            placement.release(&mut work).expect("a placement just made can be released");
            return Some((lower[..=count].to_vec(), assignments(&placement)));
        }
    }
    None
}

/// The free room once the victims are gone, counted the planner's way (copies of the gang's largest member
/// per node), so a victim the gang plainly needs is known without a plan.
struct Room<'a> {
    base: Snapshot,
    sizing: &'a Pod,
    min_member: u64,
    copies: Vec<u64>,
    total: u64,
}

impl<'a> Room<'a> {
    fn without(snapshot: &Snapshot, gang: &'a Gang, victims: &[&RunningUnit]) -> Room<'a> {
        let mut base = snapshot.clone();
        for pod in victims.iter().flat_map(|u| &u.pods) {
            let _ = base.forget(pod);
        }
        let sizing = sizing_member(&gang.members);
        let copies: Vec<u64> = base.nodes().iter().map(|n| copies_that_fit(n, sizing, Occupancy::Current)).collect();
        let total = copies.iter().fold(0u64, |sum, &c| sum.saturating_add(c));
        Room { base, sizing, min_member: gang.min_member as u64, copies, total }
    }

    /// Whether with `unit`'s pods back in place fewer than `min_member` copies would fit anywhere: then
    /// the gang cannot run without evicting it. `false` means "perhaps", to be planned. (MIG slices are
    /// not put back here: a unit holding any is always planned.)
    fn needs(&self, snapshot: &Snapshot, unit: &RunningUnit) -> bool {
        let mut nodes: Vec<(NodeId, Node)> = Vec::new();
        for placement in unit.pods.iter().filter_map(|p| snapshot.placement(p)) {
            if !placement.gpus.mig.is_empty() {
                return false;
            }
            let at = match nodes.iter().position(|(n, _)| *n == placement.node) {
                Some(at) => at,
                None => {
                    nodes.push((placement.node, self.base.nodes()[placement.node].clone()));
                    nodes.len() - 1
                }
            };
            let node = &mut nodes[at].1;
            let Ok(requested) = node.requested.checked_add(&placement.requests) else { return false };
            node.requested = requested;
            for &(i, milli) in &placement.gpus.devices {
                node.gpus[i].used_milli += milli;
            }
        }
        let total = nodes.iter().fold(self.total, |total, (n, node)| {
            total.saturating_sub(self.copies[*n]).saturating_add(copies_that_fit(node, self.sizing, Occupancy::Current))
        });
        total < self.min_member
    }
}

/// Where `gang`'s members would go on a copy of `snapshot` without `evicted`'s pods, if it fits there.
fn fits_without(
    profile: &Profile,
    snapshot: &Snapshot,
    topology: &Topology,
    gang: &Gang,
    evicted: &[&RunningUnit],
    options: &PlanOptions<'_>,
) -> Option<Assignments> {
    let mut without = snapshot.clone();
    for pod in evicted.iter().flat_map(|u| &u.pods) {
        // A pod the snapshot does not hold (already gone) frees nothing.
        let _ = without.forget(pod);
    }
    Some(assignments(&plan_gang_with(profile, &mut without, gang, topology, options).ok()?))
}

/// Where each member of a gang would go: (pod key, node).
type Assignments = Vec<(String, NodeId)>;

fn assignments(placement: &GangPlacement) -> Assignments {
    placement.members.iter().map(|m| (m.pod_key.clone(), m.node)).collect()
}

fn sorted_nodes(mut nodes: Vec<NodeId>) -> Vec<NodeId> {
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}
