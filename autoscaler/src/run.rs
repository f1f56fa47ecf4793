//! The controller: once per period, for every HybridAutoscaler, read the target, its pods and their
//! PodMetrics, ask the scheduler's Placement API, decide ([`crate::decide`]) and apply at most one action,
//! then write status, Events and metrics. Only the lease holder acts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_metrics::v1beta1::PodMetrics;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use mlsched_edge::http::Health;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::crd::*;
use crate::decide::{
    self, Action, Blocker, Bounds, ContainerResize, ContainerSample, Headroom, PodSample, Policy, Res, UsageWindow,
};
use crate::metrics::Metrics;
use crate::placement::{Placement, TemplateInfo};
use mlsched::quantity::{format_cpu, format_memory, parse_milli_i64, parse_units};

/// Pod template annotation written before a scale-out: the workload's `matchLabels` as `k=v,...`, from
/// which the scheduler places the new replicas near the existing pods.
pub const NEAR_WORKLOAD_ANNOTATION: &str = "mlsched.io/near-workload";
pub const COMPONENT: &str = "mlsched-autoscaler";
/// `/readyz` until the first list of HybridAutoscalers succeeded (a standby is ready too).
const NOT_READY: &str = "not synced";
/// A recreate rollout not finished after this long is given up (and reported).
const RECREATE_TIMEOUT_S: f64 = 600.0;

/// Everything the controller remembers of one workload between periods (not persisted: after a restart
/// the history refills, which only delays decisions).
#[derive(Debug)]
struct Memory {
    usage: HashMap<(String, String), UsageWindow>,
    restarts: HashMap<(String, String), i32>,
    recommendations: Vec<(f64, u32)>,
    replicas_seen: Vec<(f64, u32)>,
    in_place_available: bool,
    last_grow_at: Option<f64>,
    recreate: Option<(f64, BTreeMap<String, Res>)>,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            usage: HashMap::new(),
            restarts: HashMap::new(),
            recommendations: Vec::new(),
            replicas_seen: Vec::new(),
            in_place_available: true,
            last_grow_at: None,
            recreate: None,
        }
    }
}

struct Ctx {
    client: Client,
    config: Config,
    placement: Placement,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    start: Instant,
}

/// Runs the autoscaler until `shutdown` resolves. `listening` receives the bound HTTP address.
pub async fn run(
    config: Config,
    client: Client,
    shutdown: impl Future<Output = ()> + Send,
    listening: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let listener = tokio::net::TcpListener::bind(&config.listen_address).await?;
    let addr = listener.local_addr()?;
    info!(%addr, "serving /metrics, /healthz, /readyz");
    if let Some(tx) = listening {
        let _ = tx.send(addr);
    }
    let http = tokio::spawn(mlsched_edge::http::serve(listener, metrics.clone(), health.clone(), NOT_READY));
    let identity = config.leader_election.identity.clone().unwrap_or_else(default_identity);
    let placement = Placement::new(&config.placement_uri().map_err(anyhow::Error::msg)?, config.placement_timeout())
        .map_err(anyhow::Error::msg)?;
    let recorder =
        Recorder::new(client.clone(), Reporter { controller: COMPONENT.into(), instance: Some(identity.clone()) });

    let mut lease = None;
    if config.leader_election.enabled {
        let le = &config.leader_election;
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
            .with_namespace(&le.namespace)
            .with_identity(identity.clone())
            .with_duration(le.lease_duration_seconds)
            .with_grace(le.renew_grace_seconds)
            .build()
            .await?;
        lease = Some(manager.watch().await);
    }
    let ctx = Ctx { client, config, placement, recorder, metrics: metrics.clone(), start: Instant::now() };
    let mut memory: HashMap<String, Memory> = HashMap::new();
    let mut ticker = tokio::time::interval(ctx.config.period());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    health.live.store(true, Ordering::Relaxed);
    let mut shutdown = std::pin::pin!(shutdown);
    'periods: loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let leader = lease.as_ref().is_none_or(|(rx, _)| *rx.borrow());
        ctx.metrics.is_leader.set(leader as i64);
        let api: Api<HybridAutoscaler> = match &ctx.config.namespace {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        let list = match tokio::time::timeout(ctx.config.api_timeout(), api.list(&ListParams::default())).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                warn!(error = %e, "listing HybridAutoscalers failed");
                continue;
            }
            Err(_) => {
                warn!("listing HybridAutoscalers timed out");
                continue;
            }
        };
        health.ready.store(true, Ordering::Relaxed);
        if !leader {
            continue;
        }
        let keys: Vec<String> =
            list.items.iter().map(|h| format!("{}/{}", h.namespace().unwrap_or_default(), h.name_any())).collect();
        memory.retain(|k, _| keys.contains(k));
        for (ha, key) in list.items.iter().zip(keys) {
            let mem = memory.entry(key.clone()).or_default();
            let t0 = Instant::now();
            let work = async {
                tokio::select! {
                    r = tokio::time::timeout(ctx.config.api_timeout(), reconcile(&ctx, mem, ha, &key)) => Some(r),
                    _ = &mut shutdown => None,
                }
            };
            match work.await {
                // The shutdown future has completed: polling it again (next workload, next tick) panics.
                None => break 'periods,
                Some(Err(_)) => {
                    warn!(workload = %key, "the period timed out; nothing more done this period");
                    ctx.metrics.error(&key, "kube");
                }
                Some(Ok(())) => {}
            }
            ctx.metrics.reconcile_duration.observe(t0.elapsed().as_secs_f64());
        }
    }
    info!("shutting down");
    health.ready.store(false, Ordering::Relaxed);
    if let Some((rx, handle)) = lease {
        // Dropping the receiver makes the lease task release the lease, so a standby takes over at once.
        drop(rx);
        match tokio::time::timeout(Duration::from_secs(3), handle).await {
            Ok(Ok(Ok(_))) => info!("lease released"),
            other => debug!(?other, "lease task did not end cleanly"),
        }
    }
    http.abort();
    Ok(())
}

