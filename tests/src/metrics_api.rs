//! `metrics.k8s.io/v1beta1` PodMetrics, as metrics-server serves them: list (with `labelSelector`) and get
//! in a namespace. The double stores them like any other kind; tests set the values through
//! [`set_pod_usage`] (the real API is read-only, the double also accepts writes).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::ResourceKind;
use crate::state::StateHandle;

pub const METRICS_GROUP: &str = "metrics.k8s.io";
pub const METRICS_VERSION: &str = "v1beta1";

/// The served kind of PodMetrics (`metrics.k8s.io/v1beta1`, plural `pods`).
pub fn pod_metrics_kind() -> ResourceKind {
    ResourceKind::new(METRICS_GROUP, METRICS_VERSION, "pods", "PodMetrics", true)
}

/// Usage of one container: CPU in millicores, memory in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

impl ContainerUsage {
    pub fn new(name: &str, cpu_milli: i64, memory_bytes: i64) -> Self {
        Self { name: name.to_string(), cpu_milli, memory_bytes }
    }
}

/// Creates or replaces the PodMetrics of pod `ns/pod`. Labels are copied from the pod when it exists (as
/// metrics-server does), so label selectors work; the timestamp is now and the window 15 s.
pub fn set_pod_usage(state: &StateHandle, ns: &str, pod: &str, usage: &[ContainerUsage]) -> Result<Value, ApiError> {
    let kind = state
        .kind(METRICS_GROUP, "pods")
        .ok_or_else(|| ApiError::new(404, "pods.metrics.k8s.io is not served by the double"))?;
    let labels = state
        .kind("", "pods")
        .and_then(|k| state.get_value(&k, ns, pod))
        .and_then(|p| p.pointer("/metadata/labels").cloned())
        .unwrap_or(json!({}));
    let containers: Vec<Value> = usage
        .iter()
        .map(|c| json!({"name": c.name, "usage": {"cpu": format!("{}m", c.cpu_milli), "memory": format!("{}", c.memory_bytes)}}))
        .collect();
    let obj = json!({
        "apiVersion": format!("{METRICS_GROUP}/{METRICS_VERSION}"),
        "kind": "PodMetrics",
        "metadata": {"name": pod, "namespace": ns, "labels": labels},
        "timestamp": crate::store::now_timestamp(),
        "window": "15s",
        "containers": containers,
    });
    match state.get_value(&kind, ns, pod) {
        Some(_) => state.replace_value(&kind, ns, pod, obj),
        None => state.create_value(&kind, ns, obj),
    }
}

/// Removes the PodMetrics of a pod (metrics-server has no sample for it yet, or lost it).
pub fn clear_pod_usage(state: &StateHandle, ns: &str, pod: &str) {
    if let Some(kind) = state.kind(METRICS_GROUP, "pods") {
        let _ = state.delete_value(&kind, ns, pod);
    }
}
