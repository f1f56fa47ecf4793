//! mlsched's Kubernetes scheduler: a thin I/O shell around the pure `mlsched` decision core.
//!
//! - `translate`, `quantity`: Kubernetes Node/Pod → core Node/Pod (pure).
//! - `config`: the YAML config, validated at start (pure).
//! - `unit`: the unit a pod is scheduled in (itself or its gang), as named in the core `GangQueue`, which
//!   orders, backs off and re-activates units for the live scheduler and the simulator alike.
//! - `state`: the cluster picture kept from watch events, and the scheduling pass on it (pure).
//! - `dedupe`: Event and condition de-duplication (pure).
//! - `crd`: the coscheduling `PodGroup`.
//! - `error`: typed API errors (conflict, not found, retryable, other), from the answer's status code.
//! - `kube_io`: binding, status, Events; `evict`: preemption's evictions (Eviction API); `leader`: leader election on a Lease; `run`: watchers + decision
//!   loop; `throttle`: repeated failures logged once per interval; `metrics`
//!   (served with `/healthz` and `/readyz` by the `mlsched-edge` crate, shared with the autoscaler).
//! - `placement_api`: the Placement gRPC API for the autoscaler, answered by the decision loop.
//!
//! Tests run the whole scheduler in-process with [`run`].

pub mod bind_backlog;
pub mod config;
pub mod crd;
pub mod dedupe;
pub mod error;
pub mod evict;
pub mod keys;
pub mod kube_io;
pub mod leader;
pub mod metrics;
pub mod placement_api;
pub mod ratelimit;
pub mod run;
pub mod state;
pub mod throttle;
pub mod translate;
pub mod unit;

pub use config::Config;
pub use run::{Clients, run};
