//! Every label, annotation and resource name the scheduler reads or writes (documented in README.md).

/// The `schedulerName` mlsched serves unless the config names other profiles.
pub const DEFAULT_SCHEDULER_NAME: &str = "mlsched";

/// Node label carrying the GPU model (NVIDIA GPU feature discovery).
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// Model given to GPUs of a node without `GPU_PRODUCT_LABEL`.
pub const UNKNOWN_GPU_MODEL: &str = "unknown";
/// Prefix of MIG slice resources (`nvidia.com/mig-1g.10gb`); they stay plain extended resources.
pub const MIG_PREFIX: &str = "nvidia.com/mig-";

/// Pod annotation: a share of one GPU in milli-GPU (`"500"` = half a GPU). Without `nvidia.com/gpu`.
pub const GPU_MILLI_ANNOTATION: &str = "mlsched.io/gpu-milli";
/// Pod annotation: allowed GPU models, `|`-separated (`"A100|H100"`), matched against `GPU_PRODUCT_LABEL`.
pub const GPU_MODELS_ANNOTATION: &str = "mlsched.io/gpu-models";
/// Pod annotation written at bind time: the GPU indices on the node (`"0,3"`), read back on restart.
pub const GPU_INDEX_ANNOTATION: &str = "mlsched.io/gpu-index";

/// Pod label naming a `PodGroup` (scheduler-plugins coscheduling) in the pod's namespace.
pub const POD_GROUP_LABEL: &str = "scheduling.x-k8s.io/pod-group";
/// Pod annotations for a gang without a PodGroup object.
pub const GANG_NAME_ANNOTATION: &str = "mlsched.io/gang-name";
pub const GANG_SIZE_ANNOTATION: &str = "mlsched.io/gang-size";
/// Gang topology (on a member pod or on the PodGroup): a node label from the configured topology levels.
pub const TOPOLOGY_REQUIRED_ANNOTATION: &str = "mlsched.io/topology-required-level";
pub const TOPOLOGY_PREFERRED_ANNOTATION: &str = "mlsched.io/topology-preferred-level";
/// Pod annotation: the label selector of the workload the pod belongs with (`"app=web,tier=cache"`, all
/// must match). The pod is preferred on nodes with a short network path to the nodes of the bound pods
/// matching it in the same namespace (`NetworkProximityScore`), as the hybrid autoscaler places replicas.
pub const NEAR_WORKLOAD_ANNOTATION: &str = "mlsched.io/near-workload";
/// Optional gang timeout for annotation-only gangs, in seconds.
pub const GANG_TIMEOUT_ANNOTATION: &str = "mlsched.io/gang-timeout-seconds";
/// Optional: how long the pod runs once started, in whole seconds (as a batch system's time limit). With
/// it the gang queue knows when room frees up: a gang may use a reservation's room when it will be gone
/// before the reserved gang can start, and a gang that prefers a topology level may wait for a domain of
/// it (see `spreadCost` in the config).
pub const EXPECTED_RUNTIME_ANNOTATION: &str = "mlsched.io/expected-runtime-seconds";

/// Event reasons and condition values, phrased as kube-scheduler phrases them.
pub const REASON_FAILED_SCHEDULING: &str = "FailedScheduling";
pub const REASON_SCHEDULED: &str = "Scheduled";
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
pub const REASON_INVALID: &str = "InvalidSchedulingRequest";
pub const REASON_GANG_FAILED: &str = "GangBindFailed";
pub const REASON_GANG_TIMEOUT: &str = "GangTimeout";
pub const REASON_PREEMPTED: &str = "Preempted";
