//! `mlsim mig`: a MIG cluster under a mixed-profile workload, replayed like the GPU-sharing traces (one
//! pod at a time, no departures, stream tuned to 1.3x the cluster's slices), comparing a plain
//! least-allocated policy, a plain most-allocated one and mlsched's fragmentation-aware MIG packing.
//!
//! No public trace records MIG requests, so the workload is synthetic and stated here: profiles drawn
//! independently from `--mix` (default 40% 1g.10gb, 20% 2g.20gb, 25% 3g.40gb, 15% 7g.80gb: many small
//! inference slices and some whole-GPU training), each pod also asking 4 CPUs and 16 GiB, on nodes of 8
//! A100-80GB with 128 CPUs and 1 TiB, every GPU MIG-enabled and repartitionable while idle.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use mlsched::core::mig::{MIG_SLICES, MigGeometry};
use mlsched::core::{GpuRequest, MIB, MigRequest, Node, Pod, Resources, Snapshot};
use mlsched::framework::{Profile, schedule_one};
use mlsched::plugins::mig_packing::ProfileMix;
use mlsched::plugins::policy::{Policy, PolicyInputs, default_filters, profile_for};
use mlsched::plugins::{MigLeastAllocated, MigMostAllocated};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::buckets::ArrivalBuckets;
use crate::compare::mean_sd;
use crate::replay::round2;

pub const GPU_MODEL: &str = "A100-SXM4-80GB";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum MigPolicy {
    LeastAllocated,
    MostAllocated,
    Mlsched,
}

impl MigPolicy {
    pub const ALL: [MigPolicy; 3] = [MigPolicy::LeastAllocated, MigPolicy::MostAllocated, MigPolicy::Mlsched];

    pub fn name(self) -> &'static str {
        match self {
            MigPolicy::LeastAllocated => "least-allocated",
            MigPolicy::MostAllocated => "most-allocated",
            MigPolicy::Mlsched => "mlsched",
        }
    }

    fn profile(self) -> Profile {
        let p = default_filters(Profile::new(self.name()));
        match self {
            MigPolicy::LeastAllocated => p.score_and_pick_gpus(MigLeastAllocated, 1),
            MigPolicy::MostAllocated => p.score(MigMostAllocated, 1),
            // The scheduler's own online profile, unchanged: its MIG packing learns the mix from arrivals.
            MigPolicy::Mlsched => profile_for(Policy::MlschedOnline, PolicyInputs::default()),
        }
    }
}

/// `1g.10gb=40,2g.20gb=20,...` into (profile, weight), checking every profile exists on the GPU.
pub fn parse_mix(text: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let geometry = MigGeometry::for_model(GPU_MODEL).expect("the scenario's GPU has MIG");
    let mut mix = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) =
            part.split_once('=').with_context(|| format!("mix entry {part:?} is not PROFILE=WEIGHT"))?;
        let weight: f64 = weight.trim().parse().with_context(|| format!("mix weight in {part:?}"))?;
        if geometry.profile(name.trim()).is_none() {
            let known: Vec<_> = geometry.profiles.iter().map(|p| p.name).collect();
            bail!("unknown MIG profile {name:?} for {GPU_MODEL}; known: {}", known.join(", "));
        }
        if !(weight.is_finite() && weight > 0.0) {
            bail!("mix weight of {name} must be positive, got {weight}");
        }
        mix.push((name.trim().to_string(), weight));
    }
    if mix.is_empty() {
        bail!("empty MIG mix");
    }
    Ok(mix)
}

pub const DEFAULT_MIX: &str = "1g.10gb=40,2g.20gb=20,3g.40gb=25,7g.80gb=15";

#[derive(Debug, Clone, Serialize)]
pub struct MigSummary {
    pub policy: String,
    pub seed: u64,
    pub nodes: usize,
    pub slices: i64,
    pub pods_arrived: usize,
    pub pods_failed: usize,
    pub failed_by_profile: BTreeMap<String, usize>,
    pub unallocated_slices_pct_at_100: Option<f64>,
    /// Free slices that the workload's profiles cannot use where they are (MIG fragmentation against the
    /// true mix), as % of all slices, at 100% arrived.
    pub stranded_slices_pct_at_100: Option<f64>,
    pub elapsed_seconds: f64,
}

pub fn cluster(nodes: usize) -> Vec<Node> {
    (0..nodes)
        .map(|i| {
            Node::new(format!("mig-{i:04}"), Resources::new(128_000, 1024 * 1024 * MIB, 110))
                .with_mig_gpus(8, GPU_MODEL)
                .expect("A100 has MIG")
        })
        .collect()
}

fn slices_of(profile: &str) -> i64 {
    let g = MigGeometry::for_model(GPU_MODEL).expect("A100 has MIG");
    g.profile(profile).map_or(0, |p| i64::from(g.profiles[p].slices))
}

/// Profiles drawn from `mix` until the next would take the stream past `tune` x the cluster's slices.
pub fn stream(mix: &[(String, f64)], capacity_slices: i64, tune: f64, seed: u64) -> Vec<Pod> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total: f64 = mix.iter().map(|(_, w)| w).sum();
    let (mut pods, mut arrived) = (Vec::new(), 0i64);
    loop {
        let mut x = rng.random_range(0.0..total);
        let (name, _) = mix
            .iter()
            .find(|(_, w)| {
                x -= w;
                x < 0.0
            })
            .unwrap_or(&mix[mix.len() - 1]);
        let slices = slices_of(name);
        if (arrived + slices) as f64 > tune * capacity_slices as f64 {
            return pods;
        }
        arrived += slices;
        let mut pod = Pod::new(
            format!("mig-pod-{:05}", pods.len()),
            Resources::new(4000, 16 * 1024 * MIB, 1),
            GpuRequest::none(),
        );
        pod.mig = Some(MigRequest { profile: name.clone(), count: 1 });
        pods.push(pod);
    }
}

