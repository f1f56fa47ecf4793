//! The edge both mlsched binaries share, the scheduler (`mlsched`) and its autoscaler sidecar
//! (`mlsched-autoscaler`): one implementation, so their probes, metrics endpoint, flags, logs and
//! shutdown behave the same and cannot drift apart.
//!
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`cli`]: the common flags, the start (config file, logging) and the shutdown signal.
//! - [`kube_client`]: the Kubernetes client from the kubeconfig, with errors that name the field at fault.

pub mod cli;
pub mod http;
pub mod kube_client;

pub use cli::LogFormat;
