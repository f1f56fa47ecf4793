//! Observe: one period's picture of a workload, everything [`crate::decide::decide`] reads. The target and
//! its scale, its pods and their PodMetrics, the usage history and OOM kills carried in [`Memory`], the
//! baseline requests, a recreate rollout's progress and the Placement API's headroom.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use k8s_metrics::v1beta1::PodMetrics;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::config::Config;
use crate::crd::ContainerResources;
use crate::decide::{ContainerSample, Headroom, Input, Mode, PodSample, Policy, Res};
use crate::memory::{ContainerKey, Memory};
use crate::placement::{Placement, TemplateInfo};
use crate::target::{Target, Workload};
use mlsched::quantity::{parse_milli_i64, parse_units};

/// A recreate rollout not finished after this long is given up (and reported).
pub const RECREATE_TIMEOUT_S: f64 = 600.0;

/// What a period given up could not reach: the `source` label of `mlsched_autoscaler_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Kube,
    Metrics,
    Placement,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kube => "kube",
            Source::Metrics => "metrics",
            Source::Placement => "placement",
        }
    }
}

/// A period given up (while observing or acting): which condition says so, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Fail {
    pub source: Source,
    pub condition: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Fail {
    pub fn new(source: Source, condition: &'static str, reason: &'static str, message: impl Into<String>) -> Fail {
        Fail { source, condition, reason, message: message.into() }
    }

    /// A Kubernetes API call failed: reported on `AbleToScale`.
    pub fn kube(reason: &'static str, message: impl Into<String>) -> Fail {
        Fail::new(Source::Kube, "AbleToScale", reason, message)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Fail {}

/// One workload's period: what observe and act work on.
pub struct Scope<'a> {
    pub client: &'a Client,
    pub placement: &'a Placement,
    pub config: &'a Config,
    pub policy: &'a Policy,
    pub target: &'a Target,
    pub ns: &'a str,
    /// `namespace/name` of the HybridAutoscaler, for logs.
    pub key: &'a str,
    /// Seconds on the controller's monotonic clock.
    pub now: f64,
}

impl Scope<'_> {
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.ns)
    }
}

/// The target as read, before anything else is: its scale is reported even when the rest fails.
pub struct Read {
    workload: Workload,
    pub replicas: u32,
}

/// A recreate rollout's progress.
#[derive(Clone, Debug, PartialEq)]
pub enum Rollout {
    /// None running (or the last one finished).
    Idle,
    /// Given up after [`RECREATE_TIMEOUT_S`]: `stale` pods still run the old requests.
    Stalled { stale: usize },
    /// Still rolling. `next`: the pod to delete now, on an OnDelete StatefulSet whose replicas are all up
    /// (its controller recreates a pod only once we delete it).
    Rolling { next: Option<String> },
}

/// Everything one decision reads, and what acting on it needs of the target.
#[derive(Debug)]
pub struct Observation {
    pub now: f64,
    pub replicas: u32,
    /// The selector's `matchLabels` as `k=v,...`: pods and PodMetrics are listed by it, and it is the
    /// near-workload annotation's value.
    pub selector: String,
    /// The template's near-workload annotation as it is.
    pub near_workload: Option<String>,
    /// What `PlanReplicas` needs of the template; its requests are the baseline's, per pod.
    pub template: TemplateInfo,
    pub pods: Vec<PodSample>,
    pub baseline: BTreeMap<String, Res>,
    pub rollout: Rollout,
    pub headroom: Headroom,
    pub limit_base: u32,
}

impl Observation {
    pub fn input<'a>(&'a self, policy: &'a Policy, mem: &'a Memory) -> Input<'a> {
        Input {
            policy,
            now: self.now,
            replicas: self.replicas,
            pods: &self.pods,
            baseline: &self.baseline,
            headroom: &self.headroom,
            in_place_available: mem.in_place_available,
            history: &mem.replicas.recommendations,
            limit_base: self.limit_base,
            rollout_in_progress: matches!(self.rollout, Rollout::Rolling { .. }),
            last_grow_at: mem.last_grow_at,
        }
    }
}

pub async fn read_target(target: &Target) -> Result<Read, Fail> {
    let name = &target.name;
    let workload =
        target.get().await.map_err(|e| Fail::kube("FailedGetTarget", format!("{} {name}: {e}", target.kind_name)))?;
    let replicas =
        target.replicas().await.map_err(|e| Fail::kube("FailedGetScale", format!("scale of {name}: {e}")))?;
    Ok(Read { workload, replicas })
}

