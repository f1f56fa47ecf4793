//! The hybrid HPA/VPA autoscaling decision, with no I/O: the autoscaler sidecar (`mlsched-autoscaler`) and
//! the simulator (`mlsim autoscale run`) both call [`decide::decide`] once per workload per period, on
//! inputs they build the same way ([`usage::UsageWindow`] for the p90, [`windows::ReplicaHistory`] for the
//! replica windows).
//!
//! - `decide`: the rules, including the no-fight rule between vertical and horizontal.
//! - `usage`: the per-container usage history the vertical target reads its p90 from.

pub mod decide;
pub mod usage;
pub mod windows;

pub use decide::*;
pub use usage::UsageWindow;
pub use windows::ReplicaHistory;
