//! MIG placement policies. Two plain baselines, least-allocated (spread) and most-allocated (pack), and
//! mlsched's fragmentation-aware packing.
//!
//! MIG fragmentation is measured like the FGD paper measures GPU-share fragmentation, against the
//! profiles the workload asks for: for each profile, the free slices of a GPU that no still-possible
//! placement of that profile covers are fragments to it; the sum is weighted by each profile's share of
//! the arrivals seen so far (learned online; uniform before the first arrival). `MigFragScore` carves
//! each instance where that fragmentation grows least, and among equal growth on the fullest GPU, so
//! idle GPUs stay whole for the 7-slice profiles and half-used GPUs keep the aligned 4-slice hole a
//! 3g profile needs.

use std::sync::Mutex;

use rustc_hash::FxHashMap;

use crate::core::mig::{MIG_SLICES, MigInstance, MigState, place_greedily};
use crate::core::{GpuDevice, MigRequest, NodeId, Pod, Snapshot};
use crate::framework::ScorePlugin;

/// Free and total MIG slices of a node's MIG-enabled GPUs.
fn slices(gpus: &[GpuDevice]) -> (i64, i64) {
    gpus.iter()
        .filter_map(|g| g.mig.as_ref())
        .fold((0, 0), |(f, t), m| (f + m.free_slices() as i64, t + MIG_SLICES as i64))
}

fn used_share_pct(gpus: &[GpuDevice]) -> i64 {
    let (free, total) = slices(gpus);
    if total == 0 { 0 } else { 100 * (total - free) / total }
}

/// Spread: the emptiest node, the emptiest GPU, the lowest start.
pub struct MigLeastAllocated;

impl ScorePlugin for MigLeastAllocated {
    fn name(&self) -> &'static str {
        "MigLeastAllocated"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        if pod.mig.is_none() { 0 } else { 100 - used_share_pct(&snapshot.nodes()[node].gpus) }
    }

    fn pick_mig(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Option<Vec<(usize, MigInstance)>> {
        place_greedily(&snapshot.nodes()[node].gpus, pod.mig.as_ref()?, |states, candidates| {
            let free = |gpu: usize| states.iter().find(|(i, _)| *i == gpu).map_or(0, |(_, s)| s.free_slices());
            candidates.iter().copied().min_by_key(|(gpu, inst)| (std::cmp::Reverse(free(*gpu)), *gpu, inst.start))
        })
    }
}

/// Pack: the fullest node; inside it the profile default (the fullest GPU, the lowest start).
pub struct MigMostAllocated;

impl ScorePlugin for MigMostAllocated {
    fn name(&self) -> &'static str {
        "MigMostAllocated"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        if pod.mig.is_none() { 0 } else { used_share_pct(&snapshot.nodes()[node].gpus) }
    }
}

/// Profile frequencies learned from arrivals, by profile name.
#[derive(Debug, Default, Clone)]
pub struct ProfileMix {
    counts: FxHashMap<String, u64>,
    total: u64,
}

impl ProfileMix {
    /// A mix with the given counts per profile name.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let mut mix = ProfileMix::default();
        for (name, n) in counts {
            *mix.counts.entry(name.to_string()).or_insert(0) += n;
            mix.total += n;
        }
        mix
    }

    pub fn observe(&mut self, request: &MigRequest) {
        *self.counts.entry(request.profile.clone()).or_insert(0) += u64::from(request.count);
        self.total += u64::from(request.count);
    }

    /// The weight of each profile of `state`'s geometry: its share of arrivals, or uniform before any.
    fn weights(&self, state: &MigState) -> Vec<f64> {
        let n = state.geometry.profiles.len();
        if self.total == 0 {
            return vec![1.0 / n as f64; n];
        }
        state
            .geometry
            .profiles
            .iter()
            .map(|p| self.counts.get(p.name).copied().unwrap_or(0) as f64 / self.total as f64)
            .collect()
    }

    /// MIG fragmentation of one GPU, in slices.
    pub fn gpu_frag(&self, state: &MigState) -> f64 {
        self.weights(state).iter().enumerate().map(|(p, w)| w * state.unusable_slices(p) as f64).sum()
    }
}