fn stranded_slices(snapshot: &Snapshot, truth: &ProfileMix) -> f64 {
    snapshot.nodes().iter().flat_map(|n| &n.gpus).filter_map(|g| g.mig.as_ref()).map(|m| truth.gpu_frag(m)).sum()
}

pub fn replay(nodes: usize, mix: &[(String, f64)], policy: MigPolicy, seed: u64, tune: f64) -> MigSummary {
    let started = std::time::Instant::now();
    let mut snapshot = Snapshot::new(cluster(nodes)).expect("generated names are unique");
    let capacity = (nodes * 8) as i64 * i64::from(MIG_SLICES);
    let pods = stream(mix, capacity, tune, seed);
    let truth = ProfileMix::from_counts(mix.iter().map(|(n, w)| (n.as_str(), (w * 1000.0).round() as u64)));
    let mut profile = policy.profile();
    let mut buckets = ArrivalBuckets::new(capacity);
    let (mut arrived, mut used) = (0i64, 0i64);
    let mut failed_by_profile: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &pods {
        let request = pod.mig.as_ref().expect("every pod of the stream asks for MIG");
        let slices = slices_of(&request.profile);
        arrived += slices;
        profile.observe_arrival(pod);
        match schedule_one(&profile, &snapshot, pod) {
            Ok(decision) => {
                snapshot.assume_decision(pod, &decision).expect("a feasible decision can be assumed");
                used += slices;
            }
            Err(_) => *failed_by_profile.entry(request.profile.clone()).or_insert(0) += 1,
        }
        buckets.record(arrived, used, stranded_slices(&snapshot, &truth));
    }
    let alloc = buckets.alloc_pct();
    MigSummary {
        policy: policy.name().to_string(),
        seed,
        nodes,
        slices: capacity,
        pods_arrived: pods.len(),
        pods_failed: failed_by_profile.values().sum(),
        failed_by_profile,
        unallocated_slices_pct_at_100: alloc[100].map(|a| round2(100.0 - a)),
        stranded_slices_pct_at_100: buckets.frag_pct()[100],
        elapsed_seconds: started.elapsed().as_secs_f64(),
    }
}

pub fn compare(nodes: usize, mix: &[(String, f64)], seeds: &[u64], tune: f64) -> Vec<MigSummary> {
    let pairs: Vec<(MigPolicy, u64)> =
        MigPolicy::ALL.iter().flat_map(|&p| seeds.iter().map(move |&s| (p, s))).collect();
    pairs.par_iter().map(|&(p, s)| replay(nodes, mix, p, s, tune)).collect()
}

pub fn markdown(summaries: &[MigSummary], mix: &[(String, f64)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "| policy | unallocated slices % at 100% arrived | stranded slices % at 100% arrived | failed pods |",
    );
    for (name, _) in mix {
        let _ = write!(out, " failed {name} |");
    }
    out.push_str("\n|---|---|---|---|");
    out.push_str(&"---|".repeat(mix.len()));
    out.push('\n');
    for policy in MigPolicy::ALL {
        let runs: Vec<&MigSummary> = summaries.iter().filter(|s| s.policy == policy.name()).collect();
        let stat =
            |f: &dyn Fn(&MigSummary) -> Option<f64>| mean_sd(&runs.iter().filter_map(|s| f(s)).collect::<Vec<_>>());
        let (u, us) = stat(&|s| s.unallocated_slices_pct_at_100);
        let (st, sts) = stat(&|s| s.stranded_slices_pct_at_100);
        let (f, _) = stat(&|s| Some(s.pods_failed as f64));
        let _ = write!(out, "| {} | {u:.2} ± {us:.2} | {st:.2} ± {sts:.2} | {f:.0} |", policy.name());
        for (name, _) in mix {
            let (n, _) = stat(&|s| Some(*s.failed_by_profile.get(name).unwrap_or(&0) as f64));
            let _ = write!(out, " {n:.0} |");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parsing_rejects_unknown_profiles_and_bad_weights() {
        assert_eq!(parse_mix(DEFAULT_MIX).unwrap().len(), 4);
        assert!(parse_mix("1g.5gb=10").unwrap_err().to_string().contains("unknown MIG profile"));
        assert!(parse_mix("1g.10gb=-1").is_err());
        assert!(parse_mix("1g.10gb").is_err());
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn the_stream_reaches_the_tuned_slice_count_and_follows_the_mix() {
        let mix = parse_mix("1g.10gb=3,7g.80gb=1").unwrap();
        let pods = stream(&mix, 8000, 1.3, 42);
        let slices: i64 = pods.iter().map(|p| slices_of(&p.mig.as_ref().unwrap().profile)).sum();
        assert!(slices <= 10_400 && slices > 10_400 - 8, "{slices}");
        let small = pods.iter().filter(|p| p.mig.as_ref().unwrap().profile == "1g.10gb").count() as f64;
        let share = small / pods.len() as f64;
        assert!((share - 0.75).abs() < 0.03, "{share}");
    }
}
