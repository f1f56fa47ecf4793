//! Every filter and score policy, one file each.

pub mod gpu_fit;
pub mod node_affinity;
pub mod resources_fit;
pub mod taint_toleration;

pub use gpu_fit::GpuFit;
pub use node_affinity::{NodeAffinityFilter, NodeUnschedulable};
pub use resources_fit::ResourcesFit;
pub use taint_toleration::TaintToleration;
