//! The API server double driven through kube's own client. One test binary for all of them: each
//! Kubernetes-linked test binary costs a long release link, and CI builds them on two cores.

mod autoscaling;
mod binary;
mod crud;
mod faults;
mod real_cluster;
mod real_metrics;
mod real_proxy;
mod watch;
