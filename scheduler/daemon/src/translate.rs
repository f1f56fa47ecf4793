//! Kubernetes objects → the core's `Node` and `Pod`. Pure: no I/O, every malformed input is an `Err`
//! ([`Invalid`]) with a message fit for an Event, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use mlsched::core::{
    GPU_MILLI, GPU_RESOURCE, GpuRequest, Node, NodeAffinity, Pod, Requirement, Resources, SelectorOp, Taint,
    TaintEffect, Toleration,
};
use mlsched::gang::{MinResources, TopologyRequirement};

use crate::keys::*;
use mlsched::quantity::{parse_milli_i64, parse_units};

/// Why an object cannot be understood as written. Its message names the field and what is wrong with it,
/// and is what the pod's `InvalidSchedulingRequest` condition and Event say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Invalid(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Invalid(message.to_string())
    }
}

/// `Invalid(format!(...))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        Invalid(format!($($arg)*))
    };
}

/// The name and namespace of any pod, readable even when the rest of it is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl PodRef {
    pub fn of(pod: &k8s::Pod) -> PodRef {
        PodRef {
            namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The API of the PodGroup object a gang is named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodGroupApi {
    /// `scheduling.x-k8s.io/v1alpha1` (kubernetes-sigs/scheduler-plugins), named by the pod label
    /// `scheduling.x-k8s.io/pod-group`.
    Coscheduling,
    /// `scheduling.k8s.io/v1beta1` (Kubernetes' own, behind the `GenericWorkload` gate), named by the pod's
    /// `spec.schedulingGroup.podGroupName`.
    Workload,
}

impl PodGroupApi {
    /// How a member names its PodGroup, for messages.
    pub fn named_by(self) -> &'static str {
        match self {
            PodGroupApi::Coscheduling => "label scheduling.x-k8s.io/pod-group",
            PodGroupApi::Workload => "spec.schedulingGroup, scheduling.k8s.io/v1beta1",
        }
    }
}

/// Which gang a pod belongs to, as written on the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GangRef {
    /// `namespace/name`.
    pub key: String,
    /// Named after a PodGroup object (size and timeout then come from it), of this API.
    pub pod_group: Option<PodGroupApi>,
    /// `mlsched.io/gang-size` for annotation-only gangs.
    pub size: Option<usize>,
    pub timeout: Option<Duration>,
}

/// A pod as the scheduler tracks it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    pub pod_ref: PodRef,
    pub scheduler_name: String,
    pub node_name: Option<String>,
    /// Succeeded or Failed: it holds nothing any more.
    pub terminal: bool,
    pub deleting: bool,
    /// `preemptionPolicy: Never`: it waits for room instead of evicting lower-priority pods.
    pub preempt_never: bool,
    pub pod: Pod,
    pub gang: Option<GangRef>,
    /// `mlsched.io/gpu-index` of a bound pod.
    pub gpu_index: Option<Vec<usize>>,
    /// The pod's labels, matched by `mlsched.io/near-workload` selectors and the Placement API.
    pub labels: BTreeMap<String, String>,
    /// `mlsched.io/near-workload`: the label selector of the workload to be placed near.
    pub near_workload: Option<BTreeMap<String, String>>,
    /// `mlsched.io/topology-{required,preferred}-level` on the pod. A gang member's applies to its gang;
    /// on a single pod it is checked against the configured levels and otherwise trivially met.
    pub topology: Option<TopologyRequirement>,
    /// `mlsched.io/expected-runtime-seconds`: how long the pod runs once started.
    pub expected_runtime: Option<Duration>,
}

fn quantity_map(map: Option<&BTreeMap<String, Quantity>>) -> impl Iterator<Item = (&String, &Quantity)> {
    map.into_iter().flatten()
}

