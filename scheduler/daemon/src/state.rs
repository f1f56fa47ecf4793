//! The scheduler's picture of the cluster, kept up to date from watch events, and the scheduling pass
//! run on it. Pure: watch events come in as translated objects, decisions go out as plain data that the
//! async shell turns into API calls.
//!
//! Bound pods and in-flight assumptions are applied to the snapshot incrementally (`assume`/`forget`).
//! The core snapshot has no node update or removal, so a changed or deleted node marks it stale and it
//! is rebuilt from the stores here before the next pass (no API re-list is involved); added nodes are
//! appended in place. Node status heartbeats that do not change the translated node are ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use mlsched::core::gpu::best_fit_gpus;
use mlsched::core::{Node, Pod, Snapshot};
use mlsched::framework::Profile;
use mlsched::framework::cycle::feasible_nodes;
use mlsched::gang::{Gang, GangQueue, QueueConfig, TopologyRequirement};
use mlsched::topology::Topology;
use tracing::{debug, warn};

use crate::error::{BindError, ErrorKind};
use crate::keys::{POD_GROUP_LABEL, TOPOLOGY_PREFERRED_ANNOTATION, TOPOLOGY_REQUIRED_ANNOTATION};
use crate::queue::{SchedulingQueue, UnitKey};
use crate::translate::{Invalid, PodInfo, PodRef};

/// What the scheduler knows of a PodGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodGroupInfo {
    pub min_member: usize,
    pub timeout: Option<Duration>,
    pub topology: Option<TopologyRequirement>,
}

#[derive(Debug, Clone)]
struct BoundPod {
    pod: Pod,
    pod_ref: PodRef,
    node: String,
    gpu_index: Option<Vec<usize>>,
    gang: Option<String>,
    labels: BTreeMap<String, String>,
    /// Ours, but not bound by a decision of this process: by a previous leader, which may have died
    /// before writing the pod's `Scheduled` Event.
    bound_by_another_instance: bool,
}

/// A pod the scheduler tracks, as the Placement API reports it.
#[derive(Debug, Clone, Copy)]
pub struct KnownPod<'a> {
    /// `namespace/name`.
    pub key: &'a str,
    /// Bound, or assumed while its bind is in flight; `None` while it waits to be scheduled.
    pub node: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
    pub pod: &'a Pod,
}

#[derive(Debug, Clone)]
pub struct PendingPod {
    pub info: PodInfo,
    pub profile: usize,
    pub unit: UnitKey,
}

/// One member's bind, as handed to the binder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberBind {
    pub pod: PodRef,
    pub node: String,
    pub gpus: Vec<usize>,
}

/// A unit decided in a pass: bind every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPlan {
    pub unit: UnitKey,
    pub members: Vec<MemberBind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindState {
    InFlight,
    Bound,
    /// Refused because the pod is bound already (409) or gone (404): not ours to bind any more.
    Dropped,
}

/// A gang whose `PodGroup` is named by its members but does not exist (yet): the gang waits for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PodGroup {0} does not exist (named by label {label}); waiting until it is created", label = POD_GROUP_LABEL)]
pub struct PodGroupMissing(pub String);

#[derive(Debug, Clone)]
struct InFlightUnit {
    members: HashMap<String, (MemberBind, BindState, u32)>,
}

/// A gang's state for its PodGroup status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GangReport {
    pub gang: String,
    pub pod_group: bool,
    pub phase: &'static str,
    pub scheduled: usize,
    pub reason: &'static str,
    pub message: String,
}

/// What one pass decided.
#[derive(Debug, Default)]
pub struct PassResult {
    pub binds: Vec<BindPlan>,
    /// Pods to mark `PodScheduled=False` + `FailedScheduling`, with the reason and message.
    pub unschedulable: Vec<(PodRef, &'static str, String)>,
    pub gangs: Vec<GangReport>,
    pub scheduled_pods: usize,
    pub unschedulable_pods: usize,
    pub error_pods: usize,
    /// Ready units were left for the next pass ([`UNITS_PER_PASS`]).
    pub more: bool,
}

/// Units one pass decides at most. Binds go out when the pass ends; a pass over a backlog of 10,000 pods on
/// 5,000 nodes took 14 s before the first bind, while bounded passes let the binds of one pass go out
/// while the next is decided.
pub const UNITS_PER_PASS: usize = 256;

/// What follows from a bind result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindFollowUp {
    /// Nothing more (a success while others are outstanding, or a stale result).
    None,
    /// The pod is bound: report `Scheduled`.
    Bound {
        pod: PodRef,
        node: String,
        gang_done: Option<GangReport>,
        /// Members of the gang just completed that were bound before, not by this process (by a leader
        /// that may have died before writing their `Scheduled` Events), with their nodes.
        bound_earlier: Vec<(PodRef, String)>,
    },
    /// Try this member again on the same node.
    Retry(MemberBind, u32),
    /// The API server refused the bind because the pod is bound already (409: by an earlier attempt whose
    /// answer was lost, or by someone else) or gone (404). Its assumption was released; the bind is not
    /// retried and nothing is reported: the watch shows where the pod runs, or that it is gone.
    Dropped { pod: PodRef, kind: ErrorKind },
    /// Given up: the assumptions were released and the unit requeued.
    GaveUp { pods: Vec<PodRef>, message: String, gang: Option<GangReport> },
}

