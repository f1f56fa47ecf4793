//! The autoscaler end to end against the API server double, alone and beside the real scheduler. One
//! test binary for both: each Kubernetes-linked test binary costs a long release link.

mod autoscaler;
mod with_scheduler;
