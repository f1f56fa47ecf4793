//! The `HybridAutoscaler` custom resource (`autoscaling.mlsched.io/v1alpha1`, namespaced, status subresource).
//!
//! ```yaml
//! apiVersion: autoscaling.mlsched.io/v1alpha1
//! kind: HybridAutoscaler
//! metadata: {name: web, namespace: default}
//! spec:
//!   targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}   # or StatefulSet
//!   minReplicas: 1
//!   maxReplicas: 10
//!   targetCPUUtilizationPercent: 70        # of the containers' requests; at least one target is needed
//!   targetMemoryUtilizationPercent: 80
//!   containerPolicies:                     # bounds of the vertical path; "*" matches every container
//!     - {containerName: "*", minAllowed: {cpu: 100m, memory: 64Mi}, maxAllowed: {cpu: "4", memory: 8Gi}}
//!   tolerance: 0.1                         # no change while |usage / target - 1| <= tolerance
//!   scaleUpStabilizationSeconds: 0
//!   scaleDownStabilizationSeconds: 300
//!   mode: Hybrid                           # HorizontalOnly, VerticalOnly, Off (recommend only)
//!   allowRecreate: false                   # when in-place resize is unavailable, recreate pods instead
//! ```

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "autoscaling.mlsched.io",
    version = "v1alpha1",
    kind = "HybridAutoscaler",
    namespaced,
    status = "HybridAutoscalerStatus",
    shortname = "hpas",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.targetRef.name"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.currentReplicas"}"#,
    printcolumn = r#"{"name":"Last","type":"string","jsonPath":".status.lastDecision.kind"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HybridAutoscalerSpec {
    /// The workload scaled: a Deployment or a StatefulSet (through its `scale` subresource).
    pub target_ref: TargetRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    pub max_replicas: i32,
    /// Target CPU usage as a percentage of the containers' CPU requests.
    #[serde(default, rename = "targetCPUUtilizationPercent", skip_serializing_if = "Option::is_none")]
    pub target_cpu_utilization_percent: Option<i32>,
    /// Target memory usage as a percentage of the containers' memory requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_memory_utilization_percent: Option<i32>,
    /// Per-container bounds of the vertical path (the first policy naming the container, else `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_policies: Vec<ContainerPolicy>,
    /// Default 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Default 0: scale up as soon as the recommendation says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_stabilization_seconds: Option<i32>,
    /// Default 300: scale down only to the highest recommendation of this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_stabilization_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// When in-place resize is unavailable, apply vertical changes by rewriting the pod template and
    /// recreating the pods one at a time. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_recreate: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `apps/v1` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Mode {
    /// Vertical while the pods' nodes have room, else horizontal (the paper's hybrid algorithm).
    #[default]
    Hybrid,
    HorizontalOnly,
    VerticalOnly,
    /// Recommend only: the status says what would be done; nothing is changed.
    Off,
}

impl From<Mode> for crate::decide::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Hybrid => crate::decide::Mode::Hybrid,
            Mode::HorizontalOnly => crate::decide::Mode::HorizontalOnly,
            Mode::VerticalOnly => crate::decide::Mode::VerticalOnly,
            Mode::Off => crate::decide::Mode::Off,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPolicy {
    /// A container name, or `*` for every container.
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allowed: Option<ResourceQuantities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed: Option<ResourceQuantities>,
}

/// CPU and memory as Kubernetes quantities (`500m`, `2`, `512Mi`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuantities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HybridAutoscalerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// The last decision made (also "None" with the reason nothing was done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<DecisionStatus>,
    /// When the last action (vertical or horizontal) was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<RecommendationStatus>,
    /// The per-container requests the horizontal calculation divides by: the template's requests as they
    /// were before the vertical path changed anything (recorded when the recreate path rewrote the template).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_requests: Vec<ContainerResources>,
    /// Where the last scale-out's new replicas were planned to land (Placement API `PlanReplicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
    /// `Valid`, `MetricsAvailable`, `PlacementAvailable`, `AbleToScale`, `ScalingLimited`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionStatus {
    /// `Vertical`, `Recreate`, `ScaleUp`, `ScaleDown` or `None`.
    pub kind: String,
    /// Why, in words.
    pub reason: String,
    pub time: String,
    /// Whether it was applied (false in mode Off, or when applying failed).
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_replicas: Option<i32>,
    /// Pods resized (vertical).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationStatus {
    /// Replicas by the horizontal formula, before stabilization and limits.
    pub replicas: i32,
    /// Vertical target per container (the highest over the pods).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerResources>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResources {
    pub container_name: String,
    pub cpu: String,
    pub memory: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    pub time: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<PlannedReplica>,
    #[serde(default)]
    pub unplaceable: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Mean network cost from the new replicas to the existing pods.
    #[serde(default)]
    pub mean_network_cost: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedReplica {
    pub node: String,
    pub mean_hops: f64,
    pub network_cost: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