/// mlsched's MIG packing: least fragmentation growth, then the fullest GPU and node.
#[derive(Default)]
pub struct MigFragScore {
    mix: Mutex<ProfileMix>,
}

impl MigFragScore {
    pub fn with_mix(mix: ProfileMix) -> Self {
        MigFragScore { mix: Mutex::new(mix) }
    }

    fn plan(&self, gpus: &[GpuDevice], request: &MigRequest) -> Option<(f64, Vec<(usize, MigInstance)>)> {
        let mix = self.mix.lock().expect("mix lock").clone();
        let mut growth = 0.0;
        let placed = place_greedily(gpus, request, |states, candidates| {
            let best = candidates
                .iter()
                .map(|&(gpu, inst)| {
                    let state = &states.iter().find(|(i, _)| *i == gpu).expect("candidate GPU has a state").1;
                    let mut after = state.clone();
                    after.place(inst).expect("candidates are placeable");
                    let delta = mix.gpu_frag(&after) - mix.gpu_frag(state);
                    ((delta * 1e6).round() as i64, state.free_slices(), gpu, inst.start, delta, inst)
                })
                .min_by_key(|c| (c.0, c.1, c.2, c.3))?;
            growth += best.4;
            Some((best.2, best.5))
        })?;
        Some((growth, placed))
    }
}