/// Kubernetes resource list → core `Resources` plus the whole-GPU count (kept out of `extended`).
fn to_resources(list: &BTreeMap<String, i64>, cpu_milli: i64) -> Resources {
    let mut r =
        Resources::new(cpu_milli, list.get("memory").copied().unwrap_or(0), list.get("pods").copied().unwrap_or(0));
    for (name, value) in list {
        if !matches!(name.as_str(), "cpu" | "memory" | "pods") && name != GPU_RESOURCE {
            r.set_extended(name.clone(), *value);
        }
    }
    r
}

/// Parses a resource list into milli-units (cpu) and units (everything else).
fn parse_list(map: Option<&BTreeMap<String, Quantity>>, what: &str) -> Result<BTreeMap<String, i64>, Invalid> {
    parse_list_in_milli(map, what, &["cpu"])
}

/// Parses a resource list into milli-units (the resources named in `milli`) and units (everything else).
fn parse_list_in_milli(
    map: Option<&BTreeMap<String, Quantity>>,
    what: &str,
    milli: &[&str],
) -> Result<BTreeMap<String, i64>, Invalid> {
    let mut out = BTreeMap::new();
    for (name, q) in quantity_map(map) {
        let value = if milli.contains(&name.as_str()) { parse_milli_i64(&q.0) } else { parse_units(&q.0) }
            .map_err(|e| format!("{what} {name}: {e}"))?;
        if value < 0 {
            return Err(invalid!("{what} {name}: negative quantity {:?}", q.0));
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// A PodGroup's `minResources`: CPU in millicores, `nvidia.com/gpu` in milli-GPU (it may be fractional, for
/// shared GPUs), everything else in units.
pub fn min_resources(map: &BTreeMap<String, Quantity>) -> Result<MinResources, Invalid> {
    let list = parse_list_in_milli(Some(map), "minResources", &["cpu", GPU_RESOURCE])?;
    let gpu_milli = list.get(GPU_RESOURCE).copied().unwrap_or(0);
    Ok(MinResources { resources: to_resources(&list, list.get("cpu").copied().unwrap_or(0)), gpu_milli })
}

pub fn translate_node(node: &k8s::Node) -> Result<Node, Invalid> {
    let name = node.metadata.name.clone().ok_or("node without a name")?;
    let allocatable = parse_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()), "allocatable")
        .map_err(|e| format!("node {name}: {e}"))?;
    let cpu = allocatable.get("cpu").copied().unwrap_or(0);
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    let gpus = allocatable.get(GPU_RESOURCE).copied().unwrap_or(0);
    let gpus = usize::try_from(gpus).map_err(|_| format!("node {name}: bad GPU count {gpus}"))?;
    let model = labels.get(GPU_PRODUCT_LABEL).map_or(UNKNOWN_GPU_MODEL, String::as_str).to_string();
    let mut core = Node::new(name.clone(), to_resources(&allocatable, cpu)).with_gpus(gpus, &model);
    core.labels = labels;
    let spec = node.spec.as_ref();
    core.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    for t in spec.and_then(|s| s.taints.as_ref()).into_iter().flatten() {
        let effect = taint_effect(&t.effect).map_err(|e| format!("node {name}: taint {}: {e}", t.key))?;
        core.taints.push(Taint { key: t.key.clone(), value: t.value.clone().unwrap_or_default(), effect });
    }
    Ok(core)
}

fn taint_effect(s: &str) -> Result<TaintEffect, Invalid> {
    match s {
        "NoSchedule" => Ok(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Ok(TaintEffect::PreferNoSchedule),
        "NoExecute" => Ok(TaintEffect::NoExecute),
        other => Err(invalid!("unknown taint effect {other:?}")),
    }
}

/// A container's requests, with limits standing in for absent requests (as API defaulting does).
fn container_requests(c: &k8s::Container) -> Result<BTreeMap<String, i64>, Invalid> {
    let res = c.resources.as_ref();
    let mut out = parse_list(res.and_then(|r| r.limits.as_ref()), &format!("container {} limit", c.name))?;
    out.extend(parse_list(res.and_then(|r| r.requests.as_ref()), &format!("container {} request", c.name))?);
    Ok(out)
}

fn add_into(acc: &mut BTreeMap<String, i64>, other: &BTreeMap<String, i64>) -> Result<(), Invalid> {
    for (k, v) in other {
        let e = acc.entry(k.clone()).or_insert(0);
        *e = e.checked_add(*v).ok_or_else(|| format!("resource {k} overflows"))?;
    }
    Ok(())
}

fn max_into(acc: &mut BTreeMap<String, i64>, other: &BTreeMap<String, i64>) {
    for (k, v) in other {
        let e = acc.entry(k.clone()).or_insert(0);
        *e = (*e).max(*v);
    }
}

/// The pod's effective request as kube-scheduler computes it: the sum over app containers plus sidecars
/// (restartable init containers), at least the peak of any init container (plus the sidecars started
/// before it), plus pod overhead. Pod-level `spec.resources.requests` replace the container sum.
pub fn effective_requests(spec: &k8s::PodSpec) -> Result<BTreeMap<String, i64>, Invalid> {
    let mut sum = BTreeMap::new();
    for c in &spec.containers {
        add_into(&mut sum, &container_requests(c)?)?;
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let req = container_requests(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            add_into(&mut sidecars, &req)?;
            max_into(&mut init_peak, &sidecars);
        } else {
            let mut peak = sidecars.clone();
            add_into(&mut peak, &req)?;
            max_into(&mut init_peak, &peak);
        }
    }
    add_into(&mut sum, &sidecars)?;
    max_into(&mut sum, &init_peak);
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        sum.extend(parse_list(Some(pod_level), "pod-level request")?);
    }
    add_into(&mut sum, &parse_list(spec.overhead.as_ref(), "overhead")?)?;
    Ok(sum)
}

fn annotation<'a>(pod: &'a k8s::Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref()?.get(key).map(|s| s.trim())
}

