//! `mlsim drift`: a stream whose shape mix changes halfway, built from two workloads, replayed under
//! policies given the prior (the typical shapes of both workloads together, fixed) and under
//! `mlsched-online` with its fading window and with every arrival counted alike.
//!
//! The first half of the stream is the first workload's pods, shuffled and tuned to half the usual
//! 1.3x capacity; the second half the same for the second workload. No pod departs (the FGD method), so
//! the unallocated GPU % at 100 % arrived is read just past the middle of the second half (which spans 65 %
//! to 130 % arrived). Beside it, the
//! learner itself is followed: the distance between the mix it has learned and the second workload's
//! true mix, some pods after the switch.

use std::fmt::Write as _;
use std::time::Instant;

use mlsched::core::Node;
use mlsched::frag::TypicalShapes;
use mlsched::framework::Profile;
use mlsched::plugins::mlsched_score::{LEARNER_HALF_LIFE, MlschedScore, ShapeCounts};
use mlsched::plugins::policy::{Policy, PolicyInputs, default_filters, profile_for, with_mlsched_online};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::compare::mean_sd;
use crate::replay::{ReplayState, run_to_end};
use crate::stream::{PAPER_TUNE, build_stream, prefix_node_names};
use crate::trace::TracePod;

/// Pods after the switch at which the learned mix is compared with the second workload's.
pub const CHECKPOINTS: [usize; 4] = [256, 1024, 2048, 3072];

/// How a replay learns the workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Learner {
    /// A paper policy or `mlsched`, given the prior of both workloads (which knows what is to come).
    Prior(Policy),
    /// The same given the first workload's prior only: configured on the workload before the change.
    StalePrior(Policy),
    /// `mlsched-online` with this half-life (`None`: every arrival counts alike).
    Online(Option<f64>),
}

impl Learner {
    pub fn label(&self) -> String {
        match self {
            Learner::Prior(p) => format!("{p} (prior of both)"),
            Learner::StalePrior(p) => format!("{p} (prior of the first)"),
            Learner::Online(Some(h)) if *h == LEARNER_HALF_LIFE => format!("mlsched-online (half-life {h})"),
            Learner::Online(Some(h)) => format!("mlsched-online, half-life {h}"),
            Learner::Online(None) => "mlsched-online, all history".to_string(),
        }
    }

    fn profile(&self, seed: u64, prior: &TypicalShapes, stale: &TypicalShapes) -> Profile {
        match *self {
            Learner::Prior(policy) => profile_for(policy, PolicyInputs { seed, typical: prior.clone() }),
            Learner::StalePrior(policy) => profile_for(policy, PolicyInputs { seed, typical: stale.clone() }),
            Learner::Online(half_life) => with_mlsched_online(
                default_filters(Profile::new(Policy::MlschedOnline.name())),
                MlschedScore::online_with_half_life(half_life),
            ),
        }
    }

    fn half_life(&self) -> Option<Option<f64>> {
        match *self {
            Learner::Online(h) => Some(h),
            Learner::Prior(_) | Learner::StalePrior(_) => None,
        }
    }
}

/// The learners `mlsim drift` compares by default.
pub fn default_learners() -> Vec<Learner> {
    vec![
        Learner::Prior(Policy::BestFit),
        Learner::Prior(Policy::Fgd),
        Learner::Prior(Policy::Mlsched),
        Learner::StalePrior(Policy::Fgd),
        Learner::StalePrior(Policy::Mlsched),
        Learner::Online(Some(512.0)),
        Learner::Online(Some(LEARNER_HALF_LIFE)),
        Learner::Online(Some(2048.0)),
        Learner::Online(None),
    ]
}

/// The first workload's pods then the second's, each shuffled and tuned to `tune / 2` of capacity, and
/// the index of the first pod of the second.
pub fn drift_stream(
    first: &[TracePod],
    second: &[TracePod],
    capacity_milli: i64,
    tune: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<TracePod>, usize) {
    let mut stream = build_stream(first, capacity_milli, tune / 2.0, rng);
    for p in &mut stream {
        p.pod.key = format!("first/{}", p.pod.key);
    }
    let switch = stream.len();
    stream.extend(build_stream(second, capacity_milli, tune / 2.0, rng).into_iter().map(|mut p| {
        p.pod.key = format!("second/{}", p.pod.key);
        p
    }));
    (stream, switch)
}

/// Total variation distance between two shape mixes (0: the same, 1: disjoint).
pub fn mix_distance(a: &TypicalShapes, b: &TypicalShapes) -> f64 {
    let mut diff = 0.0;
    for s in &a.shapes {
        let other = b.shapes.iter().find(|t| t.shape == s.shape).map_or(0.0, |t| t.weight);
        diff += (s.weight - other).abs();
    }
    diff += b.shapes.iter().filter(|t| !a.shapes.iter().any(|s| s.shape == t.shape)).map(|t| t.weight).sum::<f64>();
    diff / 2.0
}

