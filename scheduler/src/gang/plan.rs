//! A gang decided as one transaction on the snapshot (Volcano's "statement"): members are assumed one by
//! one into the domains the plan chose, and if any member does not fit, every member assumed so far is
//! forgotten again, so a gang that cannot be placed holds nothing.
//!
//! Assume-and-forget on the live snapshot was chosen over planning on a clone: cloning a 5000-node
//! snapshot (labels, GPU lists) costs more than the whole decision (see `bench/benches/gang.rs`), while
//! a rollback touches only the few nodes a failed attempt used.
//!
//! Choosing domains:
//! 1. Count how many copies of the gang's largest member each node holds (`copies_that_fit`, on nodes
//!    every filter accepts), and sum per domain.
//! 2. Try the tightest tier first: one node, then one domain of each level from the deepest (rack) to the
//!    loosest (spine), then the whole cluster. At a level, the best fit wins: the domain with the least
//!    capacity that still holds the gang, so large empty domains stay whole for large gangs.
//! 3. Inside the chosen domain, members are split over as few child domains as possible, evenly
//!    (`split_members`), recursively down to the deepest group level, where the framework (filters,
//!    scores, GPU picker) picks each member's node among that domain's nodes.
//!
//! A gang with `min_resources` is planned only when the cluster has that much free (`min_resources`).
//!
//! Try all members first, then as many as there is room for, then `min_member`. A required level stops
//! before the cluster tier; a preferred level changes nothing in that order (every gang is already
//! placed as tightly as it fits) but is validated like a required one. Whether a gang should rather wait for a
//! tighter domain than start spread is the queue's call (`queue`, with run-time hints).

use rustc_hash::FxHashSet;

use super::{Gang, GangPlacement, GangUnschedulable, MemberPlacement, PlacementTier};
use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::cycle::feasible_nodes;
use crate::framework::cycle::{choose, feasible_among};
use crate::framework::{FailureReasons, Profile};
use crate::topology::{DomainId, Occupancy, Topology, copies_that_fit, split_members};

/// Knobs of one planning call.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// Nodes this gang must not use, indexed by node id (`true` = avoid): a reservation held for a gang
    /// that has waited long. Shorter than the node list means the rest are allowed.
    pub avoid: Option<&'a [bool]>,
    /// How many domains of one level are tried (best fit first) before a looser level, for when the
    /// capacity estimate was optimistic (e.g. a filter that rejects only some members).
    pub domains_tried_per_level: usize,
}

impl Default for PlanOptions<'_> {
    fn default() -> Self {
        PlanOptions { avoid: None, domains_tried_per_level: 3 }
    }
}

/// Places `gang` on `snapshot` or leaves the snapshot as it was. On `Ok`, every member listed in the
/// placement is assumed in the snapshot.
pub fn plan_gang(
    profile: &Profile,
    snapshot: &mut Snapshot,
    gang: &Gang,
    topology: &Topology,
) -> Result<GangPlacement, GangUnschedulable> {
    plan_gang_with(profile, snapshot, gang, topology, &PlanOptions::default())
}

pub fn plan_gang_with(
    profile: &Profile,
    snapshot: &mut Snapshot,
    gang: &Gang,
    topology: &Topology,
    options: &PlanOptions<'_>,
) -> Result<GangPlacement, GangUnschedulable> {
    let requirement = validate(gang, snapshot, topology)?;
    if let Some(min) = &gang.min_resources {
        let shortfall = min.shortfall(snapshot);
        if !shortfall.is_empty() {
            return Err(GangUnschedulable::MinResources { gang: gang.name.clone(), shortfall });
        }
    }
    let sizing = sizing_member(&gang.members);
    let (feasible, filter_reasons) = feasible_nodes(profile, snapshot, sizing);
    let mut node_copies = vec![0u64; snapshot.nodes().len()];
    for id in feasible {
        if !options.avoid.is_some_and(|avoid| avoid.get(id).copied().unwrap_or(false)) {
            node_copies[id] = copies_that_fit(&snapshot.nodes()[id], sizing, Occupancy::Current);
        }
    }
    let domain_copies = topology.sum_by_domain(&node_copies);
    let total = node_copies.iter().copied().fold(0u64, u64::saturating_add);
    let planner = Planner { profile, topology, gang, requirement, node_copies, domain_copies, options };
    let wanted = gang.members.len();
    let placeable = wanted.min(usize::try_from(total).unwrap_or(usize::MAX));
    let mut last_attempt_failure = None;
    if placeable >= gang.min_member {
        let mut targets = vec![wanted, placeable, gang.min_member];
        targets.dedup();
        for target in targets {
            match planner.place(snapshot, target) {
                Ok(placement) => return Ok(placement),
                Err(failure) => last_attempt_failure = failure.or(last_attempt_failure),
            }
        }
    }
    Err(planner.no_room(placeable, &filter_reasons, last_attempt_failure))
}