/// `recorded_baseline`: `status.baselineRequests`, the template's requests from before the recreate path
/// rewrote them.
pub async fn observe(
    s: &Scope<'_>,
    mem: &mut Memory,
    read: Read,
    recorded_baseline: &[ContainerResources],
) -> Result<Observation, Fail> {
    let labels = read
        .workload
        .match_labels()
        .ok_or_else(|| Fail::kube("UnsupportedSelector", "the target's selector must be matchLabels only"))?;
    let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let pods = list_pods(s, &selector).await?;
    let usage = list_usage(s, &selector).await?;
    let pods = Sampler { mem: &mut *mem, usage: &usage, now: s.now, keep: s.config.history_seconds }.sample(&pods);
    let template = read.workload.template();
    let baseline = baseline(template, recorded_baseline);
    let may_delete = read.workload.on_delete() && pods.len() as u32 == read.replicas;
    let rollout = rollout(mem, &pods, s.now, may_delete);
    let headroom = headroom(s, &pods).await;
    let limit_base = mem.replicas.limit_base(s.now, read.replicas, s.config.scale_up_limit.period_seconds);
    Ok(Observation {
        now: s.now,
        replicas: read.replicas,
        near_workload: near_workload(template),
        template: template_info(template, &baseline),
        selector,
        pods,
        baseline,
        rollout,
        headroom,
        limit_base,
    })
}

/// The pods that count: neither being deleted nor finished.
async fn list_pods(s: &Scope<'_>, selector: &str) -> Result<Vec<Pod>, Fail> {
    let list = s
        .pods()
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| Fail::kube("FailedListPods", format!("pods of {}: {e}", s.target.name)))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .collect())
}

/// The latest metrics.k8s.io sample of each container; a container without one is left out.
async fn list_usage(s: &Scope<'_>, selector: &str) -> Result<HashMap<ContainerKey, Res>, Fail> {
    let api: Api<PodMetrics> = Api::namespaced(s.client.clone(), s.ns);
    let failed = |e: String| Fail::new(Source::Metrics, "MetricsAvailable", "FailedGetPodMetrics", e);
    let params = ListParams::default().labels(selector);
    let list = api.list(&params);
    let samples = match tokio::time::timeout(s.config.metrics_timeout(), list).await {
        Ok(Ok(samples)) => samples,
        Ok(Err(e)) => return Err(failed(format!("metrics.k8s.io PodMetrics: {e}"))),
        Err(_) => {
            let secs = s.config.metrics_timeout_seconds;
            return Err(failed(format!("metrics.k8s.io PodMetrics: no answer within {secs}s")));
        }
    };
    Ok(samples
        .items
        .iter()
        .flat_map(|m| {
            let pod = m.metadata.name.clone().unwrap_or_default();
            m.containers.iter().filter_map(move |c| {
                let cpu = parse_milli_i64(&c.usage.cpu.0).ok()?;
                let mem = parse_units(&c.usage.memory.0).ok()?;
                Some(((pod.clone(), c.name.clone()), Res::new(cpu, mem)))
            })
        })
        .collect())
}

/// Turns pods into samples, feeding this period's usage into the history and remembering restart counts.
struct Sampler<'a> {
    mem: &'a mut Memory,
    usage: &'a HashMap<ContainerKey, Res>,
    now: f64,
    /// Seconds of usage history kept.
    keep: f64,
}

impl Sampler<'_> {
    /// Forgets the history of containers gone, so that a pod's name reused later starts afresh.
    fn sample(mut self, pods: &[Pod]) -> Vec<PodSample> {
        let mut live = HashSet::new();
        let samples = pods.iter().map(|p| self.pod(p, &mut live)).collect();
        self.mem.usage.retain(|k, _| live.contains(k));
        self.mem.restarts.retain(|k, _| live.contains(k));
        samples
    }

    fn pod(&mut self, p: &Pod, live: &mut HashSet<ContainerKey>) -> PodSample {
        let name = p.name_any();
        let spec = p.spec.clone().unwrap_or_default();
        let st = p.status.clone().unwrap_or_default();
        let resizing = st
            .conditions
            .iter()
            .flatten()
            .any(|c| (c.type_ == "PodResizePending" || c.type_ == "PodResizeInProgress") && c.status == "True");
        let statuses = st.container_statuses.unwrap_or_default();
        let containers = spec
            .containers
            .iter()
            .map(|c| {
                let k = (name.clone(), c.name.clone());
                live.insert(k.clone());
                self.container(k, c, statuses.iter().find(|s| s.name == c.name))
            })
            .collect();
        PodSample { name, node: spec.node_name.unwrap_or_default(), containers, resizing }
    }

    fn container(&mut self, k: ContainerKey, c: &Container, status: Option<&ContainerStatus>) -> ContainerSample {
        let usage = self.usage.get(&k).copied();
        let window = self.mem.usage.entry(k.clone()).or_default();
        window.observe(self.now, usage, self.keep);
        let p90 = window.p90();
        let restarts = status.map_or(0, |s| s.restart_count);
        // The last termination stays OOMKilled until the next one: only a restart since last period is new.
        let oom = status.is_some_and(last_oom_killed) && self.mem.restarts.get(&k).is_some_and(|&r| restarts > r);
        self.mem.restarts.insert(k, restarts);
        let res = c.resources.clone().unwrap_or_default();
        ContainerSample {
            name: c.name.clone(),
            request: Res::new(
                quantity_of(&res.requests, "cpu", true).unwrap_or(0),
                quantity_of(&res.requests, "memory", false).unwrap_or(0),
            ),
            limit_cpu: quantity_of(&res.limits, "cpu", true),
            limit_mem: quantity_of(&res.limits, "memory", false),
            usage,
            p90,
            oom_killed: oom,
        }
    }
}

