//! The controller: once per period, for every HybridAutoscaler, observe the target ([`crate::observe`]),
//! decide ([`crate::decide`]), apply at most one action ([`crate::act`]), then write status, Events and
//! metrics ([`crate::report`]). Only the lease holder acts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, ResourceExt};
use mlsched_edge::http::Health;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::act;
use crate::config::Config;
use crate::crd::*;
use crate::decide::{self, Bounds, Mode, Policy};
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::observe::{self, Fail, Scope};
use crate::placement::Placement;
use crate::report::{Decided, Report};
use crate::target::Target;
use mlsched::quantity::{parse_milli_i64, parse_units};

/// Pod template annotation written before a scale-out: the workload's `matchLabels` as `k=v,...`, from
/// which the scheduler places the new replicas near the existing pods.
pub const NEAR_WORKLOAD_ANNOTATION: &str = "mlsched.io/near-workload";
pub const COMPONENT: &str = "mlsched-autoscaler";
/// `/readyz` until the first list of HybridAutoscalers succeeded (a standby is ready too).
const NOT_READY: &str = "not synced";

struct Ctx {
    client: Client,
    config: Config,
    placement: Placement,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    start: Instant,
}

type Lease = (watch::Receiver<bool>, JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>);
type Shutdown<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

/// Runs the autoscaler until `shutdown` resolves. `listening` receives the bound HTTP address.
pub async fn run(
    config: Config,
    client: Client,
    shutdown: impl Future<Output = ()> + Send,
    listening: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    config.validate()?;
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
    let placement = Placement::new(&config.placement_uri()?, config.placement_timeout())?;
    let recorder =
        Recorder::new(client.clone(), Reporter { controller: COMPONENT.into(), instance: Some(identity.clone()) });
    let lease = acquire_lease(&config, &client, identity).await?;
    let ctx = Ctx { client, config, placement, recorder, metrics, start: Instant::now() };
    health.live.store(true, Ordering::Relaxed);
    periods(&ctx, &health, lease.as_ref().map(|(rx, _)| rx), std::pin::pin!(shutdown)).await;
    info!("shutting down");
    health.ready.store(false, Ordering::Relaxed);
    release_lease(lease).await;
    http.abort();
    Ok(())
}

/// `None` without leader election: this instance always acts.
async fn acquire_lease(config: &Config, client: &Client, identity: String) -> anyhow::Result<Option<Lease>> {
    let le = &config.leader_election;
    if !le.enabled {
        return Ok(None);
    }
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.namespace)
        .with_identity(identity)
        .with_duration(le.lease_duration_seconds)
        .with_grace(le.renew_grace_seconds)
        .build()
        .await?;
    Ok(Some(manager.watch().await))
}

/// Dropping the receiver makes the lease task release the lease, so a standby takes over at once.
async fn release_lease(lease: Option<Lease>) {
    let Some((rx, handle)) = lease else { return };
    drop(rx);
    match tokio::time::timeout(Duration::from_secs(3), handle).await {
        Ok(Ok(Ok(_))) => info!("lease released"),
        other => debug!(?other, "lease task did not end cleanly"),
    }
}

/// The periodic loop, until `shutdown`. A standby lists too, so that it is ready to take over.
async fn periods(ctx: &Ctx, health: &Health, leader: Option<&watch::Receiver<bool>>, mut shutdown: Shutdown<'_>) {
    let mut memory: HashMap<String, Memory> = HashMap::new();
    let mut ticker = tokio::time::interval(ctx.config.period());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let leader = leader.is_none_or(|rx| *rx.borrow());
        ctx.metrics.is_leader.set(leader as i64);
        let Some(list) = list_autoscalers(ctx).await else { continue };
        health.ready.store(true, Ordering::Relaxed);
        if leader && !reconcile_all(ctx, &mut memory, &list, shutdown.as_mut()).await {
            return;
        }
    }
}