/// The tightest level a requirement allows, and whether looser placement is forbidden.
#[derive(Debug, Clone, Copy)]
struct LevelRequirement {
    level: usize,
    required: bool,
}

fn validate(
    gang: &Gang,
    snapshot: &Snapshot,
    topology: &Topology,
) -> Result<Option<LevelRequirement>, GangUnschedulable> {
    let invalid = |reason: String| GangUnschedulable::Invalid { gang: gang.name.clone(), reason };
    gang.validate().map_err(invalid)?;
    if topology.node_count() != snapshot.nodes().len() {
        return Err(invalid(format!(
            "the topology covers {} nodes but the snapshot has {}; rebuild it when nodes change",
            topology.node_count(),
            snapshot.nodes().len()
        )));
    }
    let requirement = match &gang.topology {
        None => None,
        Some(req) => {
            let level = topology.level_index(&req.level).map_err(|e| invalid(e.to_string()))?;
            Some(LevelRequirement { level, required: req.required })
        }
    };
    let mut keys = FxHashSet::default();
    for pod in &gang.members {
        pod.validate().map_err(invalid)?;
        if !keys.insert(pod.key.as_str()) {
            return Err(invalid(format!("pod {} is listed twice", pod.key)));
        }
        if snapshot.placement(&pod.key).is_some() {
            return Err(invalid(format!("pod {} is already placed", pod.key)));
        }
    }
    if !gang.has_quorum() {
        return Err(GangUnschedulable::WaitingForMembers {
            gang: gang.name.clone(),
            have: gang.members.len(),
            min_member: gang.min_member,
        });
    }
    Ok(requirement)
}

/// The member that asks most (GPU first, then CPU, then memory). Domains are sized by copies of it, a
/// safe over-estimate of what every member needs; a gang with several shapes is then checked for real
/// when each member is placed.
pub(crate) fn sizing_member(members: &[Pod]) -> &Pod {
    members
        .iter()
        .max_by_key(|p| (p.gpu.total_milli(), p.requests.cpu_milli, p.requests.memory_bytes))
        .expect("validated: a gang with quorum has at least one member")
}

/// Whether two pods pass the same filters on the same node.
fn same_shape(a: &Pod, b: &Pod) -> bool {
    a.requests == b.requests
        && a.gpu == b.gpu
        && a.node_selector == b.node_selector
        && a.affinity == b.affinity
        && a.tolerations == b.tolerations
}

/// A group of nodes that takes `quota` members, chosen by the framework among `nodes`.
#[derive(Debug, Clone)]
struct Leaf {
    nodes: Vec<NodeId>,
    quota: usize,
    /// All of the quota goes on the node the first member lands on.
    single_node: bool,
}

#[derive(Debug, Clone, Copy)]
enum Scope {
    Cluster,
    Domain(DomainId),
}

struct Planner<'a> {
    profile: &'a Profile,
    topology: &'a Topology,
    gang: &'a Gang,
    requirement: Option<LevelRequirement>,
    node_copies: Vec<u64>,
    domain_copies: Vec<u64>,
    options: &'a PlanOptions<'a>,
}