fn default_identity() -> String {
    let host = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| COMPONENT.into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{host}-{nanos:08x}")
}

fn now_text() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn parse_bound(q: &Option<ResourceQuantities>, at: &str) -> Result<(Option<i64>, Option<i64>), String> {
    let Some(q) = q else { return Ok((None, None)) };
    let cpu = q.cpu.as_deref().map(parse_milli_i64).transpose().map_err(|e| format!("{at}.cpu: {e}"))?;
    let mem = q.memory.as_deref().map(parse_units).transpose().map_err(|e| format!("{at}.memory: {e}"))?;
    Ok((cpu, mem))
}

/// Validates the spec into a [`Policy`]; the error names the field (it becomes a `Valid=False` condition).
pub fn policy_from_spec(spec: &HybridAutoscalerSpec, config: &Config) -> Result<Policy, String> {
    let t = &spec.target_ref;
    if !matches!(t.kind.as_str(), "Deployment" | "StatefulSet") {
        return Err(format!("spec.targetRef.kind: {:?} is not Deployment or StatefulSet", t.kind));
    }
    if t.api_version.as_deref().is_some_and(|v| v != "apps/v1") {
        return Err(format!("spec.targetRef.apiVersion: {:?} is not apps/v1", t.api_version.as_deref().unwrap_or("")));
    }
    if t.name.trim().is_empty() {
        return Err("spec.targetRef.name: must not be empty".into());
    }
    let min = spec.min_replicas.unwrap_or(1);
    if min < 1 {
        return Err(format!("spec.minReplicas: {min} must be at least 1"));
    }
    if spec.max_replicas < min {
        return Err(format!("spec.maxReplicas: {} is below minReplicas {min}", spec.max_replicas));
    }
    let pct = |v: Option<i32>, field: &str| -> Result<Option<f64>, String> {
        match v {
            None => Ok(None),
            Some(p) if (1..=1000).contains(&p) => Ok(Some(p as f64 / 100.0)),
            Some(p) => Err(format!("spec.{field}: {p} is outside 1..=1000")),
        }
    };
    let cpu_target = pct(spec.target_cpu_utilization_percent, "targetCPUUtilizationPercent")?;
    let mem_target = pct(spec.target_memory_utilization_percent, "targetMemoryUtilizationPercent")?;
    if cpu_target.is_none() && mem_target.is_none() {
        return Err("spec: set targetCPUUtilizationPercent or targetMemoryUtilizationPercent".into());
    }
    let tolerance = spec.tolerance.unwrap_or(0.1);
    if !(tolerance.is_finite() && (0.0..1.0).contains(&tolerance)) {
        return Err(format!("spec.tolerance: {tolerance} is outside 0..1"));
    }
    let window = |v: Option<i32>, default: i32, field: &str| -> Result<f64, String> {
        let s = v.unwrap_or(default);
        if !(0..=3600).contains(&s) {
            return Err(format!("spec.{field}: {s} is outside 0..=3600"));
        }
        Ok(s as f64)
    };
    let mut bounds = BTreeMap::new();
    for (i, cp) in spec.container_policies.iter().enumerate() {
        let at = format!("spec.containerPolicies[{i}]");
        if cp.container_name.trim().is_empty() {
            return Err(format!("{at}.containerName: must not be empty (use \"*\" for every container)"));
        }
        let (min_cpu, min_mem) = parse_bound(&cp.min_allowed, &format!("{at}.minAllowed"))?;
        let (max_cpu, max_mem) = parse_bound(&cp.max_allowed, &format!("{at}.maxAllowed"))?;
        if min_cpu.zip(max_cpu).is_some_and(|(a, b)| a > b) || min_mem.zip(max_mem).is_some_and(|(a, b)| a > b) {
            return Err(format!("{at}: minAllowed is above maxAllowed"));
        }
        bounds.entry(cp.container_name.clone()).or_insert(Bounds { min_cpu, max_cpu, min_mem, max_mem });
    }
    Ok(Policy {
        min_replicas: min as u32,
        max_replicas: spec.max_replicas as u32,
        cpu_target,
        mem_target,
        tolerance,
        scale_up_window_s: window(spec.scale_up_stabilization_seconds, 0, "scaleUpStabilizationSeconds")?,
        scale_down_window_s: window(spec.scale_down_stabilization_seconds, 300, "scaleDownStabilizationSeconds")?,
        mode: spec.mode.unwrap_or_default().into(),
        allow_recreate: spec.allow_recreate.unwrap_or(false),
        bounds,
        margin: config.margin,
        up_limit_pods: config.scale_up_limit.pods,
        up_limit_factor: config.scale_up_limit.factor,
    })
}