impl ScorePlugin for MigFragScore {
    fn name(&self) -> &'static str {
        "MigFragScore"
    }

    /// The mix changes only with MIG arrivals; scores depend on nothing else beyond the pod and node.
    fn cache_generation(&self) -> Option<u64> {
        Some(self.mix.lock().expect("mix lock").total)
    }

    /// Lexicographic in one integer: fragmentation growth (milli-slices, less is better) first, then how
    /// full the node already is.
    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        let Some(request) = &pod.mig else { return 0 };
        let gpus = &snapshot.nodes()[node].gpus;
        match self.plan(gpus, request) {
            Some((growth, _)) => -((growth * 1000.0).round() as i64) * 1000 + used_share_pct(gpus),
            None => i64::MIN / 4,
        }
    }

    fn pick_mig(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Option<Vec<(usize, MigInstance)>> {
        self.plan(&snapshot.nodes()[node].gpus, pod.mig.as_ref()?).map(|(_, placed)| placed)
    }

    fn observe_arrival(&mut self, pod: &Pod) {
        if let Some(request) = &pod.mig {
            self.mix.get_mut().expect("mix lock").observe(request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, MIB, Node, Resources};
    use crate::framework::{Profile, schedule_one};
    use crate::plugins::policy::{Policy, PolicyInputs, default_filters, profile_for};

    fn mig_pod(name: &str, profile: &str) -> Pod {
        let mut p = Pod::new(name, Resources::new(100, MIB, 1), GpuRequest::none());
        p.mig = Some(MigRequest { profile: profile.into(), count: 1 });
        p
    }

    fn cluster() -> Snapshot {
        let n =
            |name: &str| Node::new(name, Resources::new(64000, 1 << 40, 110)).with_mig_gpus(2, "A100-80GB").unwrap();
        Snapshot::new(vec![n("a"), n("b")]).unwrap()
    }

    fn place(s: &mut Snapshot, profile: &Profile, pod: &Pod) -> (String, Vec<(usize, MigInstance)>) {
        let d = schedule_one(profile, s, pod).unwrap();
        s.assume_decision(pod, &d).unwrap();
        (s.nodes()[d.node].name.clone(), d.mig)
    }

    #[test]
    fn frag_aware_packing_keeps_the_aligned_hole_a_3g_needs() {
        // One node, two GPUs: GPU 0 holds a 3g.40gb at slice 0 (slices 4..8 free), GPU 1 a 1g.10gb at
        // slice 0. A 1g.10gb arrives. Most-allocated takes the fuller GPU 0 at its lowest start, slice 4,
        // and no 3g.40gb fits there any more. Knowing that 3g and 1g both arrive, the frag-aware policy
        // puts it beside the other 1g, where a 3g can still start at slice 4.
        let mut mix = ProfileMix::default();
        for _ in 0..5 {
            mix.observe(&MigRequest { profile: "3g.40gb".into(), count: 1 });
            mix.observe(&MigRequest { profile: "1g.10gb".into(), count: 1 });
        }
        let frag = default_filters(Profile::new("frag")).score_and_pick_gpus(MigFragScore::with_mix(mix), 1);
        let most = default_filters(Profile::new("most")).score(MigMostAllocated, 1);
        // The scheduler's own policy carries the same MIG packing, learning the mix from arrivals.
        let mut mlsched = profile_for(Policy::MlschedOnline, PolicyInputs::default());
        for i in 0..5 {
            mlsched.observe_arrival(&mig_pod(&format!("seen-3g-{i}"), "3g.40gb"));
            mlsched.observe_arrival(&mig_pod(&format!("seen-1g-{i}"), "1g.10gb"));
        }
        for (profile, gpu) in [(&most, 0), (&frag, 1), (&mlsched, 1)] {
            let node = Node::new("n", Resources::new(64000, 1 << 40, 110)).with_mig_gpus(2, "A100-80GB").unwrap();
            let mut s = Snapshot::new(vec![node]).unwrap();
            s.assume_with_mig(&mig_pod("big", "3g.40gb"), 0, &[], &[(0, MigInstance { profile: 3, start: 0 })])
                .unwrap();
            s.assume_with_mig(&mig_pod("one", "1g.10gb"), 0, &[], &[(1, MigInstance { profile: 0, start: 0 })])
                .unwrap();
            let (_, mig) = place(&mut s, profile, &mig_pod("small", "1g.10gb"));
            assert_eq!(mig[0].0, gpu, "{}: 1g carved at {mig:?}", profile.name);
            let three_g_slots: usize =
                s.nodes()[0].gpus.iter().filter(|g| g.mig.as_ref().unwrap().can_place(3)).count();
            assert_eq!(three_g_slots, if gpu == 1 { 2 } else { 1 }, "{}", profile.name);
        }
    }

    #[test]
    fn frag_aware_packing_does_not_break_an_idle_gpu_for_a_small_profile() {
        let mut mix = ProfileMix::default();
        mix.observe(&MigRequest { profile: "7g.80gb".into(), count: 1 });
        mix.observe(&MigRequest { profile: "1g.10gb".into(), count: 3 });
        let frag = default_filters(Profile::new("frag")).score_and_pick_gpus(MigFragScore::with_mix(mix), 1);
        let least = default_filters(Profile::new("least")).score_and_pick_gpus(MigLeastAllocated, 1);
        let mut s = cluster();
        place(&mut s, &frag, &mig_pod("a", "1g.10gb"));
        place(&mut s, &frag, &mig_pod("b", "1g.10gb"));
        let idle = s.nodes().iter().flat_map(|n| &n.gpus).filter(|g| g.is_idle()).count();
        assert_eq!(idle, 3, "both 1g instances share one GPU");
        let mut s = cluster();
        place(&mut s, &least, &mig_pod("a", "1g.10gb"));
        place(&mut s, &least, &mig_pod("b", "1g.10gb"));
        let idle = s.nodes().iter().flat_map(|n| &n.gpus).filter(|g| g.is_idle()).count();
        assert_eq!(idle, 2, "least-allocated spreads them");
    }

    #[test]
    fn the_mix_is_learned_from_arrivals() {
        let mut plugin = MigFragScore::default();
        plugin.observe_arrival(&mig_pod("a", "3g.40gb"));
        plugin.observe_arrival(&mig_pod("b", "3g.40gb"));
        plugin.observe_arrival(&mig_pod("c", "1g.10gb"));
        let state = MigState::new(&crate::core::mig::GPU_80GB);
        let weights = plugin.mix.lock().unwrap().weights(&state);
        assert!((weights[3] - 2.0 / 3.0).abs() < 1e-12 && (weights[0] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(weights[5], 0.0);
    }
}
