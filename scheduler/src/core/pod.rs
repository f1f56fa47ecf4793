//! What the core knows of a pod: enough to decide where it may run, nothing about how it got here.

use std::collections::BTreeMap;

use super::gpu::GpuRequest;
use super::resources::Resources;
use super::selector::{NodeAffinity, Toleration};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pod {
    /// `namespace/name`, unique in a snapshot.
    pub key: String,
    /// CPU, memory, pod slot and non-GPU extended resources.
    pub requests: Resources,
    pub gpu: GpuRequest,
    pub node_selector: BTreeMap<String, String>,
    pub affinity: NodeAffinity,
    pub tolerations: Vec<Toleration>,
    pub priority: i32,
}

impl Pod {
    pub fn new(key: impl Into<String>, requests: Resources, gpu: GpuRequest) -> Self {
        Pod { key: key.into(), requests, gpu, ..Default::default() }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.requests.validate().map_err(|e| format!("pod {}: {e}", self.key))?;
        self.gpu.validate().map_err(|e| format!("pod {}: {e}", self.key))
    }
}