fn last_oom_killed(s: &ContainerStatus) -> bool {
    let terminated = s.last_state.as_ref().and_then(|l| l.terminated.as_ref());
    terminated.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
}

/// A quantity of a requests or limits map: millicores when `cpu`, else bytes.
pub fn quantity_of(map: &Option<BTreeMap<String, Quantity>>, key: &str, cpu: bool) -> Option<i64> {
    let q = map.as_ref()?.get(key)?;
    if cpu { parse_milli_i64(&q.0).ok() } else { parse_units(&q.0).ok() }
}

/// The no-fight rule's baseline: the template's requests (in-place resizes never change the template),
/// except where the recreate path rewrote them, whose earlier values the status recorded.
fn baseline(template: &PodTemplateSpec, recorded: &[ContainerResources]) -> BTreeMap<String, Res> {
    let mut baseline: BTreeMap<String, Res> = template_containers(template)
        .iter()
        .map(|c| {
            let requests = c.resources.as_ref().and_then(|r| r.requests.clone());
            let cpu = quantity_of(&requests, "cpu", true).unwrap_or(0);
            let mem = quantity_of(&requests, "memory", false).unwrap_or(0);
            (c.name.clone(), Res::new(cpu, mem))
        })
        .collect();
    for b in recorded {
        let cpu = parse_milli_i64(&b.cpu).unwrap_or(0);
        let mem = parse_units(&b.memory).unwrap_or(0);
        baseline.insert(b.container_name.clone(), Res::new(cpu, mem));
    }
    baseline
}