pub struct ClusterState {
    levels: Vec<String>,
    nodes: BTreeMap<String, Node>,
    bound: HashMap<String, BoundPod>,
    pending: HashMap<String, PendingPod>,
    unit_sizes: HashMap<UnitKey, usize>,
    pod_groups: HashMap<String, PodGroupInfo>,
    /// Pods assumed by a decision whose bound state the watch has not shown yet: key → (node, gpus).
    assumed: HashMap<String, (String, Vec<usize>)>,
    in_flight: HashMap<UnitKey, InFlightUnit>,
    snapshot: Snapshot,
    topology: Topology,
    snapshot_stale: bool,
    topology_stale: bool,
    scheduler_names: Vec<String>,
    bind_retries: u32,
    /// The unit that held a reservation in the last pass (see `run_pass`).
    reserving: Option<UnitKey>,
    /// Keys of our pods already reported as arrivals, so a pod's updates are not counted again.
    observed: HashSet<String>,
    /// Pods of ours seen for the first time, with their profile, for the policies that learn the shapes
    /// that arrive (`mlsched-online`): the only history a live scheduler has.
    arrivals: Vec<(usize, Pod)>,
    /// Pending gang members told why their gang waits (see `run_pass`), with what they were told.
    waiting_told: HashMap<String, WaitingFor>,
}

/// Why a gang waits, as its members were told: they are told again only when this changes, not each time
/// a member arrives (a message per member per arrival is quadratic in the gang's size, in status patches
/// and in Events).
#[derive(Debug, Clone, PartialEq, Eq)]
enum WaitingFor {
    PodGroup,
    Members { min: usize },
}

/// A gang sent to sleep by a pass: until when (its timeout), why, the message, its pending members.
type Waiting = (UnitKey, Option<Duration>, WaitingFor, String, Vec<PodRef>);

impl ClusterState {
    pub fn new(levels: Vec<String>, scheduler_names: Vec<String>, bind_retries: u32) -> Self {
        let labels: Vec<&str> = levels.iter().map(String::as_str).collect();
        let topology = Topology::from_labels(&labels, &[]).expect("levels are validated with the config");
        ClusterState {
            levels,
            nodes: BTreeMap::new(),
            bound: HashMap::new(),
            pending: HashMap::new(),
            unit_sizes: HashMap::new(),
            pod_groups: HashMap::new(),
            assumed: HashMap::new(),
            in_flight: HashMap::new(),
            snapshot: Snapshot::default(),
            topology,
            snapshot_stale: false,
            topology_stale: false,
            scheduler_names,
            bind_retries,
            reserving: None,
            observed: HashSet::new(),
            arrivals: Vec::new(),
            waiting_told: HashMap::new(),
        }
    }

    /// Our pods seen for the first time since the last call, with the index of the profile serving them.
    pub fn take_arrivals(&mut self) -> Vec<(usize, Pod)> {
        std::mem::take(&mut self.arrivals)
    }

    pub fn snapshot(&mut self) -> &Snapshot {
        self.refresh();
        &self.snapshot
    }