impl Planner<'_> {
    /// The first `target` members, placed as tightly as they fit. `Err(Some(reason))` when a planned
    /// attempt failed while placing a member; `Err(None)` when no tier had room on paper.
    fn place(&self, snapshot: &mut Snapshot, target: usize) -> Result<GangPlacement, Option<String>> {
        let mut failure = None;
        let big_nodes: Vec<NodeId> =
            (0..self.node_copies.len()).filter(|&n| self.node_copies[n] >= target as u64).collect();
        if !big_nodes.is_empty() {
            let leaf = Leaf { nodes: big_nodes, quota: target, single_node: true };
            match self.attempt(snapshot, &[leaf], target) {
                Ok(members) => {
                    return Ok(self.placement(members, target, PlacementTier::SingleNode));
                }
                Err(reason) => failure = Some(reason),
            }
        }
        // Only a required level bounds how loose the placement may get.
        let loosest = self.requirement.filter(|r| r.required).map_or(0, |r| r.level);
        for level in (loosest..self.topology.group_levels()).rev() {
            for domain in self.best_fitting(self.topology.domains_at(level).iter().copied(), target) {
                let Some(leaves) = self.split(Scope::Domain(domain), target) else {
                    continue;
                };
                match self.attempt(snapshot, &leaves, target) {
                    Ok(members) => {
                        return Ok(self.placement(members, target, PlacementTier::Domain { level, domain }));
                    }
                    Err(reason) => failure = Some(reason),
                }
            }
        }
        if self.requirement.is_some_and(|r| r.required) {
            return Err(failure);
        }
        if let Some(leaves) = self.split(Scope::Cluster, target) {
            match self.attempt(snapshot, &leaves, target) {
                Ok(members) => return Ok(self.placement(members, target, PlacementTier::Cluster)),
                Err(reason) => failure = Some(reason),
            }
        }
        Err(failure)
    }

    /// Known domains among `domains` that hold `target`, least capacity first, at most the configured
    /// number of them.
    fn best_fitting(&self, domains: impl Iterator<Item = DomainId>, target: usize) -> Vec<DomainId> {
        let mut fitting: Vec<DomainId> =
            domains.filter(|&d| self.topology.domain(d).known && self.domain_copies[d] >= target as u64).collect();
        fitting.sort_by_key(|&d| (self.domain_copies[d], d));
        fitting.truncate(self.options.domains_tried_per_level.max(1));
        fitting
    }

    fn is_leaf(&self, scope: Scope) -> bool {
        let groups = self.topology.group_levels();
        match scope {
            Scope::Cluster => groups == 0,
            Scope::Domain(d) => self.topology.domain(d).level + 1 >= groups,
        }
    }

    /// `members` spread over `scope`'s children: as few as possible, evenly, each child again as tight
    /// as its share fits. `None` when the children cannot hold them.
    fn split(&self, scope: Scope, members: usize) -> Option<Vec<Leaf>> {
        if self.is_leaf(scope) {
            let nodes: Vec<NodeId> = match scope {
                Scope::Cluster => (0..self.node_copies.len()).collect(),
                Scope::Domain(d) => self.topology.domain(d).nodes.clone(),
            };
            let nodes: Vec<NodeId> = nodes.into_iter().filter(|&n| self.node_copies[n] > 0).collect();
            return Some(vec![Leaf { nodes, quota: members, single_node: false }]);
        }
        let children: &[DomainId] = match scope {
            Scope::Cluster => self.topology.domains_at(0),
            Scope::Domain(d) => &self.topology.domain(d).children,
        };
        let capacities: Vec<(DomainId, u64)> = children.iter().map(|&c| (c, self.domain_copies[c])).collect();
        let shares = split_members(&capacities, members as u64)?;
        let mut leaves = Vec::new();
        for (child, share) in shares {
            leaves.extend(self.tightest_within(child, share as usize)?);
        }
        Some(leaves)
    }

    /// `members` inside `domain`: in its tightest sub-domain that holds them all, else split over its
    /// children.
    fn tightest_within(&self, domain: DomainId, members: usize) -> Option<Vec<Leaf>> {
        let below = self.topology.domain(domain).level + 1;
        for level in (below..self.topology.group_levels()).rev() {
            let inside =
                self.topology.domains_at(level).iter().copied().filter(|&d| self.topology.is_within(d, domain));
            if let Some(&best) = self.best_fitting(inside, members).first() {
                return self.split(Scope::Domain(best), members);
            }
        }
        self.split(Scope::Domain(domain), members)
    }

    /// Assumes the first `target` members into `leaves`; on any failure forgets them all again.
    fn attempt(&self, snapshot: &mut Snapshot, leaves: &[Leaf], target: usize) -> Result<Vec<MemberPlacement>, String> {
        let mut placed: Vec<MemberPlacement> = Vec::with_capacity(target);
        let mut members = self.gang.members.iter().take(target);
        for leaf in leaves {
            if let Err(reason) = self.fill_leaf(snapshot, leaf, &mut members, &mut placed) {
                for member in placed.iter().rev() {
                    snapshot.forget(&member.pod_key).expect("a member assumed in this attempt can be forgotten");
                }
                return Err(reason);
            }
        }
        Ok(placed)
    }

    fn fill_leaf<'p>(
        &self,
        snapshot: &mut Snapshot,
        leaf: &Leaf,
        members: &mut impl Iterator<Item = &'p Pod>,
        placed: &mut Vec<MemberPlacement>,
    ) -> Result<(), String> {
        let mut candidates = leaf.nodes.clone();
        // Filters see only (pod, node), so after an assume only the node that changed needs filtering
        // again for a member shaped like the previous one.
        let mut feasible: Vec<NodeId> = Vec::new();
        let mut previous: Option<(&Pod, NodeId)> = None;
        for _ in 0..leaf.quota {
            let Some(pod) = members.next() else {
                return Ok(());
            };
            match previous {
                Some((prev, changed)) if same_shape(prev, pod) && !leaf.single_node => {
                    let (still, _) = feasible_among(self.profile, snapshot, pod, [changed].into_iter());
                    if still.is_empty() {
                        feasible.retain(|&n| n != changed);
                    }
                }
                _ => {
                    let (now_feasible, reasons) =
                        feasible_among(self.profile, snapshot, pod, candidates.iter().copied());
                    if now_feasible.is_empty() {
                        return Err(format!("pod {}: {reasons}", pod.key));
                    }
                    feasible = now_feasible;
                }
            }
            if feasible.is_empty() {
                return Err(format!("pod {}: no node left in its share of the domain", pod.key));
            }
            let choice = choose(self.profile, snapshot, pod, &feasible)
                .ok_or_else(|| format!("pod {}: no GPUs fit on the chosen node", pod.key))?;
            snapshot.assume_decision(pod, &choice).map_err(|e| e.to_string())?;
            placed.push(MemberPlacement { pod_key: pod.key.clone(), node: choice.node, gpus: choice.gpus });
            if leaf.single_node {
                candidates = vec![choice.node];
            }
            previous = Some((pod, choice.node));
        }
        Ok(())
    }

    fn placement(&self, members: Vec<MemberPlacement>, target: usize, tier: PlacementTier) -> GangPlacement {
        let nodes: Vec<NodeId> = members.iter().map(|m| m.node).collect();
        GangPlacement {
            gang: self.gang.name.clone(),
            spread_hops: self.topology.placement_cost(&nodes),
            members,
            left_pending: self.gang.members[target..].iter().map(|p| p.key.clone()).collect(),
            tier,
        }
    }

    /// `gang g1: 6/8 members placeable (min_member 8); 0/40 nodes can hold 8 pods; 0/12
    /// network.mlsched.io/rack domains can hold 8 pods (largest holds 6); ...`
    fn no_room(
        &self,
        placeable: usize,
        filter_reasons: &FailureReasons,
        attempt_failure: Option<String>,
    ) -> GangUnschedulable {
        let gang = self.gang;
        let need = gang.min_member as u64;
        let mut parts = vec![format!(
            "gang {}: {placeable}/{} members placeable (min_member {})",
            gang.name,
            gang.members.len(),
            gang.min_member
        )];
        let holding = self.node_copies.iter().filter(|&&c| c >= need).count();
        parts.push(format!("{holding}/{} nodes can hold {need} pods", self.node_copies.len()));
        for level in (0..self.topology.group_levels()).rev() {
            let known: Vec<DomainId> =
                self.topology.domains_at(level).iter().copied().filter(|&d| self.topology.domain(d).known).collect();
            let fitting = known.iter().filter(|&&d| self.domain_copies[d] >= need).count();
            let largest = known.iter().map(|&d| self.domain_copies[d]).max().unwrap_or(0);
            let label = &self.topology.levels()[level].label;
            parts.push(format!(
                "{fitting}/{} {label} domains can hold {need} pods (largest holds {largest})",
                known.len()
            ));
        }
        if let Some(req) = self.requirement.filter(|r| r.required) {
            parts
                .push(format!("required level {} allows no looser placement", self.topology.levels()[req.level].label));
        }
        if !filter_reasons.counts.is_empty() {
            parts.push(filter_reasons.to_string());
        }
        if let Some(failure) = attempt_failure {
            parts.push(format!("last attempt failed at {failure}"));
        }
        GangUnschedulable::NoRoom {
            gang: gang.name.clone(),
            placeable,
            min_member: gang.min_member,
            message: parts.join("; "),
        }
    }
}

