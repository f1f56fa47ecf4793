//! Per-GPU device accounting.
//!
//! Every GPU is 1000 milli-GPU. A pod asks for `count` GPUs of `milli_per_gpu` each: whole GPUs are
//! `milli_per_gpu == 1000`, a shared GPU is `count == 1` with less. Tracking each device (not a node-level
//! sum) is what lets a policy see fragments: two GPUs at 500 free each cannot host a 600 pod, while one
//! free GPU can.

use std::sync::Arc;

use super::mig::{MigInstance, MigState};

/// Capacity of one GPU in milli-GPU.
pub const GPU_MILLI: i64 = 1000;

/// The Kubernetes resource name of whole GPUs (NVIDIA device plugin).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GpuDevice {
    pub model: Arc<str>,
    pub used_milli: i64,
    /// Set on a MIG-enabled GPU: it then serves MIG instances only, never whole GPUs or shares.
    pub mig: Option<MigState>,
}

impl GpuDevice {
    pub fn new(model: Arc<str>) -> Self {
        GpuDevice { model, used_milli: 0, mig: None }
    }

    /// Milli-GPU free for whole-GPU and shared requests. A MIG-enabled GPU has none: it serves MIG
    /// instances only, so share-packing policies and the fragmentation measure see it as full.
    pub fn free_milli(&self) -> i64 {
        if self.mig.is_some() { 0 } else { (GPU_MILLI - self.used_milli).max(0) }
    }

    pub fn is_idle(&self) -> bool {
        self.used_milli == 0 && self.mig.as_ref().is_none_or(MigState::is_idle)
    }
}

/// What a pod asks of GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GpuRequest {
    pub count: u32,
    pub milli_per_gpu: i64,
    /// GPU models the pod may run on; `None` means any.
    pub models: Option<Vec<Arc<str>>>,
}

impl GpuRequest {
    pub fn none() -> Self {
        GpuRequest::default()
    }

    pub fn whole(count: u32) -> Self {
        GpuRequest { count, milli_per_gpu: GPU_MILLI, models: None }
    }

    pub fn shared(milli: i64) -> Self {
        GpuRequest { count: 1, milli_per_gpu: milli, models: None }
    }

    pub fn with_models(mut self, models: Vec<Arc<str>>) -> Self {
        self.models = Some(models);
        self
    }

    pub fn is_none(&self) -> bool {
        self.count == 0 || self.milli_per_gpu == 0
    }

    pub fn is_shared(&self) -> bool {
        !self.is_none() && self.milli_per_gpu < GPU_MILLI
    }

    /// Total milli-GPU this request takes from the cluster.
    pub fn total_milli(&self) -> i64 {
        if self.is_none() { 0 } else { i64::from(self.count) * self.milli_per_gpu }
    }

    pub fn allows_model(&self, model: &str) -> bool {
        match &self.models {
            None => true,
            Some(models) => models.iter().any(|m| &**m == model),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.milli_per_gpu < 0 || self.milli_per_gpu > GPU_MILLI {
            return Err(format!("GPU share {} is outside 0..={GPU_MILLI} milli", self.milli_per_gpu));
        }
        if self.count > 1 && self.milli_per_gpu != 0 && self.milli_per_gpu < GPU_MILLI {
            // Nothing in the NVIDIA stack gives one container fractions of several GPUs.
            return Err(format!("a GPU share ({} milli) cannot span {} GPUs", self.milli_per_gpu, self.count));
        }
        if matches!(&self.models, Some(m) if m.is_empty()) {
            return Err("the list of allowed GPU models is empty".into());
        }
        Ok(())
    }
}

/// The devices a placed pod holds: GPU index on its node and the milli taken from it, and the MIG
/// instances it was given (GPU index and instance).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuAssignment {
    pub devices: Vec<(usize, i64)>,
    pub mig: Vec<(usize, MigInstance)>,
}

impl GpuAssignment {
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.devices.iter().map(|(i, _)| *i)
    }
}

/// Indices of the GPUs of `gpus` that can take `request.milli_per_gpu` and have an allowed model.
pub fn fitting_gpus<'a>(gpus: &'a [GpuDevice], request: &'a GpuRequest) -> impl Iterator<Item = usize> + 'a {
    gpus.iter()
        .enumerate()
        .filter(|(_, g)| g.mig.is_none() && g.free_milli() >= request.milli_per_gpu && request.allows_model(&g.model))
        .map(|(i, _)| i)
}

/// The devices for `request` that leave the fewest partly used GPUs behind: for a share, the fitting GPU
/// with the least free milli (ties to the lowest index); for whole GPUs, the first idle ones. `None` when
/// the node cannot host the request. A pod without GPUs gets an empty list.
pub fn best_fit_gpus(gpus: &[GpuDevice], request: &GpuRequest) -> Option<Vec<usize>> {
    if request.is_none() {
        return Some(Vec::new());
    }
    let mut fitting: Vec<usize> = fitting_gpus(gpus, request).collect();
    if fitting.len() < request.count as usize {
        return None;
    }
    fitting.sort_by_key(|&i| (gpus[i].free_milli(), i));
    fitting.truncate(request.count as usize);
    fitting.sort_unstable();
    Some(fitting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_kinds() {
        assert!(GpuRequest::none().is_none());
        assert_eq!(GpuRequest::whole(4).total_milli(), 4000);
        assert!(GpuRequest::shared(300).is_shared());
        assert!(!GpuRequest::whole(1).is_shared());
        assert_eq!(GpuRequest::shared(300).total_milli(), 300);
    }

    #[test]
    fn validation_rejects_impossible_requests() {
        assert!(GpuRequest::shared(1200).validate().is_err());
        assert!(GpuRequest { count: 2, milli_per_gpu: 500, models: None }.validate().is_err());
        assert!(GpuRequest::whole(1).with_models(vec![]).validate().is_err());
        assert!(GpuRequest::whole(8).validate().is_ok());
    }

    #[test]
    fn fitting_gpus_respects_share_and_model() {
        let v100: Arc<str> = "V100".into();
        let mut gpus = vec![GpuDevice::new(v100.clone()), GpuDevice::new(v100.clone())];
        gpus[0].used_milli = 600;
        let req = GpuRequest::shared(500);
        assert_eq!(fitting_gpus(&gpus, &req).collect::<Vec<_>>(), vec![1]);
        let req = GpuRequest::shared(400);
        assert_eq!(fitting_gpus(&gpus, &req).collect::<Vec<_>>(), vec![0, 1]);
        let req = GpuRequest::shared(100).with_models(vec!["T4".into()]);
        assert_eq!(fitting_gpus(&gpus, &req).count(), 0);
    }

    #[test]
    fn best_fit_prefers_the_fullest_gpu_that_still_fits() {
        let m: Arc<str> = "G2".into();
        let mut gpus: Vec<GpuDevice> = (0..4).map(|_| GpuDevice::new(m.clone())).collect();
        gpus[1].used_milli = 500;
        gpus[2].used_milli = 800;
        assert_eq!(best_fit_gpus(&gpus, &GpuRequest::shared(200)), Some(vec![2]));
        assert_eq!(best_fit_gpus(&gpus, &GpuRequest::shared(300)), Some(vec![1]));
        assert_eq!(best_fit_gpus(&gpus, &GpuRequest::whole(2)), Some(vec![0, 3]));
        assert_eq!(best_fit_gpus(&gpus, &GpuRequest::whole(3)), None);
        assert_eq!(best_fit_gpus(&gpus, &GpuRequest::none()), Some(vec![]));
    }
}