fn gpu_request(pod: &k8s::Pod, whole: i64) -> Result<GpuRequest, Invalid> {
    let whole = u32::try_from(whole).map_err(|_| format!("{GPU_RESOURCE}: count {whole} out of range"))?;
    let mut request = match annotation(pod, GPU_MILLI_ANNOTATION) {
        None => GpuRequest::whole(whole),
        Some(_) if whole > 0 => {
            return Err(invalid!(
                "annotation {GPU_MILLI_ANNOTATION} asks for a GPU share but the pod also requests {whole} {GPU_RESOURCE}"
            ));
        }
        Some(text) => {
            let milli: i64 =
                text.parse().map_err(|_| format!("annotation {GPU_MILLI_ANNOTATION}={text:?} is not an integer"))?;
            if !(1..=GPU_MILLI).contains(&milli) {
                return Err(invalid!("annotation {GPU_MILLI_ANNOTATION}={milli} must be in 1..={GPU_MILLI}"));
            }
            GpuRequest::shared(milli)
        }
    };
    if request.is_none() {
        request = GpuRequest::none();
    }
    if let Some(text) = annotation(pod, GPU_MODELS_ANNOTATION) {
        let models: Vec<Arc<str>> = text.split('|').map(str::trim).filter(|m| !m.is_empty()).map(Arc::from).collect();
        if models.is_empty() {
            return Err(invalid!("annotation {GPU_MODELS_ANNOTATION}={text:?} names no GPU model"));
        }
        request = request.with_models(models);
    }
    request.validate()?;
    Ok(request)
}

fn selector_op(op: &str) -> Result<SelectorOp, Invalid> {
    op.parse().map_err(Invalid)
}