/// The room held for a gang that has waited too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Nodes no later gang may use (unless it is gone before the gang can start, see `outlook`).
    pub nodes: Vec<NodeId>,
    /// Nodes whose pods must end for the gang to start: the reserved ones, or for a gang that may span
    /// the cluster every node, since room freed anywhere lets it start.
    pub waits_on: Vec<NodeId>,
    /// By node id: whether the filters accept the gang's sizing member on the node once it is empty.
    pub eligible: Vec<bool>,
}

/// The nodes to keep free for `gang` once it has waited too long: a single node that could hold
/// `min_member` if it were empty (the one that holds most now); else, for a gang with a required level,
/// the tightest domain within that level that could, choosing the one that holds most now; else, for a
/// gang that may span the cluster, the nodes with free room for a member now, fullest-fitting first,
/// until they hold `min_member`. `None` when nothing could ever hold it, or the gang is invalid.
pub fn reservation_for(
    profile: &Profile,
    snapshot: &Snapshot,
    gang: &Gang,
    topology: &Topology,
) -> Option<Vec<NodeId>> {
    reservation(profile, snapshot, gang, topology).map(|r| r.nodes)
}

/// By node id: whether every filter accepts `pod` on the node as it will be once its pods have ended
/// (filters judge current occupancy too).
pub(crate) fn eligible_when_empty(profile: &Profile, snapshot: &Snapshot, pod: &Pod) -> Vec<bool> {
    snapshot
        .nodes()
        .iter()
        .map(|node| {
            let mut empty = node.clone();
            empty.requested = Default::default();
            empty.gpus.iter_mut().for_each(|g| g.used_milli = 0);
            profile.filters.iter().all(|f| f.filter(pod, &empty).is_ok())
        })
        .collect()
}

