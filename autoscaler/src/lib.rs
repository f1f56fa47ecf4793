//! mlsched's hybrid HPA/VPA autoscaler, deployed as a sidecar of the scheduler.
//!
//! For each `HybridAutoscaler` (`autoscaling.mlsched.io/v1alpha1`) it decides once per period between
//! growing the workload's pods in place (while the scheduler says their nodes have room), adding or
//! removing replicas (placed by the scheduler near the existing ones), or nothing.
//!
//! - `decide`: the pure decision and its rules (including the no-fight rule between vertical and horizontal),
//!   from the `mlsched-autoscale` crate, which the simulator runs too.
//! - `crd`: the custom resource; `config`: the YAML config (quantities are parsed by `mlsched::quantity`).
//! - `placement`: the scheduler's Placement gRPC API client; `metrics` (served with `/healthz` and
//!   `/readyz` by the `mlsched-edge` crate, shared with the scheduler).
//! - `run`: the controller loop, each workload's period being `observe` (the target, its pods, their
//!   metrics and the node headroom, through `target`), `decide`, `act` (resize, recreate, scale) and
//!   `report` (status, Events, metrics); `memory`: what a workload's periods carry to the next.

pub mod act;
pub mod config;
pub mod crd;
pub mod memory;
pub mod metrics;
pub mod observe;
pub mod placement;
pub mod report;
pub mod run;
pub mod target;

pub use config::Config;
pub use mlsched_autoscale as decide;
pub use run::run;
