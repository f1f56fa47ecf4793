//! The scheduler binary's library end to end against the API server double, and the manifests it ships.
//! One test binary for all of them: each Kubernetes-linked test binary costs a long release link.

mod faults;
mod manifests;
mod placement_api;
mod scheduler;