async fn list_autoscalers(ctx: &Ctx) -> Option<Vec<HybridAutoscaler>> {
    let api: Api<HybridAutoscaler> = match &ctx.config.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    match tokio::time::timeout(ctx.config.api_timeout(), api.list(&ListParams::default())).await {
        Ok(Ok(l)) => Some(l.items),
        Ok(Err(e)) => {
            warn!(error = %e, "listing HybridAutoscalers failed");
            None
        }
        Err(_) => {
            warn!("listing HybridAutoscalers timed out");
            None
        }
    }
}

/// One period of every workload, one after the other; false once `shutdown` has resolved (polling it
/// again would panic).
async fn reconcile_all(
    ctx: &Ctx,
    memory: &mut HashMap<String, Memory>,
    items: &[HybridAutoscaler],
    mut shutdown: Shutdown<'_>,
) -> bool {
    let keys: Vec<String> =
        items.iter().map(|h| format!("{}/{}", h.namespace().unwrap_or_default(), h.name_any())).collect();
    memory.retain(|k, _| keys.contains(k));
    for (ha, key) in items.iter().zip(keys) {
        let mem = memory.entry(key.clone()).or_default();
        let t0 = Instant::now();
        tokio::select! {
            r = tokio::time::timeout(ctx.config.api_timeout(), reconcile(ctx, mem, ha, &key)) => {
                if r.is_err() {
                    warn!(workload = %key, "the period timed out; nothing more done this period");
                    ctx.metrics.error(&key, "kube");
                }
            }
            _ = &mut shutdown => return false,
        }
        ctx.metrics.reconcile_duration.observe(t0.elapsed().as_secs_f64());
    }
    true
}

fn default_identity() -> String {
    let host = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| COMPONENT.into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{host}-{nanos:08x}")
}

/// One workload's period. The status and Events are written whatever happened, even on an invalid spec.
async fn reconcile(ctx: &Ctx, mem: &mut Memory, ha: &HybridAutoscaler, key: &str) {
    let mut report = Report::new(ha, &ctx.metrics, key);
    match policy_from_spec(&ha.spec, &ctx.config) {
        Err(e) => report.invalid(&e.to_string()),
        Ok(policy) => {
            report.valid();
            let work = Work { ha, policy: &policy, key };
            if let Err(f) = step(ctx, mem, &work, &mut report).await {
                report.failed(f);
            }
        }
    }
    report.publish(&ctx.client, &ctx.recorder, ha).await;
}

/// The workload a period is about.
struct Work<'a> {
    ha: &'a HybridAutoscaler,
    policy: &'a Policy,
    key: &'a str,
}

/// Observe, decide, act, report.
async fn step(ctx: &Ctx, mem: &mut Memory, w: &Work<'_>, report: &mut Report<'_>) -> Result<(), Fail> {
    let ns = w.ha.namespace().unwrap_or_default();
    let target = Target::new(&ctx.client, &ns, &w.ha.spec.target_ref);
    let s = Scope {
        client: &ctx.client,
        placement: &ctx.placement,
        config: &ctx.config,
        policy: w.policy,
        target: &target,
        ns: &ns,
        key: w.key,
        now: ctx.start.elapsed().as_secs_f64(),
    };
    let read = observe::read_target(&target).await?;
    report.scale_read(read.replicas);
    let obs = observe::observe(&s, mem, read, &report.status.baseline_requests).await?;
    // Deleting a pod does not change what was observed: the decision waits for the rollout anyway.
    let recreated = act::recreate_next(&s, &obs.rollout).await;
    report.rollout(&obs.rollout, recreated);

    let d = decide::decide(&obs.input(w.policy, mem));
    mem.replicas.remember(s.now, w.policy, &d);
    let record = report.decided(&obs, &d);
    if w.policy.mode == Mode::Off {
        report.recommended(&d, record);
        return Ok(());
    }
    let acted = act::apply(&s, mem, &obs, &d.action).await;
    report.acted(&Decided { policy: w.policy, obs: &obs, decision: &d }, record, acted)
}

/// A HybridAutoscaler spec that cannot be run: the field (a path such as `spec.maxReplicas`) and why. It
/// becomes the `Valid=False` condition's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    pub field: String,
    pub reason: String,
}