    pub fn pending_pods(&self) -> usize {
        self.pending.len()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn pending(&self, key: &str) -> Option<&PendingPod> {
        self.pending.get(key)
    }

    pub fn is_ours(&self, scheduler_name: &str) -> bool {
        self.scheduler_names.iter().any(|n| n == scheduler_name)
    }

    // ----- nodes -----

    /// Returns whether the change could help waiting pods.
    pub fn apply_node(&mut self, node: Node) -> bool {
        match self.nodes.get(&node.name) {
            Some(old) if *old == node => false,
            Some(_) => {
                self.nodes.insert(node.name.clone(), node);
                self.snapshot_stale = true;
                self.topology_stale = true;
                true
            }
            None => {
                let name = node.name.clone();
                if !self.snapshot_stale {
                    match self.snapshot.add_node(node.clone()) {
                        Ok(_) => {
                            let on_it: Vec<String> =
                                self.bound.iter().filter(|(_, b)| b.node == name).map(|(k, _)| k.clone()).collect();
                            for key in on_it {
                                self.place_bound(&key);
                            }
                        }
                        Err(_) => self.snapshot_stale = true,
                    }
                }
                self.nodes.insert(name, node);
                self.topology_stale = true;
                true
            }
        }
    }

    pub fn delete_node(&mut self, name: &str) {
        if self.nodes.remove(name).is_some() {
            self.snapshot_stale = true;
            self.topology_stale = true;
        }
    }

    /// Every pod key the state holds (bound, pending), for reconciling after a watch re-list.
    pub fn pod_keys(&self) -> Vec<String> {
        self.bound.keys().chain(self.pending.keys()).cloned().collect()
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    pub fn pod_group_keys(&self) -> Vec<String> {
        self.pod_groups.keys().cloned().collect()
    }

    // ----- PodGroups -----

    /// Returns the unit to wake (its members may now have a quorum).
    pub fn apply_pod_group(&mut self, key: String, info: PodGroupInfo) -> Option<UnitKey> {
        let changed = self.pod_groups.get(&key) != Some(&info);
        self.pod_groups.insert(key.clone(), info);
        changed.then_some(UnitKey::Gang(key))
    }

    /// Returns the unit to wake if the group was known (its members now wait on a missing PodGroup).
    pub fn delete_pod_group(&mut self, key: &str) -> Option<UnitKey> {
        self.pod_groups.remove(key).map(|_| UnitKey::Gang(key.to_string()))
    }

    // ----- pods -----

    /// A pod event. Returns `(freed, unit)`: whether capacity was freed (wake backing-off units) and the
    /// unit a new pending pod joined (queue it).
    pub fn apply_pod(&mut self, info: PodInfo) -> (bool, Option<(UnitKey, i32)>) {
        let key = info.pod_ref.key();
        if info.terminal || (info.deleting && info.node_name.is_none()) {
            return (self.delete_pod(&key), None);
        }
        if self.is_ours(&info.scheduler_name) && self.observed.insert(key.clone()) {
            let profile = self.scheduler_names.iter().position(|n| *n == info.scheduler_name).unwrap_or(0);
            self.arrivals.push((profile, info.pod.clone()));
        }
        if let Some(node) = info.node_name.clone() {
            self.remove_pending(&key);
            if let Some(b) = self.bound.get_mut(&key)
                && b.node == node
            {
                // An in-place resize (`pods/resize`) changes what a running pod asks for: the snapshot books
                // what it asks now, on the GPUs it holds.
                let resized =
                    b.pod.requests != info.pod.requests || b.pod.gpu != info.pod.gpu || b.pod.mig != info.pod.mig;
                if !resized {
                    return (false, None);
                }
                b.pod = info.pod;
                if self.snapshot.placement(&key).is_some() {
                    let _ = self.snapshot.forget(&key);
                }
                self.place_bound(&key);
                return (true, None);
            }
            let had = self.bound.remove(&key).is_some() && self.snapshot.placement(&key).is_some();
            if had {
                let _ = self.snapshot.forget(&key);
            }
            let assumed = self.assumed.remove(&key);
            let gang = info.gang.as_ref().map(|g| g.key.clone());
            let gpu_index = match &assumed {
                Some((n, gpus)) if *n == node => Some(gpus.clone()),
                _ => info.gpu_index.clone(),
            };
            let keep_assumption = assumed.as_ref().is_some_and(|(n, _)| *n == node);
            if assumed.is_some() && !keep_assumption {
                let _ = self.snapshot.forget(&key);
            }
            let labels = info.labels;
            let bound_by_another_instance = !keep_assumption && self.is_ours(&info.scheduler_name);
            let bound = BoundPod {
                pod: info.pod,
                pod_ref: info.pod_ref,
                node,
                gpu_index,
                gang,
                labels,
                bound_by_another_instance,
            };
            self.bound.insert(key.clone(), bound);
            if !keep_assumption {
                self.place_bound(&key);
            }
            return (false, None);
        }
        if !self.is_ours(&info.scheduler_name) {
            return (false, None);
        }
        let profile = self.scheduler_names.iter().position(|n| *n == info.scheduler_name).unwrap_or(0);
        let unit = match &info.gang {
            Some(g) => UnitKey::Gang(g.key.clone()),
            None => UnitKey::Pod(key.clone()),
        };
        let priority = info.pod.priority;
        let old = self.pending.insert(key.clone(), PendingPod { info, profile, unit: unit.clone() });
        match old {
            Some(old) if old.unit == unit => (false, None),
            Some(old) => {
                self.waiting_told.remove(&key);
                self.shrink_unit(&old.unit);
                *self.unit_sizes.entry(unit.clone()).or_insert(0) += 1;
                (false, Some((unit, priority)))
            }
            None => {
                *self.unit_sizes.entry(unit.clone()).or_insert(0) += 1;
                (false, Some((unit, priority)))
            }
        }
    }

    fn shrink_unit(&mut self, unit: &UnitKey) {
        if let Some(n) = self.unit_sizes.get_mut(unit) {
            *n -= 1;
            if *n == 0 {
                self.unit_sizes.remove(unit);
            }
        }
    }

    fn remove_pending(&mut self, key: &str) -> Option<PendingPod> {
        self.waiting_told.remove(key);
        let p = self.pending.remove(key)?;
        self.shrink_unit(&p.unit);
        Some(p)
    }

    /// Units with no pending member left and no bind in flight, for the queue to drop.
    pub fn finished_units<'a>(&'a self, units: impl Iterator<Item = &'a UnitKey>) -> Vec<UnitKey> {
        units.filter(|u| !self.unit_sizes.contains_key(u) && !self.in_flight.contains_key(u)).cloned().collect()
    }

    /// A pod was deleted (or finished). Returns whether it held capacity.
    pub fn delete_pod(&mut self, key: &str) -> bool {
        self.observed.remove(key);
        self.remove_pending(key);
        let assumed = self.assumed.remove(key).is_some();
        let bound = self.bound.remove(key).is_some();
        let placed = self.snapshot.placement(key).is_some();
        if placed {
            let _ = self.snapshot.forget(key);
        }
        bound || assumed || placed
    }

    /// Books a bound pod in the snapshot: on its recorded GPUs when they are free, else best fit.
    fn place_bound(&mut self, key: &str) {
        if self.snapshot_stale {
            return;
        }
        let Some(b) = self.bound.get(key) else { return };
        let Some(id) = self.snapshot.node_id(&b.node) else { return };
        if self.snapshot.placement(key).is_some() {
            return;
        }
        let node = &self.snapshot.nodes()[id];
        let node_gpu_count = node.gpus.len();
        let mut gpus = b.gpu_index.clone().filter(|g| {
            g.len() == if b.pod.gpu.is_none() { 0 } else { b.pod.gpu.count as usize }
                && g.iter().all(|&i| node.gpus.get(i).is_some_and(|d| d.free_milli() >= b.pod.gpu.milli_per_gpu))
        });
        if gpus.is_none() {
            let mut any = b.pod.gpu.clone();
            any.models = None;
            gpus = best_fit_gpus(&node.gpus, &any);
        }
        let mut pod = b.pod.clone();
        pod.gpu.models = None;
        if let Some(gpus) = &gpus
            && self.snapshot.assume(&pod, id, gpus).is_ok()
        {
            return;
        }
        // The pod runs there even though the snapshot has no room for it (the node shrank, or another
        // scheduler or a resize over-filled it): book it anyway, so no room is offered that is not there.
        let wanted = if pod.gpu.is_none() { 0 } else { pod.gpu.count as usize };
        let devices = gpus
            .or_else(|| b.gpu_index.clone().filter(|g| g.len() == wanted))
            .unwrap_or_else(|| (0..wanted.min(node_gpu_count)).collect());
        match self.snapshot.record_running(&pod, id, &devices) {
            Ok(()) => warn!(pod = key, node = %b.node, "a bound pod over-commits its node; accounted as running"),
            Err(e) => warn!(pod = key, node = %b.node, error = %e, "a bound pod could not be accounted"),
        }
    }

    fn refresh(&mut self) {
        if self.snapshot_stale {
            let old = std::mem::take(&mut self.snapshot);
            let mut fresh = Snapshot::new(self.nodes.values().cloned().collect()).expect("node names are unique keys");
            let keys: Vec<String> = self.bound.keys().cloned().collect();
            // Keep the devices each pod had, so a rebuild does not move anyone's GPUs.
            for key in &keys {
                if let Some(p) = old.placement(key) {
                    let gpus: Vec<usize> = p.gpus.indices().collect();
                    if let Some(b) = self.bound.get_mut(key) {
                        b.gpu_index = Some(gpus);
                    }
                }
            }
            self.snapshot = std::mem::take(&mut fresh);
            self.snapshot_stale = false;
            for key in keys {
                self.place_bound(&key);
            }
            let assumed: Vec<(String, (String, Vec<usize>))> =
                self.assumed.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (key, (node, gpus)) in assumed {
                let pod = self.pending.get(&key).map(|p| p.info.pod.clone());
                match (pod, self.snapshot.node_id(&node)) {
                    (Some(pod), Some(id)) => {
                        if let Err(e) = self.snapshot.assume(&pod, id, &gpus) {
                            warn!(pod = %key, error = %e, "an in-flight assumption no longer fits after a node change");
                        }
                    }
                    _ => debug!(pod = %key, "in-flight assumption on a node that is gone"),
                }
            }
        }
        if self.topology_stale {
            let labels: Vec<&str> = self.levels.iter().map(String::as_str).collect();
            self.topology = Topology::from_labels(&labels, self.snapshot.nodes()).expect("levels are validated");
            self.topology_stale = false;
        }
    }

    // ----- the pass -----

    fn gang_params(
        &self,
        unit: &UnitKey,
        members: &[&PendingPod],
    ) -> Result<(usize, Option<Duration>, Option<TopologyRequirement>), PodGroupMissing> {
        let UnitKey::Gang(key) = unit else { return Ok((1, None, None)) };
        let first = members.first().and_then(|m| m.info.gang.as_ref());
        let topology_from_pods = members.iter().find_map(|m| m.info.topology.clone());
        let timeout_from_pods = members.iter().find_map(|m| m.info.gang.as_ref()?.timeout);
        if first.is_some_and(|g| g.pod_group) {
            let pg = self.pod_groups.get(key).ok_or_else(|| PodGroupMissing(key.clone()))?;
            Ok((pg.min_member, pg.timeout.or(timeout_from_pods), pg.topology.clone().or(topology_from_pods)))
        } else {
            let size = members.iter().filter_map(|m| m.info.gang.as_ref()?.size).max().unwrap_or(1);
            Ok((size, timeout_from_pods, topology_from_pods))
        }
    }

    fn bound_members(&self, gang: &str) -> usize {
        self.bound.values().filter(|b| b.gang.as_deref() == Some(gang)).count()
    }

    /// One scheduling pass over the ready units of `queue`.
    pub fn run_pass(&mut self, queue: &mut SchedulingQueue, profiles: &[Profile], now: Duration) -> PassResult {
        self.refresh();
        let mut result = PassResult::default();
        let mut ready = queue.ready(now);
        if ready.is_empty() {
            return result;
        }
        if ready.len() > UNITS_PER_PASS {
            ready.truncate(UNITS_PER_PASS);
            result.more = true;
        }
        // The core queue gives a gang skipped often enough a reservation, but only in a pass the gang is
        // part of: the unit holding it joins every pass, so the room stays held while it backs off.
        if let Some(unit) = self.reserving.take()
            && queue.get(&unit).is_some_and(|e| !e.in_flight)
            && !ready.contains(&unit)
        {
            ready.push(unit);
            ready.sort_by_key(|u| queue.get(u).map(|e| (std::cmp::Reverse(e.priority), e.seq)));
        }
        // A single pod's unit is keyed by the pod; only gangs need a look at every pending pod. Passes come
        // with every batch of events, so they cost what is ready, not the whole backlog.
        let mut members: HashMap<&UnitKey, Vec<&PendingPod>> = HashMap::new();
        for unit in &ready {
            if let UnitKey::Pod(key) = unit
                && let Some(p) = self.pending.get(key)
                && p.unit == *unit
                && !self.assumed.contains_key(key)
            {
                members.entry(unit).or_default().push(p);
            }
        }
        if ready.iter().any(|u| matches!(u, UnitKey::Gang(_))) {
            for p in self.pending.values() {
                if matches!(p.unit, UnitKey::Gang(_)) && !self.assumed.contains_key(&p.info.pod_ref.key()) {
                    members.entry(&p.unit).or_default().push(p);
                }
            }
        }
        let config = QueueConfig::default();
        let mut queues: Vec<GangQueue> = profiles.iter().map(|_| GangQueue::new(config)).collect();
        let mut by_name: HashMap<String, UnitKey> = HashMap::new();
        let mut waiting_for_members: Vec<Waiting> = Vec::new();
        let mut timed_out_early: Vec<(UnitKey, String, Vec<PodRef>)> = Vec::new();
        let mut invalid: Vec<(UnitKey, String, Vec<PodRef>)> = Vec::new();
        for unit in &ready {
            let Some(mut pods) = members.get(unit).cloned() else {
                // Nothing left to place and nothing in flight: a unit kept would be ready on every pass.
                if !self.unit_sizes.contains_key(unit) && !self.in_flight.contains_key(unit) {
                    queue.remove(unit);
                }
                continue;
            };
            pods.sort_by(|a, b| a.info.pod_ref.name.cmp(&b.info.pod_ref.name));
            let refs: Vec<PodRef> = pods.iter().map(|p| p.info.pod_ref.clone()).collect();
            let entry = queue.get(unit).cloned().expect("ready units are queued");
            let (min_member, timeout, topology) = match self.gang_params(unit, &pods) {
                Ok(p) => p,
                Err(missing) => {
                    waiting_for_members.push((unit.clone(), None, WaitingFor::PodGroup, missing.to_string(), refs));
                    continue;
                }
            };
            let gang_name = match unit {
                UnitKey::Gang(k) | UnitKey::Pod(k) => k.clone(),
            };
            let bound = if matches!(unit, UnitKey::Gang(_)) { self.bound_members(&gang_name) } else { 0 };
            let min = min_member.saturating_sub(bound).max(1);
            if pods.len() < min {
                let reason = format!("gang {gang_name}: waiting for members: {}/{min} exist", pods.len());
                match timeout.map(|t| entry.arrival + t) {
                    Some(deadline) if deadline <= now => timed_out_early.push((unit.clone(), reason, refs)),
                    deadline => {
                        let why = WaitingFor::Members { min: min_member };
                        waiting_for_members.push((unit.clone(), deadline, why, reason, refs));
                    }
                }
                continue;
            }
            let profile = pods[0].profile.min(profiles.len() - 1);
            let priority = pods.iter().map(|p| p.info.pod.priority).max().unwrap_or(0);
            let mut gang = Gang::new(gang_name.clone(), min, pods.iter().map(|p| self.pod_for_pass(p)).collect())
                .with_priority(priority);
            gang.timeout = timeout;
            gang.topology = topology;
            // The core queue is rebuilt each pass; the unit's failed passes are its skips so far.
            if let Err(e) = queues[profile].add_gang_skipped(gang, entry.arrival, entry.attempts) {
                invalid.push((unit.clone(), e.to_string(), refs));
                continue;
            }
            by_name.insert(gang_name, unit.clone());
        }
        for (unit, deadline, why, reason, refs) in waiting_for_members {
            queue.sleep_until(&unit, deadline);
            if let UnitKey::Gang(g) = &unit {
                result.gangs.push(self.gang_report(g, "Pending", "WaitingForMembers", reason.clone()));
            }
            // The PodGroup's status carries the live count; a member keeps the count it was told.
            for r in refs {
                if self.waiting_told.get(&r.key()) != Some(&why) {
                    self.waiting_told.insert(r.key(), why.clone());
                    result.unschedulable_pods += 1;
                    result.unschedulable.push((r, crate::keys::REASON_UNSCHEDULABLE, reason.clone()));
                }
            }
        }
        let told_waiting = result.unschedulable.len();
        for (unit, reason, refs) in timed_out_early {
            queue.restart(&unit, now);
            let message = format!("timed out: {reason}");
            if let UnitKey::Gang(g) = &unit {
                result.gangs.push(self.gang_report(g, "Pending", crate::keys::REASON_GANG_TIMEOUT, message.clone()));
            }
            result.unschedulable_pods += refs.len();
            for r in refs {
                result.unschedulable.push((r, crate::keys::REASON_GANG_TIMEOUT, message.clone()));
            }
        }
        for (unit, reason, refs) in invalid {
            queue.failed(&unit, now);
            result.error_pods += refs.len();
            for r in refs {
                result.unschedulable.push((r, crate::keys::REASON_INVALID, reason.clone()));
            }
        }
        for (index, gq) in queues.iter_mut().enumerate() {
            if gq.is_empty() {
                continue;
            }
            let outcome = gq.schedule_pass(&profiles[index], &mut self.snapshot, &self.topology, now);
            if let Some(unit) = outcome.reserved_for.as_ref().and_then(|g| by_name.get(g)) {
                self.reserving.get_or_insert_with(|| unit.clone());
            }
            for placement in outcome.placed {
                let Some(unit) = by_name.get(&placement.gang).cloned() else { continue };
                let mut binds = Vec::new();
                for m in &placement.members {
                    let node = self.snapshot.nodes()[m.node].name.clone();
                    let pod = self.pending[&m.pod_key].info.pod_ref.clone();
                    self.assumed.insert(m.pod_key.clone(), (node.clone(), m.gpus.clone()));
                    binds.push(MemberBind { pod, node, gpus: m.gpus.clone() });
                }
                result.scheduled_pods += binds.len();
                queue.set_in_flight(&unit, true);
                self.in_flight.insert(
                    unit.clone(),
                    InFlightUnit {
                        members: binds.iter().map(|b| (b.pod.key(), (b.clone(), BindState::InFlight, 0))).collect(),
                    },
                );
                if let UnitKey::Gang(g) = &unit {
                    let mut report =
                        self.gang_report(g, "Scheduling", "Binding", format!("binding {} members", binds.len()));
                    report.scheduled = self.bound_members(g);
                    result.gangs.push(report);
                }
                result.binds.push(BindPlan { unit, members: binds });
            }
            for (name, reason) in outcome.waiting {
                let Some(unit) = by_name.get(&name) else { continue };
                queue.failed(unit, now);
                let refs: Vec<PodRef> =
                    members.get(unit).into_iter().flatten().map(|p| p.info.pod_ref.clone()).collect();
                let message = match unit {
                    UnitKey::Pod(key) => self.single_pod_message(&profiles[index], key).unwrap_or(reason),
                    UnitKey::Gang(g) => {
                        result.gangs.push(self.gang_report(
                            g,
                            "Pending",
                            crate::keys::REASON_UNSCHEDULABLE,
                            reason.clone(),
                        ));
                        reason
                    }
                };
                result.unschedulable_pods += refs.len();
                for r in refs {
                    result.unschedulable.push((r, crate::keys::REASON_UNSCHEDULABLE, message.clone()));
                }
            }
            for timed_out in outcome.timed_out {
                let Some(unit) = by_name.get(&timed_out.gang.name) else { continue };
                queue.restart(unit, now);
                let message = format!(
                    "gang {} timed out after {}s: {}",
                    timed_out.gang.name,
                    timed_out.waited.as_secs(),
                    timed_out.last_reason.unwrap_or_default()
                );
                result.gangs.push(self.gang_report(
                    &timed_out.gang.name,
                    "Pending",
                    crate::keys::REASON_GANG_TIMEOUT,
                    message.clone(),
                ));
                result.unschedulable_pods += timed_out.gang.members.len();
                for m in &timed_out.gang.members {
                    if let Some(p) = self.pending.get(&m.key) {
                        result.unschedulable.push((
                            p.info.pod_ref.clone(),
                            crate::keys::REASON_GANG_TIMEOUT,
                            message.clone(),
                        ));
                    }
                }
            }
            for (gang, reason) in outcome.rejected {
                let Some(unit) = by_name.get(&gang.name) else { continue };
                queue.failed(unit, now);
                result.error_pods += gang.members.len();
                for m in &gang.members {
                    if let Some(p) = self.pending.get(&m.key) {
                        result.unschedulable.push((
                            p.info.pod_ref.clone(),
                            crate::keys::REASON_INVALID,
                            reason.clone(),
                        ));
                    }
                }
            }
        }
        // Told something else since: if the gang waits again, its members are told so again.
        for (pod, _, _) in &result.unschedulable[told_waiting..] {
            self.waiting_told.remove(&pod.key());
        }
        result
    }

    /// A pod outside any gang naming a topology level that is not configured: honouring the annotation is
    /// impossible, and ignoring it would bind the pod as if it were absent. (A gang's level is checked with
    /// the gang, in the pass; a known level on a single pod is met by any node.)
    pub fn check_topology_level(&self, info: &PodInfo) -> Result<(), Invalid> {
        let Some(req) = info.topology.as_ref() else { return Ok(()) };
        if info.gang.is_some() || !self.is_ours(&info.scheduler_name) {
            return Ok(());
        }
        let annotation = if req.required { TOPOLOGY_REQUIRED_ANNOTATION } else { TOPOLOGY_PREFERRED_ANNOTATION };
        self.topology.level_index(&req.level).map(|_| ()).map_err(|e| Invalid(format!("annotation {annotation}: {e}")))
    }

    /// The core pod to schedule, with `near_nodes` filled from `mlsched.io/near-workload`: the nodes of the
    /// bound (or assumed) pods of the same namespace matching the selector, one entry per pod.
    fn pod_for_pass(&self, pending: &PendingPod) -> Pod {
        let mut pod = pending.info.pod.clone();
        if let Some(selector) = &pending.info.near_workload {
            let namespace = &pending.info.pod_ref.namespace;
            pod.near_nodes = self
                .known_pods()
                .filter(|k| k.key != pod.key && k.key.split_once('/').is_some_and(|(ns, _)| ns == namespace))
                .filter(|k| crate::translate::selector_matches(selector, k.labels))
                .filter_map(|k| k.node.map(str::to_string))
                .collect();
            pod.near_nodes.sort();
        }
        pod
    }

    /// A pod the scheduler tracks (bound, assumed or pending), by `namespace/name`.
    pub fn known_pod(&self, key: &str) -> Option<KnownPod<'_>> {
        if let Some((key, b)) = self.bound.get_key_value(key) {
            return Some(KnownPod { key, node: Some(&b.node), labels: &b.labels, pod: &b.pod });
        }
        let (key, p) = self.pending.get_key_value(key)?;
        let node = self.assumed.get(key).map(|(n, _)| n.as_str());
        Some(KnownPod { key, node, labels: &p.info.labels, pod: &p.info.pod })
    }

