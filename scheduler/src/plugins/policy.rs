//! Named policies: what `--policy NAME` (simulator) and `policy:` (scheduler config) resolve to.

use std::fmt;
use std::str::FromStr;

use super::*;
use crate::frag::TypicalShapes;
use crate::framework::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    Random,
    DotProd,
    GpuClustering,
    GpuPacking,
    BestFit,
    Fgd,
    /// mlsched's own packing policy, given the workload's typical shapes as FGD is.
    Mlsched,
    /// mlsched's packing policy learning the shape distribution online from the arrivals so far.
    MlschedOnline,
}

impl Policy {
    pub const ALL: [Policy; 6] =
        [Policy::Random, Policy::DotProd, Policy::GpuClustering, Policy::GpuPacking, Policy::BestFit, Policy::Fgd];

    /// The six paper policies and mlsched's own two.
    pub const EXTENDED: [Policy; 8] = [
        Policy::Random,
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
        Policy::Mlsched,
        Policy::MlschedOnline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Random => "random",
            Policy::DotProd => "dotprod",
            Policy::GpuClustering => "gpuclustering",
            Policy::GpuPacking => "gpupacking",
            Policy::BestFit => "bestfit",
            Policy::Fgd => "fgd",
            Policy::Mlsched => "mlsched",
            Policy::MlschedOnline => "mlsched-online",
        }
    }

    /// Whether the policy needs the workload's typical shapes.
    pub fn needs_typical_shapes(self) -> bool {
        matches!(self, Policy::Fgd | Policy::Mlsched)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Policy::EXTENDED.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<_> = Policy::EXTENDED.iter().map(|p| p.name()).collect();
            format!("unknown policy {s:?}; known: {}", names.join(", "))
        })
    }
}

/// What a policy may need beyond the cluster: a seed for the random one, the workload's shapes for the
/// fragmentation-aware ones.
#[derive(Debug, Clone, Default)]
pub struct PolicyInputs {
    pub seed: u64,
    pub typical: TypicalShapes,
}

/// The filters every profile runs: the default kube-scheduler set that applies to these pods plus GPU fit.
pub fn default_filters(profile: Profile) -> Profile {
    profile
        .filter(NodeUnschedulable)
        .filter(NodeAffinityFilter)
        .filter(TaintToleration)
        .filter(ResourcesFit)
        .filter(GpuFit)
        .filter(MigFit)
}

/// The policy the scheduler runs when its config names none.
pub const DEFAULT_POLICY: Policy = Policy::MlschedOnline;
/// The weight of the policy's score plugin when the config names none.
pub const DEFAULT_SCORE_WEIGHT: i64 = 1000;
/// `NetworkProximityScore` weighs the policy's weight divided by this: half.
pub const NEAR_WORKLOAD_WEIGHT_DIVISOR: i64 = 2;

/// The scheduler's profile: the policy's score plugins at `weight`, then `NetworkProximityScore` at
/// `weight / NEAR_WORKLOAD_WEIGHT_DIVISOR`. Proximity scores 0 everywhere for pods without `near_nodes`
/// (no `mlsched.io/near-workload` annotation), so only those pods feel it, and for them it breaks
/// near-ties of the policy towards the workload's nodes rather than overriding the policy. The live
/// scheduler and the simulator's autoscaling runs place pods with this one profile.
pub fn scheduler_profile(
    policy: Policy,
    inputs: PolicyInputs,
    weight: i64,
    proximity: Option<NetworkProximityScore>,
) -> Profile {
    let mut profile = profile_for(policy, inputs);
    for score in &mut profile.scores {
        score.weight = weight;
    }
    match proximity {
        Some(p) => profile.score(p, (weight / NEAR_WORKLOAD_WEIGHT_DIVISOR).max(1)),
        None => profile,
    }
}

/// `mlsched-online`'s score plugins added to `profile` at weight 1000: `learner` (an online
/// [`MlschedScore`], whichever half-life) and MIG slice packing.
pub fn with_mlsched_online(profile: Profile, learner: MlschedScore) -> Profile {
    const WEIGHT: i64 = 1000;
    profile.score_and_pick_gpus(learner, WEIGHT).score(MigFragScore::default(), WEIGHT)
}

/// One score plugin, weight 1000, as the FGD paper's runs were configured.
pub fn profile_for(policy: Policy, inputs: PolicyInputs) -> Profile {
    let profile = default_filters(Profile::new(policy.name()));
    const WEIGHT: i64 = 1000;
    match policy {
        Policy::Random => profile.score_and_pick_gpus(RandomScore { seed: inputs.seed }, WEIGHT),
        Policy::DotProd => profile.score(DotProductScore, WEIGHT),
        Policy::GpuClustering => profile.score(GpuClusteringScore, WEIGHT),
        Policy::GpuPacking => profile.score(GpuPackingScore, WEIGHT),
        Policy::BestFit => profile.score(BestFitScore, WEIGHT),
        Policy::Fgd => profile.score_and_pick_gpus(FgdScore::new(inputs.typical), WEIGHT),
        // MIG pods are packed by slice placement; the GPU-share policy sees them as CPU-only pods.
        Policy::Mlsched => profile
            .score_and_pick_gpus(MlschedScore::with_prior(inputs.typical), WEIGHT)
            .score(MigFragScore::default(), WEIGHT),
        Policy::MlschedOnline => with_mlsched_online(profile, MlschedScore::online()),
    }
}
