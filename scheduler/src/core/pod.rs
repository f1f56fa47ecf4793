//! What the core knows of a pod: enough to decide where it may run, nothing about how it got here.

use std::collections::BTreeMap;

use super::gpu::GpuRequest;
use super::mig::MigRequest;
use super::resources::Resources;
use super::selector::{NodeAffinity, Toleration};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pod {
    /// `namespace/name`, unique in a snapshot.
    pub key: String,
    /// CPU, memory, pod slot and non-GPU extended resources.
    pub requests: Resources,
    pub gpu: GpuRequest,
    /// MIG instances (`nvidia.com/mig-<profile>`), kept apart from `requests` because where they are
    /// carved matters, not only how many.
    pub mig: Option<MigRequest>,
    pub node_selector: BTreeMap<String, String>,
    pub affinity: NodeAffinity,
    pub tolerations: Vec<Toleration>,
    pub priority: i32,
    /// Names of the nodes that run the pod's workload already (one entry per existing pod, so a node with
    /// two of them counts twice). `NetworkProximityScore` prefers nodes with a short network path to
    /// them, to keep state synchronisation between replicas local. Empty: no preference.
    pub near_nodes: Vec<String>,
}

impl Pod {
    pub fn new(key: impl Into<String>, requests: Resources, gpu: GpuRequest) -> Self {
        Pod { key: key.into(), requests, gpu, ..Default::default() }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.requests.validate().map_err(|e| format!("pod {}: {e}", self.key))?;
        self.gpu.validate().map_err(|e| format!("pod {}: {e}", self.key))?;
        if let Some(mig) = &self.mig {
            if mig.count == 0 {
                return Err(format!("pod {}: {} requested 0 times", self.key, mig.resource_name()));
            }
            if !self.gpu.is_none() {
                return Err(format!("pod {}: asks for both MIG instances and whole or shared GPUs", self.key));
            }
        }
        Ok(())
    }
}