    /// Every pod the scheduler tracks: bound pods of any scheduler, and its own pending ones.
    pub fn known_pods(&self) -> impl Iterator<Item = KnownPod<'_>> {
        let bound =
            self.bound.iter().map(|(key, b)| KnownPod { key, node: Some(&b.node), labels: &b.labels, pod: &b.pod });
        let pending = self.pending.iter().map(|(key, p)| KnownPod {
            key,
            node: self.assumed.get(key).map(|(n, _)| n.as_str()),
            labels: &p.info.labels,
            pod: &p.info.pod,
        });
        bound.chain(pending)
    }

    /// kube-scheduler's message for a single pod: `0/N nodes are available: ...`.
    fn single_pod_message(&self, profile: &Profile, key: &str) -> Option<String> {
        let pod = &self.pending.get(key)?.info.pod;
        let (feasible, reasons) = feasible_nodes(profile, &self.snapshot, pod);
        feasible.is_empty().then(|| reasons.to_string())
    }

    fn gang_report(&self, gang: &str, phase: &'static str, reason: &'static str, message: String) -> GangReport {
        // Only a PodGroup that exists has a status to write (a missing one is told to its members instead).
        let pod_group = self.pod_groups.contains_key(gang);
        GangReport { gang: gang.to_string(), pod_group, phase, scheduled: self.bound_members(gang), reason, message }
    }

    // ----- bind results -----

    /// What follows from the outcome of one member's bind (see [`BindFollowUp`]), by the kind of failure:
    /// - retryable (429, 5xx, no answer): a gang member is retried on its reserved node up to `bindRetries`
    ///   times, then its gang is given up; a single pod is given up (and decided again after its backoff);
    /// - conflict (409: bound already) or not found (404: gone): the member's assumption is released and
    ///   nothing is retried or reported; a pod that is gone leaves the pending pods at once;
    /// - anything else (403, 422, not sent): given up at once, with a report.
    ///
    /// A unit whose binds have all ended with some dropped backs off, so that the watch shows what became of
    /// the dropped members before any still pending is decided again.
    pub fn bind_result(
        &mut self,
        queue: &mut SchedulingQueue,
        unit: &UnitKey,
        pod_key: &str,
        result: Result<(), BindError>,
        now: Duration,
    ) -> BindFollowUp {
        let kind = result.as_ref().err().map(BindError::kind);
        let is_gang = matches!(unit, UnitKey::Gang(_));
        let bind_retries = self.bind_retries;
        let Some(flight) = self.in_flight.get_mut(unit) else { return BindFollowUp::None };
        let Some((member, state, attempts)) = flight.members.get_mut(pod_key) else { return BindFollowUp::None };
        match kind {
            None => *state = BindState::Bound,
            Some(ErrorKind::Conflict | ErrorKind::NotFound) => *state = BindState::Dropped,
            Some(ErrorKind::Retryable) if is_gang && *attempts < bind_retries => {
                *attempts += 1;
                return BindFollowUp::Retry(member.clone(), *attempts);
            }
            Some(_) => {
                let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                return self.give_up(queue, unit, pod_key, &error, now);
            }
        }
        let member = member.clone();
        if let Some(kind @ (ErrorKind::Conflict | ErrorKind::NotFound)) = kind {
            // Bound already: if the watch has shown it, the assumption was turned into the bound pod then.
            if self.assumed.remove(pod_key).is_some() {
                let _ = self.snapshot.forget(pod_key);
            }
            // Gone: dropped now, unless the watch already shows a new pod of the same name.
            if kind == ErrorKind::NotFound && self.pending.get(pod_key).is_some_and(|p| p.info.pod_ref == member.pod) {
                self.remove_pending(pod_key);
            }
        }
        let flight = self.in_flight.get(unit).expect("checked above");
        let finished = flight.members.values().all(|(_, s, _)| *s != BindState::InFlight);
        let all_bound = finished && flight.members.values().all(|(_, s, _)| *s == BindState::Bound);
        let count = flight.members.len();
        let mut gang_done = None;
        let mut bound_earlier = Vec::new();
        if all_bound {
            let flight = self.in_flight.remove(unit).expect("checked above");
            // A single pod has nothing left to try: its unit stays out of the passes until the watch
            // shows the pod bound and drops it. A gang may still have members beyond its quorum.
            if is_gang {
                queue.set_in_flight(unit, false);
            }
            if let UnitKey::Gang(g) = unit {
                // Members bound before (seen by the watch) plus this flight's, whose bound state the
                // watch may not have shown yet (after a give-up, earlier members are already bound).
                let before: Vec<&BoundPod> = self
                    .bound
                    .iter()
                    .filter(|(k, b)| b.gang.as_deref() == Some(g.as_str()) && !flight.members.contains_key(*k))
                    .map(|(_, b)| b)
                    .collect();
                bound_earlier = before
                    .iter()
                    .filter(|b| b.bound_by_another_instance)
                    .map(|b| (b.pod_ref.clone(), b.node.clone()))
                    .collect();
                bound_earlier.sort();
                let bound_now = before.len() + count;
                let message = if before.is_empty() {
                    format!("{bound_now} members bound")
                } else {
                    format!("{bound_now} members bound ({count} now, {} earlier)", before.len())
                };
                let mut report = self.gang_report(g, "Scheduled", "Scheduled", message);
                report.scheduled = bound_now;
                gang_done = Some(report);
            }
        } else if finished {
            // Some member was dropped: no gang report (not every member was bound by this flight), and a
            // backoff before the unit's members still pending, if any, are decided again.
            self.in_flight.remove(unit);
            queue.set_in_flight(unit, false);
            queue.failed(unit, now);
        }
        match kind {
            None => BindFollowUp::Bound { pod: member.pod, node: member.node, gang_done, bound_earlier },
            Some(kind) => BindFollowUp::Dropped { pod: member.pod, kind },
        }
    }

    /// Gives the unit up after a failed bind of `pod_key`: the assumptions of its members not bound (or
    /// dropped) are released and the unit backs off.
    fn give_up(
        &mut self,
        queue: &mut SchedulingQueue,
        unit: &UnitKey,
        pod_key: &str,
        error: &str,
        now: Duration,
    ) -> BindFollowUp {
        let flight = self.in_flight.remove(unit).expect("checked by the caller");
        let retries = flight.members.get(pod_key).map_or(0, |(_, _, attempts)| *attempts);
        let mut pods = Vec::new();
        for (key, (m, s, _)) in flight.members {
            if s != BindState::InFlight {
                continue;
            }
            if self.assumed.remove(&key).is_some() {
                let _ = self.snapshot.forget(&key);
            }
            self.waiting_told.remove(&key);
            pods.push(m.pod);
        }
        pods.sort();
        queue.set_in_flight(unit, false);
        queue.failed(unit, now);
        let message = format!("binding {pod_key} failed: {error}");
        let gang = match unit {
            UnitKey::Gang(g) => Some(self.gang_report(
                g,
                "Pending",
                crate::keys::REASON_GANG_FAILED,
                format!("gang given up after {retries} bind retries, assumptions released: {message}"),
            )),
            UnitKey::Pod(_) => None,
        };
        BindFollowUp::GaveUp { pods, message, gang }
    }

    /// GPU allocation figures for the metrics: (allocated milli, capacity milli, partly used GPUs).
    pub fn gpu_usage(&mut self) -> (i64, i64, usize) {
        self.refresh();
        let mut used = 0;
        let mut cap = 0;
        let mut partial = 0;
        for n in self.snapshot.nodes() {
            cap += n.gpu_capacity_milli();
            used += n.gpu_capacity_milli() - n.gpu_free_milli();
            partial += n.gpus.iter().filter(|g| g.used_milli > 0 && g.free_milli() > 0).count();
        }
        (used, cap, partial)
    }

    /// Gangs known to the scheduler (pending members), for the metrics.
    pub fn pending_gangs(&self) -> usize {
        self.unit_sizes.keys().filter(|u| matches!(u, UnitKey::Gang(_))).count()
    }

    pub fn gang_members_pending(&self) -> BTreeSet<String> {
        self.pending.values().filter_map(|p| p.info.gang.as_ref().map(|g| g.key.clone())).collect()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