/// One learner on one seed: unallocated GPU % at 100 % arrived, and (online learners) the learned mix's
/// distance to the second workload's at each of [`CHECKPOINTS`] reached.
#[derive(Debug, Clone)]
pub struct DriftRun {
    pub learner: Learner,
    pub seed: u64,
    pub unallocated_pct: Option<f64>,
    pub distances: Vec<Option<f64>>,
}

/// Replays every learner on every seed.
pub fn run(
    nodes: &[Node],
    first: &[TracePod],
    second: &[TracePod],
    learners: &[Learner],
    seeds: &[u64],
) -> Vec<DriftRun> {
    let tune = PAPER_TUNE;
    let both: Vec<&TracePod> = first.iter().chain(second).collect();
    let prior = TypicalShapes::from_pods(both.iter().map(|p| &p.pod), TypicalShapes::DEFAULT_COVERAGE);
    let truth = TypicalShapes::from_pods(second.iter().map(|p| &p.pod), TypicalShapes::DEFAULT_COVERAGE);
    let stale = TypicalShapes::from_pods(first.iter().map(|p| &p.pod), TypicalShapes::DEFAULT_COVERAGE);
    let capacity_milli: i64 = nodes.iter().map(|n| n.gpu_capacity_milli()).sum();
    let pairs: Vec<(Learner, u64)> = learners.iter().flat_map(|&l| seeds.iter().map(move |&s| (l, s))).collect();
    pairs
        .par_iter()
        .map(|&(learner, seed)| {
            let started = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (stream, switch) = drift_stream(first, second, capacity_milli, tune, &mut rng);
            let mut named = nodes.to_vec();
            prefix_node_names(&mut named, &mut rng);
            // The learner's whole state is its shape counts: followed here on the same arrivals.
            let distances = match learner.half_life() {
                None => vec![None; CHECKPOINTS.len()],
                Some(half_life) => {
                    let mut counts = ShapeCounts::with_half_life(half_life);
                    let mut at = Vec::new();
                    for (i, p) in stream.iter().enumerate() {
                        counts.add(&p.pod);
                        if i + 1 > switch && CHECKPOINTS.contains(&(i + 1 - switch)) {
                            at.push((i + 1 - switch, counts.typical(TypicalShapes::DEFAULT_COVERAGE)));
                        }
                    }
                    CHECKPOINTS
                        .iter()
                        .map(|k| at.iter().find(|(n, _)| n == k).map(|(_, t)| mix_distance(t, &truth)))
                        .collect()
                }
            };
            let state = ReplayState::with_stream(named, stream, learner.profile(seed, &prior, &stale), prior.clone());
            let summary = run_to_end(state, &learner.label(), seed, tune, started, &mut |_, _| {});
            DriftRun { learner, seed, unallocated_pct: summary.unallocated_gpu_pct_at_100, distances }
        })
        .collect()
}

pub fn markdown(runs: &[DriftRun], learners: &[Learner]) -> String {
    let mut out = String::from("| learner | unallocated GPU % at 100 % arrived |");
    for k in CHECKPOINTS {
        let _ = write!(out, " mix distance {k} pods after the switch |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(CHECKPOINTS.len()));
    out.push('\n');
    for learner in learners {
        let mine: Vec<&DriftRun> = runs.iter().filter(|r| r.learner == *learner).collect();
        let (mean, sd) = mean_sd(&mine.iter().filter_map(|r| r.unallocated_pct).collect::<Vec<_>>());
        let _ = write!(out, "| {} | {mean:.2} ± {sd:.2} |", learner.label());
        for i in 0..CHECKPOINTS.len() {
            let values: Vec<f64> = mine.iter().filter_map(|r| r.distances[i]).collect();
            if values.is_empty() {
                out.push_str(" — |");
            } else {
                let _ = write!(out, " {:.2} |", mean_sd(&values).0);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlsched::core::{GpuRequest, Pod, Resources};

    fn mix(shares: &[(i64, u64)]) -> TypicalShapes {
        let pods: Vec<Pod> = shares
            .iter()
            .flat_map(|&(m, n)| {
                (0..n).map(move |i| Pod::new(format!("p{m}-{i}"), Resources::new(1000, 1, 1), GpuRequest::shared(m)))
            })
            .collect();
        TypicalShapes::from_pods(&pods, 1.0)
    }

    #[test]
    fn mix_distance_is_zero_for_equal_mixes_and_one_for_disjoint() {
        assert!(mix_distance(&mix(&[(100, 1), (200, 3)]), &mix(&[(200, 6), (100, 2)])) < 1e-12);
        assert!((mix_distance(&mix(&[(100, 1)]), &mix(&[(200, 1)])) - 1.0).abs() < 1e-12);
        assert!((mix_distance(&mix(&[(100, 1), (200, 1)]), &mix(&[(200, 1)])) - 0.5).abs() < 1e-12);
    }
}