fn node_affinity(spec: &k8s::PodSpec) -> Result<NodeAffinity, Invalid> {
    let Some(required) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
    else {
        return Ok(NodeAffinity::default());
    };
    let mut terms = Vec::new();
    for term in &required.node_selector_terms {
        if term.match_fields.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err("required node affinity: matchFields is not supported (use matchExpressions on labels)".into());
        }
        let mut reqs = Vec::new();
        for e in term.match_expressions.iter().flatten() {
            let op = selector_op(&e.operator).map_err(|err| format!("required node affinity on {:?}: {err}", e.key))?;
            let values = e.values.clone().unwrap_or_default();
            match op {
                SelectorOp::In | SelectorOp::NotIn if values.is_empty() => {
                    return Err(invalid!("required node affinity on {:?}: {} needs values", e.key, e.operator));
                }
                SelectorOp::Exists | SelectorOp::DoesNotExist if !values.is_empty() => {
                    return Err(invalid!("required node affinity on {:?}: {} takes no values", e.key, e.operator));
                }
                _ => {}
            }
            reqs.push(Requirement { key: e.key.clone(), op, values });
        }
        terms.push(reqs);
    }
    Ok(NodeAffinity { terms })
}

fn tolerations(spec: &k8s::PodSpec) -> Result<Vec<Toleration>, Invalid> {
    let mut out = Vec::new();
    for t in spec.tolerations.iter().flatten() {
        let exists = match t.operator.as_deref() {
            None | Some("Equal") => false,
            Some("Exists") => true,
            Some(other) => return Err(invalid!("toleration operator {other:?} (Equal, Exists)")),
        };
        let effect = match t.effect.as_deref() {
            None | Some("") => None,
            Some(e) => Some(taint_effect(e).map_err(|err| format!("toleration: {err}"))?),
        };
        out.push(Toleration {
            key: t.key.clone().unwrap_or_default(),
            exists,
            value: t.value.clone().unwrap_or_default(),
            effect,
        });
    }
    Ok(out)
}

fn gang_ref(pod: &k8s::Pod, namespace: &str) -> Result<Option<GangRef>, Invalid> {
    let label = pod.metadata.labels.as_ref().and_then(|l| l.get(POD_GROUP_LABEL)).map(|s| s.trim().to_string());
    let scheduling_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_group.as_ref())
        .and_then(|g| g.pod_group_name.as_deref())
        .map(|s| s.trim().to_string());
    let annotated = annotation(pod, GANG_NAME_ANNOTATION).map(str::to_string);
    let (name, pod_group) = match (label, scheduling_group, annotated) {
        (Some(l), Some(g), _) if !l.is_empty() && !g.is_empty() => {
            return Err(invalid!(
                "the pod names two PodGroups, {g:?} in spec.schedulingGroup and {l:?} in label {POD_GROUP_LABEL}; \
                 name one"
            ));
        }
        (_, Some(g), _) if !g.is_empty() => (g, Some(PodGroupApi::Workload)),
        (Some(l), _, _) if !l.is_empty() => (l, Some(PodGroupApi::Coscheduling)),
        (_, _, Some(a)) if !a.is_empty() => (a, None),
        (None, None, None) => return Ok(None),
        _ => return Err("the gang name is empty".into()),
    };
    let size = match annotation(pod, GANG_SIZE_ANNOTATION) {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(invalid!("annotation {GANG_SIZE_ANNOTATION}={text:?} must be a positive integer")),
        },
    };
    if pod_group.is_none() && size.is_none() {
        return Err(invalid!("annotation {GANG_NAME_ANNOTATION} needs {GANG_SIZE_ANNOTATION} as well"));
    }
    let timeout = match annotation(pod, GANG_TIMEOUT_ANNOTATION) {
        None => None,
        Some(text) => Some(Duration::from_secs(
            text.parse().map_err(|_| format!("annotation {GANG_TIMEOUT_ANNOTATION}={text:?} must be whole seconds"))?,
        )),
    };
    Ok(Some(GangRef { key: format!("{namespace}/{name}"), pod_group, size, timeout }))
}

