//! NVIDIA Multi-Instance GPU (MIG): which instances a GPU can still carve, and where.
//!
//! An A100 or H100 has 8 memory slices and 7 compute slices. A MIG profile takes a fixed number of
//! memory slices and may only start at fixed positions (NVIDIA's placement table), so free slices are not
//! all alike: two free slices at positions 3 and 4 cannot host a 2-slice profile, which must start at 0,
//! 2 or 4. That is why MIG packing is a placement problem, not a count, and why the core models each
//! GPU's occupied slices rather than the node-level counts the device plugin advertises.
//!
//! Pods ask for profiles by the device plugin's mixed-strategy names (`nvidia.com/mig-3g.40gb: 1`).

use std::fmt;

pub const MIG_RESOURCE_PREFIX: &str = "nvidia.com/mig-";

/// Memory slices of a MIG-capable GPU.
pub const MIG_SLICES: u8 = 8;
/// Compute slices of a MIG-capable GPU.
pub const MIG_COMPUTE: u8 = 7;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MigProfile {
    pub name: &'static str,
    pub compute: u8,
    pub slices: u8,
    pub starts: &'static [u8],
}

/// The profiles of one GPU family, smallest first.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MigGeometry {
    pub family: &'static str,
    pub profiles: &'static [MigProfile],
}

const fn profile(name: &'static str, compute: u8, slices: u8, starts: &'static [u8]) -> MigProfile {
    MigProfile { name, compute, slices, starts }
}

/// A100 80GB and H100 80GB.
pub static GPU_80GB: MigGeometry = MigGeometry {
    family: "80GB",
    profiles: &[
        profile("1g.10gb", 1, 1, &[0, 1, 2, 3, 4, 5, 6]),
        profile("1g.20gb", 1, 2, &[0, 2, 4, 6]),
        profile("2g.20gb", 2, 2, &[0, 2, 4]),
        profile("3g.40gb", 3, 4, &[0, 4]),
        profile("4g.40gb", 4, 4, &[0]),
        profile("7g.80gb", 7, 8, &[0]),
    ],
};

/// A100 40GB.
pub static GPU_40GB: MigGeometry = MigGeometry {
    family: "40GB",
    profiles: &[
        profile("1g.5gb", 1, 1, &[0, 1, 2, 3, 4, 5, 6]),
        profile("1g.10gb", 1, 2, &[0, 2, 4, 6]),
        profile("2g.10gb", 2, 2, &[0, 2, 4]),
        profile("3g.20gb", 3, 4, &[0, 4]),
        profile("4g.20gb", 4, 4, &[0]),
        profile("7g.40gb", 7, 8, &[0]),
    ],
};

impl MigGeometry {
    /// The geometry of a GPU model name as the device plugin labels it (`NVIDIA-A100-SXM4-40GB`, ...).
    pub fn for_model(model: &str) -> Option<&'static MigGeometry> {
        let m = model.to_ascii_uppercase();
        if !(m.contains("A100") || m.contains("H100") || m.contains("A30")) {
            return None;
        }
        if m.contains("40GB") { Some(&GPU_40GB) } else { Some(&GPU_80GB) }
    }

    pub fn profile(&self, name: &str) -> Option<usize> {
        self.profiles.iter().position(|p| p.name == name)
    }
}

/// One MIG instance on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MigInstance {
    pub profile: u8,
    pub start: u8,
}

/// The instances carved on one MIG-enabled GPU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MigState {
    pub geometry: &'static MigGeometry,
    /// Bit i set: memory slice i is taken.
    pub used_slices: u8,
    pub used_compute: u8,
}

impl MigState {
    pub fn new(geometry: &'static MigGeometry) -> Self {
        MigState { geometry, used_slices: 0, used_compute: 0 }
    }

    pub fn free_slices(&self) -> u8 {
        MIG_SLICES - self.used_slices.count_ones() as u8
    }

    pub fn is_idle(&self) -> bool {
        self.used_slices == 0
    }

    fn mask(profile: &MigProfile, start: u8) -> u8 {
        (((1u16 << profile.slices) - 1) << start) as u8
    }

    /// Start positions where `profile` can be carved now, lowest first.
    pub fn free_starts(&self, profile: usize) -> impl Iterator<Item = u8> + '_ {
        let p = &self.geometry.profiles[profile];
        let compute_ok = self.used_compute + p.compute <= MIG_COMPUTE;
        p.starts.iter().copied().filter(move |&s| compute_ok && self.used_slices & Self::mask(p, s) == 0)
    }

    pub fn can_place(&self, profile: usize) -> bool {
        self.free_starts(profile).next().is_some()
    }

    pub fn place(&mut self, instance: MigInstance) -> Result<(), String> {
        let p = self.geometry.profiles.get(instance.profile as usize).ok_or("no such MIG profile")?;
        if !p.starts.contains(&instance.start) {
            return Err(format!("{} cannot start at slice {}", p.name, instance.start));
        }
        let mask = Self::mask(p, instance.start);
        if self.used_slices & mask != 0 || self.used_compute + p.compute > MIG_COMPUTE {
            return Err(format!("{} at slice {} overlaps an instance", p.name, instance.start));
        }
        self.used_slices |= mask;
        self.used_compute += p.compute;
        Ok(())
    }

    pub fn release(&mut self, instance: MigInstance) {
        let p = &self.geometry.profiles[instance.profile as usize];
        self.used_slices &= !Self::mask(p, instance.start);
        self.used_compute -= p.compute;
    }

    /// Free slices that `profile` could never use in this state: not covered by any placement of it that
    /// is still possible. Summed over the profiles a workload asks for, this is MIG's fragmentation.
    pub fn unusable_slices(&self, profile: usize) -> u8 {
        let p = &self.geometry.profiles[profile];
        let usable = self.free_starts(profile).fold(0u8, |acc, s| acc | Self::mask(p, s));
        let free = !self.used_slices;
        (free & !usable).count_ones() as u8
    }
}