/// Sets a condition; returns true when its status or reason changed (then an Event is worth writing).
fn set_condition(conds: &mut Vec<Condition>, type_: &str, status: bool, reason: &str, message: &str) -> bool {
    let s = if status { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let changed = c.status != s || c.reason != reason;
            if c.status != s {
                c.last_transition_time = Some(now_text());
            }
            c.status = s.into();
            c.reason = reason.into();
            c.message = message.into();
            changed
        }
        None => {
            conds.push(Condition {
                type_: type_.into(),
                status: s.into(),
                reason: reason.into(),
                message: message.into(),
                last_transition_time: Some(now_text()),
            });
            true
        }
    }
}

fn quantity_of(
    map: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
    cpu: bool,
) -> Option<i64> {
    let q = map.as_ref()?.get(key)?;
    if cpu { parse_milli_i64(&q.0).ok() } else { parse_units(&q.0).ok() }
}

/// The workload object, as JSON, and typed access to its scale subresource.
enum Target {
    Deployment(Api<Deployment>),
    StatefulSet(Api<StatefulSet>),
}

impl Target {
    fn new(client: &Client, ns: &str, kind: &str) -> Target {
        if kind == "StatefulSet" {
            Target::StatefulSet(Api::namespaced(client.clone(), ns))
        } else {
            Target::Deployment(Api::namespaced(client.clone(), ns))
        }
    }

    async fn get(&self, name: &str) -> Result<Value, kube::Error> {
        let v = match self {
            Target::Deployment(a) => serde_json::to_value(a.get(name).await?),
            Target::StatefulSet(a) => serde_json::to_value(a.get(name).await?),
        };
        Ok(v.unwrap_or_default())
    }

    async fn replicas(&self, name: &str) -> Result<u32, kube::Error> {
        let s = match self {
            Target::Deployment(a) => a.get_scale(name).await?,
            Target::StatefulSet(a) => a.get_scale(name).await?,
        };
        Ok(s.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32)
    }

    async fn scale(&self, name: &str, to: u32) -> Result<(), kube::Error> {
        let p = Patch::Merge(json!({"spec": {"replicas": to}}));
        let pp = PatchParams::default();
        match self {
            Target::Deployment(a) => a.patch_scale(name, &pp, &p).await.map(|_| ()),
            Target::StatefulSet(a) => a.patch_scale(name, &pp, &p).await.map(|_| ()),
        }
    }

