//! One replay of a pod stream through the scheduling core, with the FGD paper's metrics.

use std::time::Instant;

use mlsched::core::{Node, Snapshot};
use mlsched::frag::{TypicalShapes, current_node_frag_milli};
use mlsched::framework::Profile;
use mlsched::framework::schedule_one;
use mlsched::plugins::policy::{Policy, PolicyInputs, profile_for};
use serde::Serialize;

use crate::buckets::ArrivalBuckets;
use crate::stream::seeded_stream;
use crate::trace::TracePod;

/// What one replay measured. `alloc_pct_by_arrived[k]` is the mean allocation ratio (%) over the events
/// at which the arrived GPU request was k % of capacity (`None` where no event fell near k).
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub policy: String,
    pub seed: u64,
    pub tune: f64,
    pub nodes: usize,
    pub gpus: usize,
    pub pods_arrived: usize,
    pub pods_failed: usize,
    /// CPU-only pods that found no room before the arrived workload passed 100 % (rounded): the room a
    /// policy gave GPU pods instead, which `mlsim bound` needs to read its bounds.
    pub cpu_only_failed_by_100: usize,
    /// The arrived GPU request (% of capacity, this pod's included) when the first one-GPU pod (a share or
    /// one whole GPU) found no room. `mlsim bound`'s bound for placements that fail no one-GPU pod before
    /// a point applies to a replay whose first failure came at or after that point.
    pub first_one_gpu_failure_arrived_pct: Option<f64>,
    pub unallocated_gpu_pct_at_100: Option<f64>,
    pub frag_pct_at_100: Option<f64>,
    pub alloc_pct_by_arrived: Vec<Option<f64>>,
    pub frag_pct_by_arrived: Vec<Option<f64>>,
    pub elapsed_seconds: f64,
    pub decisions_per_second: f64,
}

pub struct ReplayInput<'a> {
    pub nodes: &'a [Node],
    pub pods: &'a [TracePod],
    pub policy: Policy,
    pub seed: u64,
    pub tune: f64,
}

/// A replay in progress: the snapshot, the policy's profile and the running metrics.
pub struct ReplayState {
    pub snapshot: Snapshot,
    pub profile: Profile,
    pub stream: Vec<TracePod>,
    typical: TypicalShapes,
    node_frag: Vec<f64>,
    frag_total: f64,
    buckets: ArrivalBuckets,
    arrived_milli: i64,
    used_milli: i64,
    failed: usize,
    cpu_only_failed_by_100: usize,
    first_one_gpu_failure_arrived_milli: Option<i64>,
    next: usize,
}

impl ReplayState {
    pub fn new(input: &ReplayInput<'_>) -> Self {
        let (nodes, stream) = seeded_stream(input.nodes, input.pods, input.seed, input.tune);
        // Fragmentation is measured against the untuned workload, the same prior FGD gets.
        let typical = TypicalShapes::from_pods(input.pods.iter().map(|p| &p.pod), TypicalShapes::DEFAULT_COVERAGE);
        let profile = profile_for(input.policy, PolicyInputs { seed: input.seed, typical: typical.clone() });
        ReplayState::with_stream(nodes, stream, profile, typical)
    }