/// A pod's MIG request: `count` instances of one profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MigRequest {
    pub profile: String,
    pub count: u32,
}

impl MigRequest {
    pub fn resource_name(&self) -> String {
        format!("{MIG_RESOURCE_PREFIX}{}", self.profile)
    }
}

impl fmt::Display for MigRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x {}", self.count, self.resource_name())
    }
}

/// Places `request` greedily with `choose(candidates)` picking each instance among every (GPU index,
/// instance) still possible on `gpus`; `None` if the GPUs cannot hold all of them.
pub fn place_greedily(
    gpus: &[super::GpuDevice],
    request: &MigRequest,
    mut choose: impl FnMut(&[(usize, MigState)], &[(usize, MigInstance)]) -> Option<(usize, MigInstance)>,
) -> Option<Vec<(usize, MigInstance)>> {
    let mut states: Vec<(usize, MigState)> =
        gpus.iter().enumerate().filter_map(|(i, g)| g.mig.clone().map(|m| (i, m))).collect();
    let mut placed = Vec::with_capacity(request.count as usize);
    for _ in 0..request.count {
        let mut candidates = Vec::new();
        for (i, state) in &states {
            let Some(profile) = state.geometry.profile(&request.profile) else { continue };
            candidates
                .extend(state.free_starts(profile).map(|start| (*i, MigInstance { profile: profile as u8, start })));
        }
        let (gpu, instance) = choose(&states, &candidates)?;
        states.iter_mut().find(|(i, _)| *i == gpu)?.1.place(instance).ok()?;
        placed.push((gpu, instance));
    }
    Some(placed)
}

/// Default MIG placement: the GPU with the fewest free slices that still fits, the lowest start there.
pub fn most_allocated_mig(gpus: &[super::GpuDevice], request: &MigRequest) -> Option<Vec<(usize, MigInstance)>> {
    place_greedily(gpus, request, |states, candidates| {
        let free = |gpu: usize| states.iter().find(|(i, _)| *i == gpu).map_or(u8::MAX, |(_, s)| s.free_slices());
        candidates.iter().copied().min_by_key(|(gpu, inst)| (free(*gpu), *gpu, inst.start))
    })
}

/// Whether `gpus` can carve every instance of `request` now.
pub fn can_hold(gpus: &[super::GpuDevice], request: &MigRequest) -> bool {
    most_allocated_mig(gpus, request).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(name: &str) -> usize {
        GPU_80GB.profile(name).unwrap()
    }

    #[test]
    fn placement_rules_follow_nvidias_table() {
        let mut gpu = MigState::new(&GPU_80GB);
        gpu.place(MigInstance { profile: idx("3g.40gb") as u8, start: 0 }).unwrap();
        assert_eq!(gpu.free_starts(idx("3g.40gb")).collect::<Vec<_>>(), vec![4]);
        assert_eq!(gpu.free_starts(idx("2g.20gb")).collect::<Vec<_>>(), vec![4]);
        assert!(!gpu.can_place(idx("7g.80gb")));
        // A 1g at slice 4 blocks the second 3g, though 3 slices stay free next to it.
        gpu.place(MigInstance { profile: idx("1g.10gb") as u8, start: 4 }).unwrap();
        assert!(!gpu.can_place(idx("3g.40gb")));
        assert_eq!(gpu.free_slices(), 3);
        assert!(gpu.place(MigInstance { profile: idx("2g.20gb") as u8, start: 3 }).is_err(), "2g cannot start at 3");
        assert!(gpu.place(MigInstance { profile: idx("2g.20gb") as u8, start: 4 }).is_err(), "slice 4 is taken");
    }

    #[test]
    fn compute_slices_bound_seven_1g_instances() {
        let mut gpu = MigState::new(&GPU_80GB);
        for s in 0..7 {
            gpu.place(MigInstance { profile: idx("1g.10gb") as u8, start: s }).unwrap();
        }
        assert_eq!(gpu.free_slices(), 1);
        // Slice 7 is free but no profile can use it: 1g.20gb at 6 overlaps, and compute is spent.
        assert!(GPU_80GB.profiles.iter().enumerate().all(|(p, _)| !gpu.can_place(p)));
        assert_eq!(gpu.unusable_slices(idx("1g.10gb")), 1);
    }

    #[test]
    fn release_restores_the_state_and_unusable_slices_count_blocked_space() {
        let mut gpu = MigState::new(&GPU_80GB);
        let one = MigInstance { profile: idx("1g.10gb") as u8, start: 1 };
        gpu.place(one).unwrap();
        // 3g can still start at 4: slices 4..8 usable, slices 0, 2, 3 are not.
        assert_eq!(gpu.unusable_slices(idx("3g.40gb")), 3);
        assert_eq!(gpu.unusable_slices(idx("7g.80gb")), 7);
        gpu.release(one);
        assert_eq!(gpu, MigState::new(&GPU_80GB));
        assert_eq!(gpu.unusable_slices(idx("7g.80gb")), 0);
    }

    #[test]
    fn geometry_by_model_name() {
        assert_eq!(MigGeometry::for_model("NVIDIA-A100-SXM4-40GB").unwrap().family, "40GB");
        assert_eq!(MigGeometry::for_model("NVIDIA-H100-80GB-HBM3").unwrap().family, "80GB");
        assert!(MigGeometry::for_model("Tesla-T4").is_none());
        assert_eq!(GPU_40GB.profile("3g.20gb"), Some(3));
    }
}