    async fn patch(&self, name: &str, body: Value) -> Result<(), kube::Error> {
        let p = Patch::Strategic(body);
        let pp = PatchParams::default();
        match self {
            Target::Deployment(a) => a.patch(name, &pp, &p).await.map(|_| ()),
            Target::StatefulSet(a) => a.patch(name, &pp, &p).await.map(|_| ()),
        }
    }
}

/// A period given up: which condition says so, and why.
struct Fail {
    source: &'static str,
    condition: &'static str,
    reason: &'static str,
    message: String,
}

fn fail(source: &'static str, condition: &'static str, reason: &'static str, message: impl Into<String>) -> Fail {
    Fail { source, condition, reason, message: message.into() }
}

async fn reconcile(ctx: &Ctx, mem: &mut Memory, ha: &HybridAutoscaler, key: &str) {
    let ns = ha.namespace().unwrap_or_default();
    let name = ha.name_any();
    let mut status = ha.status.clone().unwrap_or_default();
    status.observed_generation = ha.metadata.generation;
    let mut events: Vec<(EventType, &'static str, String, bool)> = Vec::new();
    match policy_from_spec(&ha.spec, &ctx.config) {
        Err(e) => {
            if set_condition(&mut status.conditions, "Valid", false, "InvalidSpec", &e) {
                events.push((EventType::Warning, "InvalidSpec", e.clone(), false));
            }
            ctx.metrics.decision(key, "Invalid");
            status.last_decision = Some(DecisionStatus {
                kind: "None".into(),
                reason: format!("invalid spec: {e}"),
                time: now_text(),
                ..Default::default()
            });
        }
        Ok(policy) => {
            set_condition(&mut status.conditions, "Valid", true, "ValidSpec", "");
            if let Err(f) = step(ctx, mem, ha, &policy, &mut status, &mut events, key).await {
                ctx.metrics.error(key, f.source);
                ctx.metrics.decision(key, "None");
                let msg = format!("{}; doing nothing this period", f.message);
                if set_condition(&mut status.conditions, f.condition, false, f.reason, &msg) {
                    events.push((EventType::Warning, f.reason, msg.clone(), true));
                }
                warn!(workload = %key, "{msg}");
                status.last_decision =
                    Some(DecisionStatus { kind: "None".into(), reason: msg, time: now_text(), ..Default::default() });
            }
        }
    }
    let api: Api<HybridAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
        warn!(workload = %key, error = %e, "writing the status failed");
        ctx.metrics.error(key, "kube");
    }
    let cr_ref = ha.object_ref(&());
    let target_ref = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some(ha.spec.target_ref.kind.clone()),
        name: Some(ha.spec.target_ref.name.clone()),
        namespace: Some(ns.clone()),
        ..Default::default()
    };
    for (type_, reason, note, on_target) in events {
        let ev = Event { type_, reason: reason.into(), note: Some(note), action: "Autoscale".into(), secondary: None };
        let refs: Vec<&ObjectReference> = if on_target { vec![&cr_ref, &target_ref] } else { vec![&cr_ref] };
        for r in refs {
            if let Err(e) = ctx.recorder.publish(&ev, r).await {
                debug!(workload = %key, error = %e, "writing an Event failed");
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn step(
    ctx: &Ctx,
    mem: &mut Memory,
    ha: &HybridAutoscaler,
    policy: &Policy,
    status: &mut HybridAutoscalerStatus,
    events: &mut Vec<(EventType, &'static str, String, bool)>,
    key: &str,
) -> Result<(), Fail> {
    let ns = ha.namespace().unwrap_or_default();
    let tname = ha.spec.target_ref.name.clone();
    let now = ctx.start.elapsed().as_secs_f64();
    let target = Target::new(&ctx.client, &ns, &ha.spec.target_ref.kind);
    let obj = target.get(&tname).await.map_err(|e| {
        fail("kube", "AbleToScale", "FailedGetTarget", format!("{} {tname}: {e}", ha.spec.target_ref.kind))
    })?;
    let replicas = target
        .replicas(&tname)
        .await
        .map_err(|e| fail("kube", "AbleToScale", "FailedGetScale", format!("scale of {tname}: {e}")))?;
    set_condition(&mut status.conditions, "AbleToScale", true, "SucceededGetScale", "");
    status.current_replicas = Some(replicas as i32);
    let match_labels: BTreeMap<String, String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if match_labels.is_empty() || obj.pointer("/spec/selector/matchExpressions").is_some_and(|v| v != &json!([])) {
        return Err(fail(
            "kube",
            "AbleToScale",
            "UnsupportedSelector",
            "the target's selector must be matchLabels only",
        ));
    }
    let selector = match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let template = obj.pointer("/spec/template").cloned().unwrap_or_default();
    let template_containers: Vec<Value> =
        template.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Vec<Pod> = pods_api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| fail("kube", "AbleToScale", "FailedListPods", format!("pods of {tname}: {e}")))?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .collect();
    let metrics_api: Api<PodMetrics> = Api::namespaced(ctx.client.clone(), &ns);
    let samples = metrics_api.list(&ListParams::default().labels(&selector)).await.map_err(|e| {
        fail("metrics", "MetricsAvailable", "FailedGetPodMetrics", format!("metrics.k8s.io PodMetrics: {e}"))
    })?;
    let usage_of: HashMap<(String, String), Res> = samples
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
        .collect();

    // Usage history, OOM kills, in-progress resizes.
    let keep = ctx.config.history_seconds;
    let mut pod_samples = Vec::new();
    let mut live = std::collections::HashSet::new();
    for p in &pods {
        let pname = p.name_any();
        let spec = p.spec.clone().unwrap_or_default();
        let st = p.status.clone().unwrap_or_default();
        let resizing = st
            .conditions
            .iter()
            .flatten()
            .any(|c| (c.type_ == "PodResizePending" || c.type_ == "PodResizeInProgress") && c.status == "True");
        let mut containers = Vec::new();
        for c in &spec.containers {
            let k = (pname.clone(), c.name.clone());
            live.insert(k.clone());
            let res = c.resources.clone().unwrap_or_default();
            let usage = usage_of.get(&k).copied();
            let window = mem.usage.entry(k.clone()).or_default();
            window.observe(now, usage, keep);
            let p90 = window.p90();
            let cs = st.container_statuses.iter().flatten().find(|s| s.name == c.name);
            let restarts = cs.map_or(0, |s| s.restart_count);
            let oom = cs.is_some_and(|s| {
                s.last_state
                    .as_ref()
                    .and_then(|l| l.terminated.as_ref())
                    .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
            }) && mem.restarts.get(&k).is_some_and(|&r| restarts > r);
            mem.restarts.insert(k, restarts);
            containers.push(ContainerSample {
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
            });
        }
        pod_samples.push(PodSample { name: pname, node: spec.node_name.unwrap_or_default(), containers, resizing });
    }
    mem.usage.retain(|k, _| live.contains(k));
    mem.restarts.retain(|k, _| live.contains(k));

    // Baseline requests (the no-fight rule): recorded before the recreate path rewrote the template, else
    // the template's requests (in-place resizes never change the template).
    let mut baseline: BTreeMap<String, Res> = BTreeMap::new();
    for c in &template_containers {
        let n = c.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let cpu = c.pointer("/resources/requests/cpu").and_then(Value::as_str).and_then(|q| parse_milli_i64(q).ok());
        let memq = c.pointer("/resources/requests/memory").and_then(Value::as_str).and_then(|q| parse_units(q).ok());
        baseline.insert(n, Res::new(cpu.unwrap_or(0), memq.unwrap_or(0)));
    }
    for b in &status.baseline_requests {
        let cpu = parse_milli_i64(&b.cpu).unwrap_or(0);
        let m = parse_units(&b.memory).unwrap_or(0);
        baseline.insert(b.container_name.clone(), Res::new(cpu, m));
    }

    // A recreate rollout in progress.
    let mut rollout = false;
    if let Some((started, want)) = &mem.recreate {
        let stale: Vec<&PodSample> = pod_samples
            .iter()
            .filter(|p| p.containers.iter().any(|c| want.get(&c.name).is_some_and(|w| *w != c.request)))
            .collect();
        if stale.is_empty() {
            mem.recreate = None;
        } else if now - started > RECREATE_TIMEOUT_S {
            events.push((
                EventType::Warning,
                "RecreateStalled",
                format!("{} pods still run the old requests after {RECREATE_TIMEOUT_S}s; giving up", stale.len()),
                true,
            ));
            mem.recreate = None;
        } else {
            rollout = true;
            let on_delete = obj.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete");
            if on_delete && pod_samples.len() as u32 == replicas {
                let victim = stale[0].name.clone();
                if let Err(e) = pods_api.delete(&victim, &DeleteParams::default()).await {
                    warn!(workload = %key, pod = %victim, error = %e, "recreating a pod failed");
                } else {
                    events.push((
                        EventType::Normal,
                        "RecreatedPod",
                        format!("deleted pod {victim} to apply new requests"),
                        true,
                    ));
                }
            }
        }
    }

    let headroom = if policy.mode == decide::Mode::HorizontalOnly {
        Headroom::NotAsked
    } else {
        let names: Vec<String> = pod_samples.iter().map(|p| p.name.clone()).collect();
        match ctx.placement.node_headroom(&ns, &names).await {
            Ok(h) => Headroom::Known(h),
            Err(e) => Headroom::Failed(e),
        }
    };
    let limit_period = ctx.config.scale_up_limit.period_seconds;
    decide::record(&mut mem.replicas_seen, now, replicas, limit_period);
    let limit_base = mem.replicas_seen.iter().map(|&(_, r)| r).min().unwrap_or(replicas);
    let d = decide::decide(&decide::Input {
        policy,
        now,
        replicas,
        pods: &pod_samples,
        baseline: &baseline,
        headroom: &headroom,
        in_place_available: mem.in_place_available,
        history: &mem.recommendations,
        limit_base,
        rollout_in_progress: rollout,
        last_grow_at: mem.last_grow_at,
    });
    if let Some(r) = d.recommended_replicas {
        let keep_s = policy.scale_down_window_s.max(policy.scale_up_window_s) + 1.0;
        decide::record(&mut mem.recommendations, now, r, keep_s);
        ctx.metrics.set_desired(key, r);
        status.desired_replicas = Some(r as i32);
        status.recommendation = Some(RecommendationStatus {
            replicas: r as i32,
            containers: d
                .recommended
                .iter()
                .map(|(n, r)| ContainerResources {
                    container_name: n.clone(),
                    cpu: format_cpu(r.cpu),
                    memory: format_memory(r.mem),
                })
                .collect(),
        });
    }
    // Conditions that say why nothing was done.
    match d.blocker {
        Blocker::Metrics => {
            if set_condition(&mut status.conditions, "MetricsAvailable", false, "MetricsMissing", &d.reason) {
                events.push((EventType::Warning, "MetricsMissing", format!("{}; doing nothing", d.reason), true));
            }
            ctx.metrics.error(key, "metrics");
        }
        _ => {
            set_condition(&mut status.conditions, "MetricsAvailable", true, "MetricsPresent", "");
        }
    }
    if let Headroom::Failed(e) = &headroom {
        if set_condition(&mut status.conditions, "PlacementAvailable", false, "PlacementAPIError", e) {
            events.push((EventType::Warning, "PlacementUnavailable", format!("{e}; doing nothing"), true));
        }
        if d.blocker == Blocker::Placement {
            ctx.metrics.error(key, "placement");
        }
    } else {
        set_condition(&mut status.conditions, "PlacementAvailable", true, "PlacementAPIReachable", "");
    }
    set_condition(
        &mut status.conditions,
        "ScalingLimited",
        d.blocker == Blocker::Limited,
        if d.blocker == Blocker::Limited { "CannotScale" } else { "NotLimited" },
        if d.blocker == Blocker::Limited { &d.reason } else { "" },
    );

    let kind = d.action.kind();
    let mut record =
        DecisionStatus { kind: kind.into(), reason: d.reason.clone(), time: now_text(), ..Default::default() };
    if policy.mode == decide::Mode::Off {
        let changed = status.last_decision.as_ref().is_none_or(|l| l.kind != kind);
        if d.action != Action::None && changed {
            events.push((EventType::Normal, "Recommendation", format!("mode Off, would {kind}: {}", d.reason), false));
        }
        ctx.metrics.decision(key, if d.action == Action::None { "None" } else { "Recommend" });
        if let Action::Scale { from, to } = d.action {
            record.from_replicas = Some(from as i32);
            record.to_replicas = Some(to as i32);
        }
        status.last_decision = Some(record);
        return Ok(());
    }
    match &d.action {
        Action::None => {}
        Action::Resize { pods: resizes, grow } => {
            let mut done = Vec::new();
            for r in resizes {
                let body =
                    json!({"spec": {"containers": r.containers.iter().map(resources_patch).collect::<Vec<_>>()}});
                match pods_api
                    .patch_subresource("resize", &r.pod, &PatchParams::default(), &Patch::Strategic(body))
                    .await
                {
                    Ok(_) => done.push(format!("{} ({})", r.pod, describe(&r.containers))),
                    Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405 | 415) => {
                        mem.in_place_available = false;
                        let msg = format!(
                            "in-place resize is unavailable ({}); {}",
                            s.message,
                            if policy.allow_recreate {
                                "recreating pods instead from the next period"
                            } else {
                                "recreate is not allowed: horizontal scaling only from now on"
                            }
                        );
                        events.push((EventType::Warning, "ResizeUnavailable", msg.clone(), true));
                        record.reason = msg;
                        break;
                    }
                    Err(e) => {
                        return Err(fail(
                            "kube",
                            "AbleToScale",
                            "FailedResize",
                            format!("resize of pod {}: {e}", r.pod),
                        ));
                    }
                }
            }
            if !done.is_empty() {
                if *grow {
                    mem.last_grow_at = Some(now);
                }
                record.applied = true;
                record.pods = resizes.iter().map(|r| r.pod.clone()).collect();
                let verb = if *grow { "ResizedUp" } else { "ResizedDown" };
                events.push((EventType::Normal, verb, format!("in place: {}; {}", done.join(", "), d.reason), true));
            }
        }
        Action::Recreate { containers } => {
            if status.baseline_requests.is_empty() {
                status.baseline_requests = baseline
                    .iter()
                    .map(|(n, r)| ContainerResources {
                        container_name: n.clone(),
                        cpu: format_cpu(r.cpu),
                        memory: format_memory(r.mem),
                    })
                    .collect();
            }
            let body = json!({"spec": {"template": {"spec": {"containers": containers.iter().map(resources_patch).collect::<Vec<_>>()}}}});
            target
                .patch(&tname, body)
                .await
                .map_err(|e| fail("kube", "AbleToScale", "FailedRecreate", format!("template of {tname}: {e}")))?;
            mem.recreate = Some((now, containers.iter().map(|c| (c.name.clone(), c.request)).collect()));
            mem.last_grow_at = Some(now);
            record.applied = true;
            events.push((
                EventType::Normal,
                "Recreating",
                format!(
                    "template requests set to {}; pods are recreated one at a time; {}",
                    describe(containers),
                    d.reason
                ),
                true,
            ));
        }
        Action::Scale { from, to } if to > from => {
            let per_pod = baseline.values().fold(Res::default(), |a, r| Res::new(a.cpu + r.cpu, a.mem + r.mem));
            let info = TemplateInfo {
                requests: per_pod,
                node_selector: template
                    .pointer("/spec/nodeSelector")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default(),
                tolerated_taint_keys: template
                    .pointer("/spec/tolerations")
                    .and_then(Value::as_array)
                    .map(|ts| {
                        ts.iter().filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_string)).collect()
                    })
                    .unwrap_or_default(),
            };
            let existing: Vec<String> = pod_samples.iter().map(|p| p.name.clone()).collect();
            let plan = ctx
                .placement
                .plan_replicas(&ns, &info, to - from, &existing)
                .await
                .map_err(|e| fail("placement", "PlacementAvailable", "PlacementAPIError", e))?;
            let cost = if plan.placements.is_empty() {
                0.0
            } else {
                plan.placements.iter().map(|p| p.network_cost).sum::<f64>() / plan.placements.len() as f64
            };
            ctx.metrics.set_network_cost(key, cost);
            status.placement = Some(PlacementStatus {
                time: now_text(),
                replicas: plan
                    .placements
                    .iter()
                    .map(|p| PlannedReplica {
                        node: p.node.clone(),
                        mean_hops: p.mean_hops,
                        network_cost: p.network_cost,
                    })
                    .collect(),
                unplaceable: plan.unplaceable as i32,
                reason: plan.reason.clone(),
                mean_network_cost: cost,
            });
            // New replicas carry the workload's labels so the scheduler places them near the existing pods.
            let near = selector.clone();
            let current = template
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(NEAR_WORKLOAD_ANNOTATION))
                .and_then(Value::as_str);
            if current != Some(near.as_str()) {
                let body =
                    json!({"spec": {"template": {"metadata": {"annotations": {NEAR_WORKLOAD_ANNOTATION: near}}}}});
                target
                    .patch(&tname, body)
                    .await
                    .map_err(|e| fail("kube", "AbleToScale", "FailedUpdateTemplate", format!("{tname}: {e}")))?;
            }
            target
                .scale(&tname, *to)
                .await
                .map_err(|e| fail("kube", "AbleToScale", "FailedUpdateScale", format!("scale of {tname}: {e}")))?;
            record.applied = true;
            record.from_replicas = Some(*from as i32);
            record.to_replicas = Some(*to as i32);
            let nodes: Vec<String> = plan
                .placements
                .iter()
                .map(|p| format!("{} (hops {:.1}, cost {:.2})", p.node, p.mean_hops, p.network_cost))
                .collect();
            let mut msg = format!("{from} -> {to} replicas; planned near the existing pods on {}", nodes.join(", "));
            if plan.unplaceable > 0 {
                msg.push_str(&format!("; {} cannot be placed now: {}", plan.unplaceable, plan.reason));
            }
            events.push((EventType::Normal, "ScaledUp", format!("{msg}; {}", d.reason), true));
        }
        Action::Scale { from, to } => {
            target
                .scale(&tname, *to)
                .await
                .map_err(|e| fail("kube", "AbleToScale", "FailedUpdateScale", format!("scale of {tname}: {e}")))?;
            record.applied = true;
            record.from_replicas = Some(*from as i32);
            record.to_replicas = Some(*to as i32);
            events.push((EventType::Normal, "ScaledDown", format!("{from} -> {to} replicas; {}", d.reason), true));
        }
    }
    if record.applied {
        status.last_action_time = Some(now_text());
        info!(workload = %key, kind, reason = %record.reason, "applied");
    } else {
        debug!(workload = %key, kind, reason = %record.reason, "no action");
    }
    ctx.metrics.decision(key, if record.applied { kind } else { "None" });
    status.last_decision = Some(record);
    Ok(())
}