/// [`reservation_for`], with what the queue needs to estimate when the gang can start.
pub fn reservation(profile: &Profile, snapshot: &Snapshot, gang: &Gang, topology: &Topology) -> Option<Reservation> {
    let requirement = validate(gang, snapshot, topology).ok()?;
    let sizing = sizing_member(&gang.members);
    let need = gang.min_member as u64;
    let mut when_empty = vec![0u64; snapshot.nodes().len()];
    let mut now = vec![0u64; snapshot.nodes().len()];
    let eligible = eligible_when_empty(profile, snapshot, sizing);
    for (id, node) in snapshot.nodes().iter().enumerate() {
        if eligible[id] {
            when_empty[id] = copies_that_fit(node, sizing, Occupancy::Empty);
            now[id] = copies_that_fit(node, sizing, Occupancy::Current);
        }
    }
    let only = |nodes: Vec<NodeId>, eligible: Vec<bool>| Reservation { waits_on: nodes.clone(), nodes, eligible };
    let best_node =
        (0..when_empty.len()).filter(|&n| when_empty[n] >= need).max_by_key(|&n| (now[n], std::cmp::Reverse(n)));
    if let Some(node) = best_node {
        return Some(only(vec![node], eligible));
    }
    let Some(required) = requirement.filter(|r| r.required) else {
        // A gang that may span the cluster starts as soon as enough copies are free anywhere, so it
        // holds the capacity that is free now (fullest-fitting nodes first, until it has enough) and
        // waits for the rest to free up wherever that happens. Reserving a whole rack instead would tie
        // its start to the slowest jobs of that rack.
        let cluster_holds = when_empty.iter().copied().fold(0u64, u64::saturating_add) >= need;
        if !cluster_holds {
            return None;
        }
        let mut by_free: Vec<NodeId> = (0..now.len()).filter(|&n| now[n] > 0).collect();
        by_free.sort_by_key(|&n| (std::cmp::Reverse(now[n]), n));
        let mut held = 0u64;
        let hold: Vec<NodeId> = by_free
            .into_iter()
            .take_while(|&n| {
                let more = held < need;
                held += now[n];
                more
            })
            .collect();
        return Some(Reservation { nodes: hold, waits_on: (0..now.len()).collect(), eligible });
    };
    let empty_by_domain = topology.sum_by_domain(&when_empty);
    let now_by_domain = topology.sum_by_domain(&now);
    let loosest = required.level;
    for level in (loosest..topology.group_levels()).rev() {
        let best = topology
            .domains_at(level)
            .iter()
            .copied()
            .filter(|&d| topology.domain(d).known && empty_by_domain[d] >= need)
            .max_by_key(|&d| (now_by_domain[d], std::cmp::Reverse(d)));
        if let Some(domain) = best {
            return Some(only(topology.domain(domain).nodes.clone(), eligible));
        }
    }
    None
}