/// `mlsched.io/topology-required-level` / `-preferred-level` from annotations (of a pod or a PodGroup).
pub fn topology_requirement(
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Option<TopologyRequirement>, Invalid> {
    let get = |k: &str| annotations.and_then(|a| a.get(k)).map(|s| s.trim().to_string());
    match (get(TOPOLOGY_REQUIRED_ANNOTATION), get(TOPOLOGY_PREFERRED_ANNOTATION)) {
        (Some(_), Some(_)) => {
            Err(invalid!("set only one of {TOPOLOGY_REQUIRED_ANNOTATION} and {TOPOLOGY_PREFERRED_ANNOTATION}"))
        }
        (Some(level), None) if level.is_empty() => Err(invalid!("annotation {TOPOLOGY_REQUIRED_ANNOTATION} is empty")),
        (None, Some(level)) if level.is_empty() => Err(invalid!("annotation {TOPOLOGY_PREFERRED_ANNOTATION} is empty")),
        (Some(level), None) => Ok(Some(TopologyRequirement { level, required: true })),
        (None, Some(level)) => Ok(Some(TopologyRequirement { level, required: false })),
        (None, None) => Ok(None),
    }
}

/// An equality-based label selector: every `key: value` must be among an object's labels.
pub type LabelSelector = BTreeMap<String, String>;

/// `"k1=v1,k2=v2"` → `{k1: v1, k2: v2}` (an equality-based label selector; all pairs must match).
pub fn parse_label_selector(text: &str) -> Result<LabelSelector, Invalid> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value (in {text:?})"))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(invalid!("{pair:?} has an empty key (in {text:?})"));
        }
        if out.insert(key.to_string(), value.to_string()).is_some() {
            return Err(invalid!("key {key:?} is given twice (in {text:?})"));
        }
    }
    if out.is_empty() {
        return Err(invalid!("{text:?} selects nothing; give key=value pairs"));
    }
    Ok(out)
}

/// Whether `labels` carry every pair of `selector`.
pub fn selector_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `"0,3"` → `[0, 3]`; anything else → `None` (the device choice is then best fit).
pub fn parse_gpu_index(text: &str) -> Option<Vec<usize>> {
    if text.trim().is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|s| s.trim().parse().ok()).collect()
}

pub fn format_gpu_index(gpus: &[usize]) -> String {
    gpus.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Translates a pod. `Err` carries the message reported on the pod (Event + condition).
pub fn translate_pod(pod: &k8s::Pod) -> Result<PodInfo, Invalid> {
    let pod_ref = PodRef::of(pod);
    let spec = pod.spec.as_ref().ok_or("pod without a spec")?;
    let requests = effective_requests(spec)?;
    let gpu = gpu_request(pod, requests.get(GPU_RESOURCE).copied().unwrap_or(0))?;
    let mut resources = to_resources(&requests, requests.get("cpu").copied().unwrap_or(0));
    resources.pods = 1;
    let mut core = Pod::new(pod_ref.key(), resources, gpu);
    core.node_selector = spec.node_selector.clone().unwrap_or_default();
    core.affinity = node_affinity(spec)?;
    core.tolerations = tolerations(spec)?;
    core.priority = spec.priority.unwrap_or(0);
    core.validate()?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let near_workload = match annotation(pod, NEAR_WORKLOAD_ANNOTATION) {
        None => None,
        Some(text) => {
            Some(parse_label_selector(text).map_err(|e| format!("annotation {NEAR_WORKLOAD_ANNOTATION}: {e}"))?)
        }
    };
    let expected_runtime = match annotation(pod, EXPECTED_RUNTIME_ANNOTATION) {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds > 0 => Some(Duration::from_secs(seconds)),
            _ => {
                return Err(invalid!(
                    "annotation {EXPECTED_RUNTIME_ANNOTATION}={text:?} must be whole seconds above 0"
                ));
            }
        },
    };
    Ok(PodInfo {
        expected_runtime,
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        near_workload,
        topology: topology_requirement(pod.metadata.annotations.as_ref())?,
        gang: gang_ref(pod, &pod_ref.namespace)?,
        gpu_index: annotation(pod, GPU_INDEX_ANNOTATION).and_then(parse_gpu_index),
        scheduler_name: spec.scheduler_name.clone().unwrap_or_else(|| "default-scheduler".into()),
        node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
        terminal: matches!(phase, Some("Succeeded" | "Failed")),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        preempt_never: spec.preemption_policy.as_deref() == Some("Never"),
        pod_ref,
        pod: core,
    })
}