fn resources_patch(c: &ContainerResize) -> Value {
    let mut limits = serde_json::Map::new();
    if let Some(l) = c.limit_cpu {
        limits.insert("cpu".into(), json!(format_cpu(l)));
    }
    if let Some(l) = c.limit_mem {
        limits.insert("memory".into(), json!(format_memory(l)));
    }
    let mut resources = json!({"requests": {"cpu": format_cpu(c.request.cpu), "memory": format_memory(c.request.mem)}});
    if !limits.is_empty() {
        resources["limits"] = Value::Object(limits);
    }
    json!({"name": c.name, "resources": resources})
}

fn describe(cs: &[ContainerResize]) -> String {
    cs.iter()
        .map(|c| format!("{}: cpu {}, memory {}", c.name, format_cpu(c.request.cpu), format_memory(c.request.mem)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HybridAutoscalerSpec {
        HybridAutoscalerSpec {
            target_ref: TargetRef { api_version: None, kind: "Deployment".into(), name: "web".into() },
            min_replicas: Some(1),
            max_replicas: 5,
            target_cpu_utilization_percent: Some(70),
            ..Default::default()
        }
    }

    #[test]
    fn bad_specs_name_the_field() {
        let c = Config::default();
        assert!(policy_from_spec(&spec(), &c).is_ok());
        let bad = [
            (HybridAutoscalerSpec { max_replicas: 0, ..spec() }, "maxReplicas"),
            (HybridAutoscalerSpec { target_cpu_utilization_percent: None, ..spec() }, "targetCPUUtilizationPercent"),
            (HybridAutoscalerSpec { tolerance: Some(2.0), ..spec() }, "tolerance"),
            (
                HybridAutoscalerSpec {
                    target_ref: TargetRef { api_version: None, kind: "Job".into(), name: "x".into() },
                    ..spec()
                },
                "targetRef.kind",
            ),
            (
                HybridAutoscalerSpec {
                    container_policies: vec![ContainerPolicy {
                        container_name: "*".into(),
                        min_allowed: Some(ResourceQuantities { cpu: Some("lots".into()), memory: None }),
                        max_allowed: None,
                    }],
                    ..spec()
                },
                "minAllowed.cpu",
            ),
        ];
        for (s, field) in bad {
            let e = policy_from_spec(&s, &c).unwrap_err();
            assert!(e.contains(field), "{e}");
        }
    }
}
