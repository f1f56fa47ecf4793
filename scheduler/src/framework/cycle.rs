//! One scheduling decision: filter every node, score the feasible ones, choose, pick devices.
//! Pure: it reads the snapshot and returns a decision; the caller assumes it (or not).

use super::profile::{Profile, WeightedScore};
use super::reasons::FailureReasons;
use super::verdicts::ShapeRows;
use crate::core::gpu::best_fit_gpus;
use crate::core::mig::{MigInstance, most_allocated_mig};
use crate::core::{NodeId, Pod, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub node: NodeId,
    pub gpus: Vec<usize>,
    /// MIG instances to carve: GPU index and instance.
    pub mig: Vec<(usize, MigInstance)>,
    pub score: i64,
    pub feasible_nodes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    pub reasons: FailureReasons,
}

impl std::fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.reasons.fmt(f)
    }
}

/// The nodes on which every filter of `profile` accepts `pod`, and the reasons for the others.
pub fn feasible_nodes(profile: &Profile, snapshot: &Snapshot, pod: &Pod) -> (Vec<NodeId>, FailureReasons) {
    feasible_among(profile, snapshot, pod, 0..snapshot.nodes().len())
}

/// Like `feasible_nodes`, restricted to `candidates` (the nodes of one topology domain, say).
pub fn feasible_among(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &Pod,
    candidates: impl ExactSizeIterator<Item = NodeId>,
) -> (Vec<NodeId>, FailureReasons) {
    let mut feasible = Vec::with_capacity(candidates.len());
    let mut reasons = FailureReasons::new(candidates.len());
    if profile.verdicts.is_enabled() {
        profile.verdicts.with_rows(snapshot, pod, profile.scores.len(), |rows| {
            for id in candidates {
                match rows.verdict(profile, snapshot, pod, id) {
                    Ok(()) => feasible.push(id),
                    Err(reason) => reasons.add(reason.clone()),
                }
            }
        });
        return (feasible, reasons);
    }
    let nodes = snapshot.nodes();
    for id in candidates {
        match profile.rejection(pod, &nodes[id]) {
            None => feasible.push(id),
            Some(reason) => reasons.add(reason),
        }
    }
    (feasible, reasons)
}

/// Scores `nodes` with every score plugin of `profile` (normalized, weighted, summed).
pub fn score_nodes(profile: &Profile, snapshot: &Snapshot, pod: &Pod, nodes: &[NodeId]) -> Vec<(NodeId, i64)> {
    if nodes.is_empty() {
        return Vec::new();
    }
    profile.pre_score(snapshot);
    let mut total: Vec<(NodeId, i64)> = nodes.iter().map(|&n| (n, 0)).collect();
    let mut scores: Vec<(NodeId, i64)> = Vec::with_capacity(nodes.len());
    let mut add = |scores: &mut Vec<(NodeId, i64)>, weighted: &WeightedScore| {
        if let Some(normalizer) = weighted.plugin.normalizer() {
            normalizer.normalize(scores);
        }
        for (t, (_, s)) in total.iter_mut().zip(scores.iter()) {
            t.1 = t.1.saturating_add(s.saturating_mul(weighted.weight));
        }
    };
    let cached = profile.verdicts.with_rows(snapshot, pod, profile.scores.len(), |rows| {
        rows.sync_generations(profile);
        for (i, weighted) in profile.scores.iter().enumerate() {
            scores.clear();
            scores.extend(nodes.iter().map(|&n| (n, rows.raw_score(&*weighted.plugin, i, snapshot, pod, n))));
            add(&mut scores, weighted);
        }
    });
    if cached.is_none() {
        for weighted in &profile.scores {
            scores.clear();
            scores.extend(nodes.iter().map(|&n| (n, weighted.plugin.score(snapshot, pod, n))));
            add(&mut scores, weighted);
        }
    }
    total
}

/// The best-scored node; among equal scores the one with the smallest name, so decisions do not depend
/// on the order nodes were added in.
pub fn select_host(snapshot: &Snapshot, scored: &[(NodeId, i64)]) -> Option<(NodeId, i64)> {
    let nodes = snapshot.nodes();
    scored.iter().copied().reduce(|best, cand| {
        if cand.1 > best.1 || (cand.1 == best.1 && nodes[cand.0].name < nodes[best.0].name) { cand } else { best }
    })
}

/// The profile's choice among already-filtered `feasible` nodes: the best-scored node and the GPUs its
/// picker (or best fit) chooses there. `None` when `feasible` is empty or no GPUs fit on that node.
pub fn choose(profile: &Profile, snapshot: &Snapshot, pod: &Pod, feasible: &[NodeId]) -> Option<Decision> {
    let scored = score_nodes(profile, snapshot, pod, feasible);
    let (node, score) = select_host(snapshot, &scored)?;
    place_on(profile, snapshot, pod, node, score, feasible.len())
}

/// The devices `pod` takes on the chosen `node`: the picker's GPUs (or best fit) and MIG slices.
fn place_on(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &Pod,
    node: NodeId,
    score: i64,
    feasible_nodes: usize,
) -> Option<Decision> {
    let picker = profile.gpu_picker.and_then(|i| profile.scores.get(i)).map(|s| &s.plugin);
    let devices = &snapshot.nodes()[node].gpus;
    let gpus = match picker.and_then(|p| p.pick_gpus(snapshot, pod, node)) {
        Some(gpus) => gpus,
        None => best_fit_gpus(devices, &pod.gpu)?,
    };
    let mig = match &pod.mig {
        None => Vec::new(),
        // The first plugin that packs MIG chooses the slices; the GPU picker may know nothing of MIG.
        Some(request) => match profile.scores.iter().find_map(|s| s.plugin.pick_mig(snapshot, pod, node)) {
            Some(mig) => mig,
            None => most_allocated_mig(devices, request)?,
        },
    };
    Some(Decision { node, gpus, mig, score, feasible_nodes })
}

/// Filters, scores and chooses among every node of `snapshot`. With the profile's verdict cache and no
/// normalizing plugin, a block of nodes none of which changed since an earlier cycle for the same pod shape
/// costs one comparison of stamps, and a changed node is filtered and scored again alone (see
/// [`ShapeRows::best_node`]); the decision is the one the uncached cycle makes.
pub fn schedule_one(profile: &Profile, snapshot: &Snapshot, pod: &Pod) -> Result<Decision, Unschedulable> {
    let unnormalized = profile.scores.iter().all(|s| s.plugin.normalizer().is_none());
    if unnormalized
        && let Some(decision) = profile
            .verdicts
            .with_rows(snapshot, pod, profile.scores.len(), |rows| schedule_on_rows(profile, snapshot, pod, rows))
    {
        return decision;
    }
    let (feasible, reasons) = feasible_nodes(profile, snapshot, pod);
    choose(profile, snapshot, pod, &feasible).ok_or(Unschedulable { reasons })
}

fn schedule_on_rows(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &Pod,
    rows: &mut ShapeRows,
) -> Result<Decision, Unschedulable> {
    let (best, feasible) = rows.best_node(profile, snapshot, pod);
    let decision = best.and_then(|(node, score)| place_on(profile, snapshot, pod, node, score, feasible));
    decision.ok_or_else(|| {
        let mut reasons = FailureReasons::new(snapshot.nodes().len());
        for id in 0..snapshot.nodes().len() {
            if let Some(reason) = rows.known_reason(id) {
                reasons.add(reason.clone());
            }
        }
        Unschedulable { reasons }
    })
}
