//! The edge both mlsched binaries share, the scheduler (`mlsched`) and its autoscaler sidecar
//! (`mlsched-autoscaler`): one implementation, so their probes, metrics endpoint, flags, logs and
//! shutdown behave the same and cannot drift apart.
//!
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`cli`]: the common flags, the start (config file, logging) and the shutdown signal.

pub mod cli;
pub mod http;

pub use cli::LogFormat;