fn spec_error(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError { field: field.into(), reason: reason.into() }
}

fn parse_bound(q: &Option<ResourceQuantities>, at: &str) -> Result<(Option<i64>, Option<i64>), SpecError> {
    let Some(q) = q else { return Ok((None, None)) };
    let cpu = q.cpu.as_deref().map(parse_milli_i64).transpose().map_err(|e| spec_error(format!("{at}.cpu"), e))?;
    let mem = q.memory.as_deref().map(parse_units).transpose().map_err(|e| spec_error(format!("{at}.memory"), e))?;
    Ok((cpu, mem))
}

/// Validates the spec into a [`Policy`]; the error names the field (it becomes a `Valid=False` condition).
pub fn policy_from_spec(spec: &HybridAutoscalerSpec, config: &Config) -> Result<Policy, SpecError> {
    let t = &spec.target_ref;
    if !matches!(t.kind.as_str(), "Deployment" | "StatefulSet") {
        return Err(spec_error("spec.targetRef.kind", format!("{:?} is not Deployment or StatefulSet", t.kind)));
    }
    if t.api_version.as_deref().is_some_and(|v| v != "apps/v1") {
        let version = t.api_version.as_deref().unwrap_or("");
        return Err(spec_error("spec.targetRef.apiVersion", format!("{version:?} is not apps/v1")));
    }
    if t.name.trim().is_empty() {
        return Err(spec_error("spec.targetRef.name", "must not be empty"));
    }
    let min = spec.min_replicas.unwrap_or(1);
    if min < 1 {
        return Err(spec_error("spec.minReplicas", format!("{min} must be at least 1")));
    }
    if spec.max_replicas < min {
        return Err(spec_error("spec.maxReplicas", format!("{} is below minReplicas {min}", spec.max_replicas)));
    }
    let pct = |v: Option<i32>, field: &str| -> Result<Option<f64>, SpecError> {
        match v {
            None => Ok(None),
            Some(p) if (1..=1000).contains(&p) => Ok(Some(p as f64 / 100.0)),
            Some(p) => Err(spec_error(format!("spec.{field}"), format!("{p} is outside 1..=1000"))),
        }
    };
    let cpu_target = pct(spec.target_cpu_utilization_percent, "targetCPUUtilizationPercent")?;
    let mem_target = pct(spec.target_memory_utilization_percent, "targetMemoryUtilizationPercent")?;
    if cpu_target.is_none() && mem_target.is_none() {
        return Err(spec_error("spec", "set targetCPUUtilizationPercent or targetMemoryUtilizationPercent"));
    }
    let tolerance = spec.tolerance.unwrap_or(0.1);
    if !(tolerance.is_finite() && (0.0..1.0).contains(&tolerance)) {
        return Err(spec_error("spec.tolerance", format!("{tolerance} is outside 0..1")));
    }
    let window = |v: Option<i32>, default: i32, field: &str| -> Result<f64, SpecError> {
        let s = v.unwrap_or(default);
        if !(0..=3600).contains(&s) {
            return Err(spec_error(format!("spec.{field}"), format!("{s} is outside 0..=3600")));
        }
        Ok(s as f64)
    };
    let mut bounds = BTreeMap::new();
    for (i, cp) in spec.container_policies.iter().enumerate() {
        let at = format!("spec.containerPolicies[{i}]");
        if cp.container_name.trim().is_empty() {
            return Err(spec_error(format!("{at}.containerName"), "must not be empty (use \"*\" for every container)"));
        }
        let (min_cpu, min_mem) = parse_bound(&cp.min_allowed, &format!("{at}.minAllowed"))?;
        let (max_cpu, max_mem) = parse_bound(&cp.max_allowed, &format!("{at}.maxAllowed"))?;
        if min_cpu.zip(max_cpu).is_some_and(|(a, b)| a > b) || min_mem.zip(max_mem).is_some_and(|(a, b)| a > b) {
            return Err(spec_error(at, "minAllowed is above maxAllowed"));
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
            assert!(e.field.ends_with(field) || e.to_string().contains(field), "{e}");
        }
    }
}
