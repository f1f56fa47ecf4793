//! The scheduler's picture of the cluster, kept up to date from watch events, and the scheduling pass
//! run on it. Pure: watch events come in as translated objects, decisions go out as plain data that the
//! async shell turns into API calls.
//!
//! Bound pods and in-flight assumptions are applied to the snapshot incrementally (`assume`/`forget`).
//! The core snapshot has no node update or removal, so a changed or deleted node marks it stale and it
//! is rebuilt from the stores here before the next pass (no API re-list is involved); added nodes are
//! appended in place. Node status heartbeats that do not change the translated node are ignored.
//!
//! By job: `stores` (what the watches feed: nodes, PodGroups, pods, and the snapshot kept from them),
//! `pass` (the scheduling pass), `binds` (what follows each bind's outcome), `read_model` (what the
//! Placement API and the metrics read).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use mlsched::core::gpu::best_fit_gpus;
use mlsched::core::{Node, Pod, Snapshot};
use mlsched::framework::Profile;
use mlsched::framework::cycle::feasible_nodes;
use mlsched::gang::{Gang, GangQueue, MinResources, RuntimeHints, TopologyRequirement};
use mlsched::topology::Topology;
use tracing::{debug, warn};

use crate::error::{BindError, ErrorKind};
use crate::keys::{TOPOLOGY_PREFERRED_ANNOTATION, TOPOLOGY_REQUIRED_ANNOTATION};
use crate::translate::{Invalid, PodGroupApi, PodInfo, PodRef};
use crate::unit::UnitKey;

pub use preemption::PreemptionOrder;

/// What the scheduler knows of a PodGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodGroupInfo {
    pub min_member: usize,
    pub timeout: Option<Duration>,
    pub topology: Option<TopologyRequirement>,
    /// `minResources`, or why it could not be read (the gang is then reported invalid, not placed without it).
    pub min_resources: Result<Option<MinResources>, Invalid>,
    pub api: PodGroupApi,
}

#[derive(Debug, Clone)]
struct BoundPod {
    pod: Pod,
    pod_ref: PodRef,
    node: String,
    gpu_index: Option<Vec<usize>>,
    gang: Option<String>,
    labels: BTreeMap<String, String>,
    /// When it is expected to end (`mlsched.io/expected-runtime-seconds` counted from when this process
    /// first saw it bound), on the pass clock.
    expected_end: Option<Duration>,
    /// Being deleted (evicted, say): it holds its room until it is gone, but is no preemption victim.
    deleting: bool,
    /// When this process first saw it bound, on the pass clock: preemption takes the youngest first.
    since: Duration,
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
    /// The unit's priority: the binder sends higher ones first.
    pub priority: i32,
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
#[error("PodGroup {0} does not exist (named by {named_by}); waiting until it is created", named_by = .1.named_by())]
pub struct PodGroupMissing(pub String, pub PodGroupApi);

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
    /// Lower-priority pods to evict for a waiting unit, and its members' nominated nodes.
    pub preemptions: Vec<PreemptionOrder>,
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
    /// By API and `namespace/name`: a group of one API never stands in for a group of the other.
    pod_groups: HashMap<(PodGroupApi, String), PodGroupInfo>,
    /// Pods assumed by a decision whose bound state the watch has not shown yet: key → (node, gpus).
    assumed: HashMap<String, (String, Vec<usize>)>,
    in_flight: HashMap<UnitKey, InFlightUnit>,
    snapshot: Snapshot,
    topology: Topology,
    snapshot_stale: bool,
    topology_stale: bool,
    scheduler_names: Vec<String>,
    bind_retries: u32,
    /// Preemptors whose evictions were refused: until when they do not preempt again, and why.
    refused_preemptions: HashMap<String, (Duration, String)>,
    /// Keys of our pods already reported as arrivals, so a pod's updates are not counted again.
    observed: HashSet<String>,
    /// Pods of ours seen for the first time, with their profile, for the policies that learn the shapes
    /// that arrive (`mlsched-online`): the only history a live scheduler has.
    arrivals: Vec<(usize, Pod)>,
    /// Pending gang members told why their gang waits (see `run_pass`), with what they were told.
    waiting_told: HashMap<String, WaitingFor>,
    /// The `now` of the latest pass: when a pod seen bound since started, as far as this process knows.
    clock: Duration,
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
            refused_preemptions: HashMap::new(),
            observed: HashSet::new(),
            arrivals: Vec::new(),
            waiting_told: HashMap::new(),
            clock: Duration::ZERO,
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
}

mod binds;
mod pass;
mod preemption;
mod read_model;
mod stores;

#[cfg(test)]
mod preemption_tests;
#[cfg(test)]
mod tests;