    /// A replay of a stream built elsewhere, under any profile; `typical` is fragmentation's yardstick.
    pub fn with_stream(nodes: Vec<Node>, stream: Vec<TracePod>, profile: Profile, typical: TypicalShapes) -> Self {
        let capacity_milli = nodes.iter().map(|n| n.gpu_capacity_milli()).sum();
        let snapshot = Snapshot::new(nodes).expect("node names are unique after prefixing");
        let node_frag: Vec<f64> = snapshot.nodes().iter().map(|n| current_node_frag_milli(n, &typical)).collect();
        let frag_total = node_frag.iter().sum();
        ReplayState {
            snapshot,
            profile,
            stream,
            typical,
            node_frag,
            frag_total,
            buckets: ArrivalBuckets::new(capacity_milli),
            arrived_milli: 0,
            used_milli: 0,
            failed: 0,
            cpu_only_failed_by_100: 0,
            first_one_gpu_failure_arrived_milli: None,
            next: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.next >= self.stream.len()
    }

    /// Schedules the next pod of the stream (one decision, no retry) and records the metrics.
    pub fn step(&mut self) {
        let tp = &self.stream[self.next];
        self.next += 1;
        self.arrived_milli += tp.gpu_milli_total;
        self.profile.observe_arrival(&tp.pod);
        match schedule_one(&self.profile, &self.snapshot, &tp.pod) {
            Ok(decision) => {
                self.snapshot.assume_decision(&tp.pod, &decision).expect("a feasible decision can be assumed");
                self.used_milli += tp.gpu_milli_total;
                let new_frag = current_node_frag_milli(&self.snapshot.nodes()[decision.node], &self.typical);
                self.frag_total += new_frag - self.node_frag[decision.node];
                self.node_frag[decision.node] = new_frag;
            }
            Err(_) => {
                self.failed += 1;
                if tp.gpu_milli_total == 0 && self.buckets.bucket(self.arrived_milli) <= 100.0 {
                    self.cpu_only_failed_by_100 += 1;
                }
                if tp.pod.gpu.count == 1 {
                    self.first_one_gpu_failure_arrived_milli.get_or_insert(self.arrived_milli);
                }
            }
        }
        self.buckets.record(self.arrived_milli, self.used_milli, self.frag_total);
    }

    /// The typical shapes of the workload (fragmentation's yardstick and FGD's prior).
    pub fn typical(&self) -> &TypicalShapes {
        &self.typical
    }

    /// See [`ReplaySummary::first_one_gpu_failure_arrived_pct`].
    pub fn first_one_gpu_failure_arrived_pct(&self) -> Option<f64> {
        self.first_one_gpu_failure_arrived_milli.map(|a| self.buckets.arrived_pct(a))
    }

    /// The pods of the stream not replayed yet.
    pub fn remaining(&self) -> &[TracePod] {
        &self.stream[self.next..]
    }
}

/// Calls `progress(done, total)` now and then, for a progress bar.
pub fn replay(input: &ReplayInput<'_>, progress: &mut dyn FnMut(usize, usize)) -> ReplaySummary {
    let started = Instant::now();
    let state = ReplayState::new(input);
    run_to_end(state, &input.policy.to_string(), input.seed, input.tune, started, progress)
}

/// Replays what is left of `state` and summarises it under the name `policy`.
pub fn run_to_end(
    mut state: ReplayState,
    policy: &str,
    seed: u64,
    tune: f64,
    started: Instant,
    progress: &mut dyn FnMut(usize, usize),
) -> ReplaySummary {
    let total = state.stream.len();
    while !state.is_done() {
        state.step();
        if state.next.is_multiple_of(256) {
            progress(state.next, total);
        }
    }
    progress(total, total);
    let elapsed = started.elapsed().as_secs_f64();
    let alloc = state.buckets.alloc_pct();
    let frag = state.buckets.frag_pct();
    ReplaySummary {
        policy: policy.to_string(),
        seed,
        tune,
        nodes: state.snapshot.nodes().len(),
        gpus: state.snapshot.nodes().iter().map(|n| n.gpus.len()).sum(),
        pods_arrived: total,
        pods_failed: state.failed,
        cpu_only_failed_by_100: state.cpu_only_failed_by_100,
        first_one_gpu_failure_arrived_pct: state.first_one_gpu_failure_arrived_pct(),
        unallocated_gpu_pct_at_100: alloc[100].map(|a| round2(100.0 - a)),
        frag_pct_at_100: frag[100],
        alloc_pct_by_arrived: alloc,
        frag_pct_by_arrived: frag,
        elapsed_seconds: elapsed,
        decisions_per_second: total as f64 / elapsed.max(1e-9),
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
