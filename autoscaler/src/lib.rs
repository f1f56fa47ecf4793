//! mlsched's hybrid HPA/VPA autoscaler, deployed as a sidecar of the scheduler.
//!
//! For each `HybridAutoscaler` (`autoscaling.mlsched.io/v1alpha1`) it decides once per period between
//! growing the workload's pods in place (while the scheduler says their nodes have room), adding or
//! removing replicas (placed by the scheduler near the existing ones), or nothing.
//!
//! - `decide`: the pure decision and its rules (including the no-fight rule between vertical and horizontal),
//!   from the `mlsched-autoscale` crate, which the simulator runs too.
//! - `crd`: the custom resource; `config`: the YAML config; `quantity`: Kubernetes quantities.
//! - `placement`: the scheduler's Placement gRPC API client; `run`: the controller loop; `metrics`
//!   (served with `/healthz` and `/readyz` by the `mlsched-edge` crate, shared with the scheduler).

pub mod config;
pub mod crd;
pub mod metrics;
pub mod placement;
pub mod run;

pub use config::Config;
pub use mlsched_autoscale as decide;
pub use run::run;
