//! A node as the core sees it: capacity, what is already requested on it, and its GPUs one by one.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gpu::{GPU_MILLI, GpuDevice};
use super::mig::{MigGeometry, MigState};
use super::resources::Resources;
use super::selector::Taint;

/// Index of a node in its snapshot.
pub type NodeId = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    /// CPU, memory, pods and non-GPU extended resources the node offers.
    pub allocatable: Resources,
    /// The sum of the requests of the pods placed on the node.
    pub requested: Resources,
    pub gpus: Vec<GpuDevice>,
}

impl Node {
    pub fn new(name: impl Into<String>, allocatable: Resources) -> Self {
        Node {
            name: name.into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable,
            requested: Resources::default(),
            gpus: Vec::new(),
        }
    }

    pub fn with_gpus(mut self, count: usize, model: &str) -> Self {
        let model: Arc<str> = model.into();
        self.gpus = (0..count).map(|_| GpuDevice::new(model.clone())).collect();
        self
    }

    /// `count` MIG-enabled GPUs of `model`; `None` if the model has no MIG geometry.
    pub fn with_mig_gpus(mut self, count: usize, model: &str) -> Option<Self> {
        let geometry = MigGeometry::for_model(model)?;
        self = self.with_gpus(count, model);
        for gpu in &mut self.gpus {
            gpu.mig = Some(MigState::new(geometry));
        }
        Some(self)
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn free_cpu_milli(&self) -> i64 {
        self.allocatable.cpu_milli - self.requested.cpu_milli
    }

    pub fn free_memory_bytes(&self) -> i64 {
        self.allocatable.memory_bytes - self.requested.memory_bytes
    }

    /// Free non-GPU resources. Accounting never lets `requested` exceed `allocatable` through `assume`,
    /// but a live node can shrink under running pods, so this saturates at zero instead of failing.
    pub fn free(&self) -> Resources {
        let mut free = Resources::new(
            self.free_cpu_milli().max(0),
            self.free_memory_bytes().max(0),
            (self.allocatable.pods - self.requested.pods).max(0),
        );
        for (name, cap) in &self.allocatable.extended {
            free.set_extended(name.clone(), (cap - self.requested.extended(name)).max(0));
        }
        free
    }

    /// Milli-GPU of the GPUs that serve whole GPUs and shares (MIG-enabled GPUs excluded).
    pub fn gpu_capacity_milli(&self) -> i64 {
        self.gpus.iter().filter(|g| g.mig.is_none()).count() as i64 * GPU_MILLI
    }

    pub fn gpu_free_milli(&self) -> i64 {
        self.gpus.iter().filter(|g| g.mig.is_none()).map(GpuDevice::free_milli).sum()
    }

    pub fn idle_gpus(&self) -> usize {
        self.gpus.iter().filter(|g| g.is_idle()).count()
    }

    /// The model of the node's GPUs when they are all the same (the common case), for display and
    /// for policies that group by model.
    pub fn gpu_model(&self) -> Option<&str> {
        self.gpus.first().map(|g| &*g.model)
    }

    /// Whether `self`, an update of `before`, may hold a pod `before` could not: it was uncordoned, lost a
    /// taint, changed labels (an affinity may match now), grew in some resource, or offers other GPUs. A
    /// node that only shrank or gained taints helps no waiting pod, so it does not cut the queue's backoff
    /// short (kube-scheduler's queueing hints for node updates ask the same).
    pub fn may_fit_more_than(&self, before: &Node) -> bool {
        (before.unschedulable && !self.unschedulable)
            || before.taints.iter().any(|t| !self.taints.contains(t))
            || self.labels != before.labels
            || self.allocatable.grew_from(&before.allocatable)
            || self.gpus.len() > before.gpus.len()
            || self.gpus.iter().zip(&before.gpus).any(|(now, was)| now.model != was.model || now.mig != was.mig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::selector::TaintEffect;

    fn node() -> Node {
        Node::new("n", Resources::new(8_000, 1 << 34, 110)).with_gpus(4, "A100").with_label("zone", "a")
    }

    #[test]
    fn only_an_update_that_may_hold_more_may_fit_more() {
        let before = node();
        let changed = |f: &dyn Fn(&mut Node)| {
            let mut n = before.clone();
            f(&mut n);
            n.may_fit_more_than(&before)
        };
        assert!(!changed(&|_| {}));
        assert!(!changed(&|n| n.unschedulable = true), "cordoned");
        let taint = Taint { key: "k".into(), value: String::new(), effect: TaintEffect::NoSchedule };
        assert!(!changed(&|n| n.taints.push(taint.clone())), "tainted");
        assert!(!changed(&|n| n.allocatable.cpu_milli -= 1), "shrank");
        assert!(!changed(&|n| drop(n.gpus.pop())), "lost a GPU");
        assert!(changed(&|n| n.allocatable.memory_bytes += 1));
        assert!(changed(&|n| n.allocatable.set_extended("example.com/fpga", 1)));
        assert!(changed(&|n| n.gpus.push(n.gpus[0].clone())));
        assert!(changed(&|n| drop(n.labels.insert("zone".into(), "b".into()))), "relabelled");
        let mut cordoned = before.clone();
        cordoned.unschedulable = true;
        cordoned.taints.push(taint);
        assert!(before.may_fit_more_than(&cordoned), "uncordoned and untainted");
    }
}
