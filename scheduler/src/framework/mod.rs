//! The plugin framework: small traits at the extension points of one scheduling cycle, in the spirit of
//! kube-scheduler's framework. A policy is one file implementing one of these traits; a `Profile` names
//! the plugins and weights a scheduler runs with.

pub mod cycle;
pub mod profile;
pub mod reasons;
pub mod verdicts;

use std::borrow::Cow;

use crate::core::{MigInstance, Node, NodeId, Pod, Snapshot};

pub use cycle::{Decision, Unschedulable, schedule_one};
pub use profile::Profile;
pub use reasons::FailureReasons;

/// Why a filter rejected a node, phrased as kube-scheduler phrases it (`Insufficient cpu`,
/// `node(s) had untolerated taint {k: v}`) so the aggregated message reads the same to operators.
pub type Reason = Cow<'static, str>;

/// Decides whether a pod may run on a node at all. A verdict must depend only on the pod's shape (every
/// field but its key) and on the node: the profile's [`verdicts::VerdictCache`] keeps it until the node
/// changes.
pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), Reason>;
}

/// Ranks the nodes that passed every filter. Higher is better. Scores of all plugins of a profile are
/// combined as a weighted sum, so each plugin documents its own range.
pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64;

    /// The plugin's NormalizeScore extension (kube's `ScoreExtensions`), for plugins whose raw scores are
    /// only meaningful relative to each other. `None`: raw scores are final.
    fn normalizer(&self) -> Option<&dyn NormalizeScore> {
        None
    }

    /// Called once per cycle before any node is scored, when at least one node is feasible (kube's
    /// PreScore): the place to refresh what the scores depend on beyond the pod and the node.
    fn pre_score(&self, _snapshot: &Snapshot) {}

    /// `Some(g)` lets the profile's [`verdicts::VerdictCache`] keep this plugin's raw score of a pod shape
    /// on a node until the node changes, the node list changes, or the plugin returns another `g`: the
    /// promise is that the score depends on nothing else (the pod's key included). `None` (the default):
    /// scored afresh every cycle.
    fn cache_generation(&self) -> Option<u64> {
        None
    }

    /// The GPU indices the pod should take on `node`, for plugins whose score depends on the device
    /// choice (the fragmentation-aware ones). `None` leaves the choice to the profile's default.
    fn pick_gpus(&self, _snapshot: &Snapshot, _pod: &Pod, _node: NodeId) -> Option<Vec<usize>> {
        None
    }

    /// The MIG instances (GPU index, instance) the pod should get on `node`, for plugins that pack MIG.
    /// `None` leaves the choice to the profile's default (the fullest GPU, lowest start).
    fn pick_mig(&self, _snapshot: &Snapshot, _pod: &Pod, _node: NodeId) -> Option<Vec<(usize, MigInstance)>> {
        None
    }

    /// Sees every pod that arrives, scheduled or not, so policies may learn the workload online.
    fn observe_arrival(&mut self, _pod: &Pod) {}
}

/// Rescales the raw scores of all feasible nodes of one cycle (kube's NormalizeScore).
pub trait NormalizeScore {
    fn normalize(&self, scores: &mut [(NodeId, i64)]);
}