fn template_containers(template: &PodTemplateSpec) -> &[Container] {
    template.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

fn near_workload(template: &PodTemplateSpec) -> Option<String> {
    let annotations = template.metadata.as_ref()?.annotations.as_ref()?;
    annotations.get(crate::run::NEAR_WORKLOAD_ANNOTATION).cloned()
}

fn template_info(template: &PodTemplateSpec, baseline: &BTreeMap<String, Res>) -> TemplateInfo {
    let spec = template.spec.as_ref();
    TemplateInfo {
        requests: baseline.values().fold(Res::default(), |a, r| Res::new(a.cpu + r.cpu, a.mem + r.mem)),
        node_selector: spec.and_then(|s| s.node_selector.clone()).unwrap_or_default(),
        tolerated_taint_keys: spec
            .and_then(|s| s.tolerations.as_ref())
            .map(|ts| ts.iter().filter_map(|t| t.key.clone()).collect())
            .unwrap_or_default(),
    }
}

/// Ends a rollout that finished or timed out. `may_delete`: an OnDelete target with every replica up.
fn rollout(mem: &mut Memory, pods: &[PodSample], now: f64, may_delete: bool) -> Rollout {
    let Some((started, want)) = &mem.recreate else { return Rollout::Idle };
    let stale: Vec<&PodSample> = pods
        .iter()
        .filter(|p| p.containers.iter().any(|c| want.get(&c.name).is_some_and(|w| *w != c.request)))
        .collect();
    if stale.is_empty() {
        mem.recreate = None;
        Rollout::Idle
    } else if now - started > RECREATE_TIMEOUT_S {
        let stale = stale.len();
        mem.recreate = None;
        Rollout::Stalled { stale }
    } else {
        Rollout::Rolling { next: may_delete.then(|| stale[0].name.clone()) }
    }
}

/// Not asked in mode HorizontalOnly, which never grows a pod.
async fn headroom(s: &Scope<'_>, pods: &[PodSample]) -> Headroom {
    if s.policy.mode == Mode::HorizontalOnly {
        return Headroom::NotAsked;
    }
    let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
    match s.placement.node_headroom(s.ns, &names).await {
        Ok(h) => Headroom::Known(h),
        Err(e) => Headroom::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
    use serde_json::json;

    fn pod(restarts: i32, oom: bool) -> Pod {
        let last_state = oom.then(|| ContainerState {
            terminated: Some(ContainerStateTerminated { reason: Some("OOMKilled".into()), ..Default::default() }),
            ..Default::default()
        });
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "resources": {
                "requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1"}}}]},
        }))
        .unwrap();
        p.status = Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                restart_count: restarts,
                last_state,
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn sample(mem: &mut Memory, p: &Pod, now: f64) -> PodSample {
        let usage = HashMap::from([(("web-1".to_string(), "app".to_string()), Res::new(400, 100 << 20))]);
        Sampler { mem, usage: &usage, now, keep: 60.0 }.sample(std::slice::from_ref(p)).remove(0)
    }

    #[test]
    fn an_oom_kill_counts_once_when_the_restart_count_grows() {
        let mut mem = Memory::default();
        let s = sample(&mut mem, &pod(0, true), 0.0);
        assert!(!s.containers[0].oom_killed, "no earlier count: the kill may be old");
        assert_eq!(s.containers[0].request, Res::new(500, 256 << 20));
        assert_eq!((s.containers[0].limit_cpu, s.containers[0].limit_mem), (Some(1000), None));
        assert_eq!(s.node, "n1");
        assert!(sample(&mut mem, &pod(1, true), 1.0).containers[0].oom_killed);
        assert!(!sample(&mut mem, &pod(1, true), 2.0).containers[0].oom_killed, "the same kill again");
        assert!(!sample(&mut mem, &pod(2, false), 3.0).containers[0].oom_killed, "restarted, not OOM");
        assert_eq!(mem.usage[&("web-1".to_string(), "app".to_string())].len(), 4);
        assert_eq!(sample(&mut mem, &pod(2, false), 4.0).containers[0].p90, Some(Res::new(400, 100 << 20)));
    }

    #[test]
    fn the_history_of_a_pod_gone_is_forgotten() {
        let mut mem = Memory::default();
        sample(&mut mem, &pod(0, false), 0.0);
        Sampler { mem: &mut mem, usage: &HashMap::new(), now: 1.0, keep: 60.0 }.sample(&[]);
        assert!(mem.usage.is_empty() && mem.restarts.is_empty());
    }

    fn template() -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"annotations": {"mlsched.io/near-workload": "app=web"}},
            "spec": {
                "nodeSelector": {"zone": "a"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}, {"operator": "Exists"}],
                "containers": [
                    {"name": "app", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                    {"name": "side", "resources": {"requests": {"cpu": "100m"}}},
                ],
            },
        }))
        .unwrap()
    }

    #[test]
    fn the_recorded_baseline_wins_over_the_template() {
        let t = template();
        let recorded =
            [ContainerResources { container_name: "app".into(), cpu: "500m".into(), memory: "512Mi".into() }];
        let b = baseline(&t, &recorded);
        assert_eq!(b["app"], Res::new(500, 512 << 20));
        assert_eq!(b["side"], Res::new(100, 0));
        let info = template_info(&t, &b);
        assert_eq!(info.requests, Res::new(600, 512 << 20));
        assert_eq!(info.node_selector, BTreeMap::from([("zone".to_string(), "a".to_string())]));
        assert_eq!(info.tolerated_taint_keys, vec!["gpu".to_string()]);
        assert_eq!(near_workload(&t).as_deref(), Some("app=web"));
    }

    fn pod_sample(name: &str, cpu: i64) -> PodSample {
        let c = ContainerSample { name: "app".into(), request: Res::new(cpu, 0), ..Default::default() };
        PodSample { name: name.into(), node: "n1".into(), containers: vec![c], resizing: false }
    }

    #[test]
    fn a_rollout_rolls_finishes_or_stalls() {
        let mut mem = Memory::default();
        assert_eq!(rollout(&mut mem, &[], 0.0, true), Rollout::Idle);
        let want = BTreeMap::from([("app".to_string(), Res::new(800, 0))]);
        mem.recreate = Some((10.0, want));
        let pods = [pod_sample("a", 800), pod_sample("b", 500), pod_sample("c", 500)];
        assert_eq!(rollout(&mut mem, &pods, 20.0, true), Rollout::Rolling { next: Some("b".into()) });
        assert_eq!(rollout(&mut mem, &pods, 20.0, false), Rollout::Rolling { next: None });
        assert_eq!(rollout(&mut mem, &pods, 10.0 + RECREATE_TIMEOUT_S + 1.0, true), Rollout::Stalled { stale: 2 });
        assert!(mem.recreate.is_none());
        mem.recreate = Some((10.0, BTreeMap::from([("app".to_string(), Res::new(800, 0))])));
        assert_eq!(rollout(&mut mem, &pods[..1], 20.0, true), Rollout::Idle);
        assert!(mem.recreate.is_none(), "finished");
    }
}
