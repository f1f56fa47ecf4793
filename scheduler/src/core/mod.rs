//! The data the decision code works on: resources, GPUs, nodes, pods and the snapshot that holds them.

pub mod gpu;
pub mod mig;
pub mod node;
pub mod pod;
pub mod resources;
pub mod selector;
pub mod snapshot;

pub use gpu::{GPU_MILLI, GPU_RESOURCE, GpuAssignment, GpuDevice, GpuRequest};
pub use mig::{MigInstance, MigRequest, MigState};
pub use node::{Node, NodeId};
pub use pod::Pod;
pub use resources::{MIB, ResourceError, Resources};
pub use selector::{NodeAffinity, Requirement, SelectorOp, Taint, TaintEffect, Toleration};
pub use snapshot::{Placement, Snapshot, SnapshotError};
