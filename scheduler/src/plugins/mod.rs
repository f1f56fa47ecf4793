//! Every filter and score policy, one file each; `policy` builds a profile from a policy name.

pub mod best_fit;
pub mod cpu_feed;
pub mod dot_product;
pub mod fgd;
pub mod gpu_clustering;
pub mod gpu_fit;
pub mod gpu_packing;
pub mod mig_fit;
pub mod mig_packing;
pub mod mlsched_score;
pub mod network_proximity;
pub mod node_affinity;
pub mod policy;
pub mod random;
pub mod resources_fit;
pub mod score_memo;
pub mod taint_toleration;

pub use best_fit::BestFitScore;
pub use dot_product::DotProductScore;
pub use fgd::FgdScore;
pub use gpu_clustering::GpuClusteringScore;
pub use gpu_fit::GpuFit;
pub use gpu_packing::GpuPackingScore;
pub use mig_fit::MigFit;
pub use mig_packing::{MigFragScore, MigLeastAllocated, MigMostAllocated};
pub use mlsched_score::MlschedScore;
pub use network_proximity::NetworkProximityScore;
pub use node_affinity::{NodeAffinityFilter, NodeUnschedulable};
pub use random::RandomScore;
pub use resources_fit::ResourcesFit;
pub use taint_toleration::TaintToleration;
