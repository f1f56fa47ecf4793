//! A small fake GPU cluster to seed the double with: nodes with `nvidia.com/gpu` capacity and topology labels,
//! pending pods for `mlsched`, and PodGroups.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::StateHandle;

pub const LABEL_SPINE: &str = "network.mlsched.io/spine";
pub const LABEL_RACK: &str = "network.mlsched.io/rack";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// Label naming a pod's PodGroup (scheduler-plugins coscheduling convention).
pub const LABEL_POD_GROUP: &str = "scheduling.x-k8s.io/pod-group";
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
pub const SCHEDULER_NAME: &str = "mlsched";

/// Shape of a fake cluster: `spines × racks_per_spine` racks of `nodes_per_rack` nodes.
#[derive(Clone, Debug)]
pub struct GpuClusterSpec {
    pub spines: u32,
    pub racks_per_spine: u32,
    pub nodes_per_rack: u32,
    pub gpus_per_node: u32,
    pub cpu_per_node: u32,
    pub memory_gib_per_node: u32,
}

impl Default for GpuClusterSpec {
    /// 2 spines × 2 racks = 4 racks × 4 nodes × 8 GPUs (128 GPUs).
    fn default() -> Self {
        Self {
            spines: 2,
            racks_per_spine: 2,
            nodes_per_rack: 4,
            gpus_per_node: 8,
            cpu_per_node: 96,
            memory_gib_per_node: 1024,
        }
    }
}

/// A Ready node with `gpus` × `nvidia.com/gpu` and the given labels (plus `kubernetes.io/hostname`).
pub fn gpu_node(name: &str, gpus: u32, cpu: u32, memory_gib: u32, labels: &[(&str, &str)]) -> Value {
    let mut l = serde_json::Map::new();
    l.insert(LABEL_HOSTNAME.into(), json!(name));
    l.insert("kubernetes.io/os".into(), json!("linux"));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    let resources = json!({
        "cpu": cpu.to_string(),
        "memory": format!("{memory_gib}Gi"),
        "pods": "110",
        GPU_RESOURCE: gpus.to_string(),
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake node"}],
            "nodeInfo": {
                "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "fake://1", "kernelVersion": "6.0",
                "kubeProxyVersion": "", "kubeletVersion": "v1.37.0", "machineID": "", "operatingSystem": "linux",
                "osImage": "fake", "systemUUID": ""
            },
        },
    })
}

/// A pending pod for `scheduler` asking for `gpus` GPUs (one container), optionally in a PodGroup.
pub fn pending_pod(namespace: &str, name: &str, gpus: u32, scheduler: &str, pod_group: Option<&str>) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("app".into(), json!(name));
    if let Some(g) = pod_group {
        labels.insert(LABEL_POD_GROUP.into(), json!(g));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "schedulerName": scheduler,
            "containers": [{
                "name": "main",
                "image": "registry.example/train:latest",
                "resources": {
                    "requests": {"cpu": "4", "memory": "32Gi", GPU_RESOURCE: gpus.to_string()},
                    "limits": {GPU_RESOURCE: gpus.to_string()},
                },
            }],
        },
        "status": {"phase": "Pending"},
    })
}

/// A coscheduling PodGroup (`scheduling.x-k8s.io/v1alpha1`).
pub fn pod_group(namespace: &str, name: &str, min_member: u32, schedule_timeout_seconds: Option<u32>) -> Value {
    let mut spec = json!({"minMember": min_member});
    if let Some(t) = schedule_timeout_seconds {
        spec["scheduleTimeoutSeconds"] = json!(t);
    }
    json!({
        "apiVersion": format!("{}/{}", crate::PODGROUP_GROUP, crate::PODGROUP_VERSION),
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// Node name of node `n` in global rack `r`.
pub fn node_name(rack: u32, n: u32) -> String {
    format!("gpu-r{rack}-n{n}")
}

/// The nodes of `spec`, as Node objects. Rack `r` is on spine `r / racks_per_spine`.
pub fn gpu_cluster_nodes(spec: &GpuClusterSpec) -> Vec<Value> {
    let mut nodes = Vec::new();
    for s in 0..spec.spines {
        for rs in 0..spec.racks_per_spine {
            let r = s * spec.racks_per_spine + rs;
            for n in 0..spec.nodes_per_rack {
                let (spine, rack) = (format!("spine-{s}"), format!("rack-{r}"));
                nodes.push(gpu_node(
                    &node_name(r, n),
                    spec.gpus_per_node,
                    spec.cpu_per_node,
                    spec.memory_gib_per_node,
                    &[(LABEL_SPINE, &spine), (LABEL_RACK, &rack), ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3")],
                ));
            }
        }
    }
    nodes
}

/// Creates the nodes of `spec` in the double; returns their names.
pub fn seed_gpu_cluster(state: &StateHandle, spec: &GpuClusterSpec) -> Result<Vec<String>, ApiError> {
    let kind = state.kind("", "nodes").ok_or_else(|| ApiError::new(404, "nodes not served"))?;
    let mut names = Vec::new();
    for node in gpu_cluster_nodes(spec) {
        names.push(node["metadata"]["name"].as_str().unwrap_or_default().to_string());
        state.create_value(&kind, "", node)?;
    }
    Ok(names)
}

/// Example pending work in `namespace`, as (PodGroups, Pods): a 4-pod gang `train-a` (8 GPUs each, PodGroup
/// minMember 4), a 2-pod gang `train-b` (4 GPUs each) and two single pods (1 and 2 GPUs), all for `mlsched`.
pub fn example_workload(namespace: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut groups, mut pods) = (Vec::new(), Vec::new());
    for (group, members, gpus) in [("train-a", 4u32, 8u32), ("train-b", 2, 4)] {
        groups.push(pod_group(namespace, group, members, Some(300)));
        for i in 0..members {
            pods.push(pending_pod(namespace, &format!("{group}-{i}"), gpus, SCHEDULER_NAME, Some(group)));
        }
    }
    for (name, gpus) in [("notebook-1", 1u32), ("eval-1", 2)] {
        pods.push(pending_pod(namespace, name, gpus, SCHEDULER_NAME, None));
    }
    (groups, pods)
}

/// Creates [`example_workload`] in the double; returns the pods' names.
pub fn seed_example_workload(state: &StateHandle, namespace: &str) -> Result<Vec<String>, ApiError> {
    let pod_kind = state.kind("", "pods").ok_or_else(|| ApiError::new(404, "pods not served"))?;
    let group_kind =
        state.kind(crate::PODGROUP_GROUP, "podgroups").ok_or_else(|| ApiError::new(404, "podgroups not served"))?;
    let (groups, pods) = example_workload(namespace);
    for g in groups {
        state.create_value(&group_kind, namespace, g)?;
    }
    let mut names = Vec::new();
    for p in pods {
        names.push(p["metadata"]["name"].as_str().unwrap_or_default().to_string());
        state.create_value(&pod_kind, namespace, p)?;
    }
    Ok(names)
}