/// A bound pod must be accounted even when its mlsched annotations are malformed: its containers run
/// whatever we think of them. Falls back to the plain requests without the annotations.
pub fn translate_bound_pod(pod: &k8s::Pod) -> Result<PodInfo, Invalid> {
    translate_pod(pod).or_else(|first| {
        let mut stripped = pod.clone();
        if let Some(a) = stripped.metadata.annotations.as_mut() {
            a.retain(|k, _| !k.starts_with("mlsched.io/") || k == GPU_INDEX_ANNOTATION);
        }
        if let Some(spec) = stripped.spec.as_mut() {
            spec.affinity = None;
            spec.tolerations = None;
        }
        stripped.metadata.labels.as_mut().map(|l| l.remove(POD_GROUP_LABEL));
        translate_pod(&stripped).map_err(|_| first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> k8s::Node {
        serde_json::from_value(v).unwrap()
    }

    fn pod(v: serde_json::Value) -> k8s::Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn node_with_gpus_mig_and_taints() {
        let n = node(json!({
            "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "A100", "rack": "r1"}},
            "spec": {"unschedulable": true, "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "8",
                "nvidia.com/mig-1g.10gb": "7", "ephemeral-storage": "100G"}}
        }));
        let core = translate_node(&n).unwrap();
        assert_eq!(core.allocatable.cpu_milli, 64_000);
        assert_eq!(core.allocatable.memory_bytes, 256 << 30);
        assert_eq!(core.allocatable.pods, 110);
        assert_eq!(core.gpus.len(), 8);
        assert_eq!(core.gpu_model(), Some("A100"));
        assert_eq!(core.allocatable.extended("nvidia.com/mig-1g.10gb"), 7);
        assert_eq!(core.allocatable.extended("nvidia.com/gpu"), 0);
        assert_eq!(core.allocatable.extended("ephemeral-storage"), 100_000_000_000);
        assert!(core.unschedulable);
        assert_eq!(core.taints[0].effect, TaintEffect::NoSchedule);
        assert_eq!(core.labels["rack"], "r1");
    }

    #[test]
    fn node_without_gpu_label_gets_unknown_model_and_bad_quantity_is_an_error() {
        let n = node(json!({"metadata": {"name": "n"}, "status": {"allocatable": {"nvidia.com/gpu": "2"}}}));
        assert_eq!(translate_node(&n).unwrap().gpu_model(), Some(UNKNOWN_GPU_MODEL));
        let n = node(json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "lots"}}}));
        assert!(translate_node(&n).unwrap_err().0.contains("cpu"));
    }

    #[test]
    fn pod_requests_sum_containers_and_take_init_peak() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "ml"},
            "spec": {
                "schedulerName": "mlsched", "priority": 7,
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}}
                ],
                "initContainers": [
                    {"name": "big-init", "resources": {"requests": {"cpu": "4", "memory": "512Mi"}}}
                ]
            }
        }));
        let info = translate_pod(&p).unwrap();
        assert_eq!(info.pod.key, "ml/p");
        assert_eq!(info.pod.requests.cpu_milli, 4000, "init peak dominates cpu");
        assert_eq!(info.pod.requests.memory_bytes, 1 << 30, "container sum dominates memory");
        assert_eq!(info.pod.requests.pods, 1);
        assert_eq!(info.pod.gpu, GpuRequest::whole(2));
        assert_eq!(info.pod.priority, 7);
        assert_eq!(info.scheduler_name, "mlsched");
        assert!(info.gang.is_none());
    }

    #[test]
    fn sidecars_add_to_the_sum() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}}],
                "overhead": {"cpu": "10m"}
            }
        }));
        assert_eq!(translate_pod(&p).unwrap().pod.requests.cpu_milli, 1260);
    }

    #[test]
    fn gpu_share_models_and_their_errors() {
        let with = |ann: serde_json::Value, gpus: &str| {
            pod(json!({"metadata": {"name": "p", "annotations": ann},
                "spec": {"containers": [{"name": "a", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}))
        };
        let info =
            translate_pod(&with(json!({"mlsched.io/gpu-milli": "300", "mlsched.io/gpu-models": "A100|H100"}), "0"))
                .unwrap();
        assert_eq!(info.pod.gpu.milli_per_gpu, 300);
        assert!(info.pod.gpu.allows_model("H100") && !info.pod.gpu.allows_model("T4"));
        assert!(
            translate_pod(&with(json!({"mlsched.io/gpu-milli": "half"}), "0")).unwrap_err().0.contains("gpu-milli")
        );
        assert!(translate_pod(&with(json!({"mlsched.io/gpu-milli": "1500"}), "0")).is_err());
        assert!(translate_pod(&with(json!({"mlsched.io/gpu-milli": "300"}), "2")).is_err());
        assert!(translate_pod(&with(json!({"mlsched.io/gpu-models": " | "}), "1")).is_err());
        assert!(translate_pod(&with(json!({}), "x")).is_err());
    }

    #[test]
    fn affinity_selector_tolerations() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "a"}],
                "nodeSelector": {"pool": "gpu"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, {"operator": "Exists"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}, {"key": "spot", "operator": "DoesNotExist"}]}
                ]}}}
            }
        }));
        let info = translate_pod(&p).unwrap();
        assert_eq!(info.pod.node_selector["pool"], "gpu");
        assert_eq!(info.pod.affinity.terms[0].len(), 2);
        assert_eq!(info.pod.affinity.terms[0][1].op, SelectorOp::DoesNotExist);
        assert_eq!(info.pod.tolerations.len(), 2);
        assert!(info.pod.tolerations[1].key.is_empty() && info.pod.tolerations[1].exists);

        let gt = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]}}}}}));
        let err = translate_pod(&gt).unwrap_err().0;
        assert!(err.contains("Gt") && err.contains("cores"), "{err}");
    }

    #[test]
    fn gangs_from_label_or_annotations() {
        let p = pod(
            json!({"metadata": {"name": "w0", "namespace": "ml", "labels": {"scheduling.x-k8s.io/pod-group": "job"}},
            "spec": {"containers": []}}),
        );
        let g = translate_pod(&p).unwrap().gang.unwrap();
        assert_eq!(g.key, "ml/job");
        assert_eq!(g.pod_group, Some(PodGroupApi::Coscheduling));
        let p = pod(
            json!({"metadata": {"name": "w0", "namespace": "ml"}, "spec": {"containers": [], "schedulingGroup": {"podGroupName": "job"}}}),
        );
        let g = translate_pod(&p).unwrap().gang.unwrap();
        assert_eq!((g.key.as_str(), g.pod_group), ("ml/job", Some(PodGroupApi::Workload)));
        let p = pod(json!({"metadata": {"name": "w0", "labels": {"scheduling.x-k8s.io/pod-group": "a"}},
            "spec": {"containers": [], "schedulingGroup": {"podGroupName": "b"}}}));
        assert!(translate_pod(&p).unwrap_err().0.starts_with("the pod names two PodGroups"));
        let p = pod(
            json!({"metadata": {"name": "w0", "annotations": {"mlsched.io/gang-name": "j", "mlsched.io/gang-size": "8",
            "mlsched.io/topology-required-level": "rack", "mlsched.io/gang-timeout-seconds": "30"}}, "spec": {"containers": []}}),
        );
        let info = translate_pod(&p).unwrap();
        assert_eq!(info.topology, Some(TopologyRequirement { level: "rack".into(), required: true }));
        let g = info.gang.unwrap();
        assert_eq!((g.key.as_str(), g.size, g.pod_group), ("default/j", Some(8), None));
        assert_eq!(g.timeout, Some(Duration::from_secs(30)));
        let p = pod(
            json!({"metadata": {"name": "w0", "annotations": {"mlsched.io/gang-name": "j"}}, "spec": {"containers": []}}),
        );
        assert!(translate_pod(&p).unwrap_err().0.contains("gang-size"));
        let p = pod(
            json!({"metadata": {"name": "w0", "annotations": {"mlsched.io/gang-name": "j", "mlsched.io/gang-size": "0"}},
            "spec": {"containers": []}}),
        );
        assert!(translate_pod(&p).is_err());
    }

    #[test]
    fn a_single_pods_topology_annotation_is_read_and_a_malformed_one_is_reported() {
        let with = |ann: serde_json::Value| {
            pod(json!({"metadata": {"name": "p", "annotations": ann}, "spec": {"containers": []}}))
        };
        let info = translate_pod(&with(json!({"mlsched.io/topology-preferred-level": " rack "}))).unwrap();
        assert!(info.gang.is_none());
        assert_eq!(info.topology, Some(TopologyRequirement { level: "rack".into(), required: false }));
        let err = translate_pod(&with(json!({"mlsched.io/topology-required-level": " "}))).unwrap_err().0;
        assert!(err.contains("mlsched.io/topology-required-level") && err.contains("empty"), "{err}");
        let both = json!({"mlsched.io/topology-required-level": "rack", "mlsched.io/topology-preferred-level": "rack"});
        assert!(translate_pod(&with(both)).unwrap_err().0.contains("only one of"));
    }

    #[test]
    fn bound_pods_keep_their_requests_despite_bad_annotations() {
        let p = pod(
            json!({"metadata": {"name": "p", "annotations": {"mlsched.io/gpu-milli": "junk", "mlsched.io/gpu-index": "1,3"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "a", "resources": {"requests": {"cpu": "2", "nvidia.com/gpu": "2"}}}]},
            "status": {"phase": "Running"}}),
        );
        assert!(translate_pod(&p).is_err());
        let info = translate_bound_pod(&p).unwrap();
        assert_eq!(info.pod.requests.cpu_milli, 2000);
        assert_eq!(info.gpu_index, Some(vec![1, 3]));
        assert_eq!(info.node_name.as_deref(), Some("n1"));
        assert!(!info.terminal);
    }

    #[test]
    fn near_workload_selector_parses_and_bad_ones_are_reported() {
        let with = |ann: &str| {
            pod(json!({"metadata": {"name": "p", "labels": {"app": "web"},
                "annotations": {"mlsched.io/near-workload": ann}}, "spec": {"containers": []}}))
        };
        let info = translate_pod(&with(" app=web , tier=cache ")).unwrap();
        let selector = info.near_workload.unwrap();
        assert_eq!(selector.len(), 2);
        assert_eq!(selector["tier"], "cache");
        assert_eq!(info.labels["app"], "web");
        assert!(!selector_matches(&selector, &info.labels));
        assert!(selector_matches(&parse_label_selector("app=web").unwrap(), &info.labels));
        for bad in ["", "app", "=web", "app=web,app=db"] {
            let err = translate_pod(&with(bad)).unwrap_err().0;
            assert!(err.contains("near-workload"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn gpu_index_round_trip() {
        assert_eq!(parse_gpu_index(&format_gpu_index(&[0, 5])), Some(vec![0, 5]));
        assert_eq!(parse_gpu_index("a"), None);
    }
}
