//! The async shell: watchers feed one decision loop; binds and reports run in their own tasks so the
//! loop never waits on the API server.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::api::scheduling::v1beta1::PodGroup as WorkloadPodGroup;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use mlsched::framework::Profile;
use mlsched_edge::http::{self, Health};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::crd::PodGroup;
use crate::error::{BindError, ErrorKind};
use crate::evict::{EvictionOutcome, Evictor};
use crate::kube_io::{BindJob, BindOutcome, Binder, Report, Reporters};
use crate::leader::{self, Elector, Fence, LeaseStatus, Timing};
use crate::metrics::Metrics;
use crate::placement_api;
use crate::ratelimit::Limiter;
use crate::state::{BindFollowUp, BindPlan, ClusterState, MemberBind, PodGroupInfo, PreemptionOrder};
use crate::throttle::{LogThrottle, watch_cause};
use crate::translate::{PodGroupApi, PodRef, topology_requirement, translate_bound_pod, translate_node, translate_pod};
use crate::unit::UnitKey;
use mlsched::gang::{GangQueue, QueueCounts, TopologyRequirement};

/// `/readyz` until nodes and pods are listed (caches synced), while a watch that failed has not listed again
/// (caches stale), and while the Lease cannot be read. A standby is ready too, to take over at once.
const NOT_READY: &str = "caches not synced or stale, or the Lease unreachable";

/// How often a repeated failure (a bind, a watch) is logged: one line per cause, with the count.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

enum Input {
    Node(Box<Event<k8s::Node>>),
    Pod(Box<Event<k8s::Pod>>),
    PodGroup(Box<Event<PodGroup>>),
    WorkloadPodGroup(Box<Event<WorkloadPodGroup>>),
    BindDone(Box<BindOutcome>),
    EvictionDone(Box<EvictionOutcome>),
    Lease(LeaseStatus),
    /// A watch failed: it lists again shortly, and its cache is stale until then.
    WatchError(&'static str, Box<watcher::Error>),
    Query(placement_api::Query), // a Placement API request, answered on the loop's state
}

/// The first retry of a failed watch comes at once; retries in a row back off, doubling, up to the most.
const WATCH_RETRY_FIRST: Duration = Duration::from_millis(100);
const WATCH_RETRY_MOST: Duration = Duration::from_secs(1);
/// A watch that stayed up this long after listing starts its retries from the first delay again: a watch
/// failing right after each list backs off instead of listing ten times a second.
const WATCH_HEALTHY: Duration = Duration::from_secs(10);

/// The delay before retry number `failures` (0 for the first) of a failed watch, with `jitter` in
/// `0.0..1.0` taking up to half of it off, so that replicas and watches do not retry in step.
fn watch_retry_delay(failures: u32, jitter: f64) -> Duration {
    let doubled = WATCH_RETRY_FIRST.saturating_mul(1 << failures.min(16));
    doubled.min(WATCH_RETRY_MOST).mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// A number in `0.0..1.0`, different on every call (std's hasher keys are random and change per hasher).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Feeds a watch of `api` into the loop. After any error the watch is dropped and, after a short backoff, a
/// fresh one lists everything again (`Init` .. `InitDone`), which tells the loop when its cache is whole
/// again. (kube-runtime's own recovery resumes without a list, so nothing would say so, and its default
/// backoff grows to 30 s and resets only after two quiet minutes: watches came back 14-20 s after the API
/// server did.)
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    tx: mpsc::UnboundedSender<Input>,
    wrap: fn(Box<Event<K>>) -> Input,
    what: &'static str,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let mut listed_at = None;
            let mut stream = std::pin::pin!(watcher::watcher(api.clone(), config.clone()));
            while let Some(item) = stream.next().await {
                let (input, failed) = match item {
                    Ok(event) => {
                        if matches!(event, Event::InitDone) {
                            listed_at = Some(Instant::now());
                        }
                        (wrap(Box::new(event)), false)
                    }
                    Err(e) => (Input::WatchError(what, Box::new(e)), true),
                };
                if tx.send(input).is_err() {
                    return;
                }
                if failed {
                    break;
                }
            }
            if listed_at.is_some_and(|t: Instant| t.elapsed() >= WATCH_HEALTHY) {
                failures = 0;
            }
            tokio::time::sleep(watch_retry_delay(failures, jitter())).await;
            failures = failures.saturating_add(1);
        }
    })
}

/// Whether the API server serves Kubernetes' own PodGroups (`scheduling.k8s.io/v1beta1`, beta in 1.37 and
/// off unless the `GenericWorkload` gate and the API version are turned on). Asked once at start: a cluster
/// that turns it on later needs the scheduler restarted, as kube-scheduler does for its informers.
async fn workload_pod_groups_served(client: &Client) -> bool {
    match client.list_api_group_resources("scheduling.k8s.io/v1beta1").await {
        Ok(list) => list.resources.iter().any(|r| r.name == "podgroups"),
        Err(e) => {
            debug!(error = %e, "scheduling.k8s.io/v1beta1 discovery");
            false
        }
    }
}

/// The name of a PodGroup watch, in logs and in `stale`.
fn group_watch(api: PodGroupApi) -> &'static str {
    match api {
        PodGroupApi::Coscheduling => "podgroups",
        PodGroupApi::Workload => "podgroups.scheduling.k8s.io",
    }
}

/// What the scheduler takes from a `scheduling.k8s.io/v1beta1` PodGroup: the gang policy's `minCount` (a
/// basic policy asks no quorum: its pods are placed as they fit, still near each other), its topology
/// constraint's node label as a required level, else mlsched's topology annotations on the group.
fn workload_group_info(g: &WorkloadPodGroup, key: &str) -> PodGroupInfo {
    let min_member = g.spec.scheduling_policy.gang.as_ref().map_or(1, |gang| gang.min_count.max(1) as usize);
    let constraint = g.spec.scheduling_constraints.as_ref().and_then(|c| c.topology.as_ref()).and_then(|t| t.first());
    let topology = match constraint {
        Some(t) => Some(TopologyRequirement { level: t.key.clone(), required: true }),
        None => topology_requirement(g.metadata.annotations.as_ref()).unwrap_or_else(|err| {
            warn!(podgroup = %key, error = %err, "ignoring the PodGroup's topology annotation");
            None
        }),
    };
    PodGroupInfo { min_member, timeout: None, topology, min_resources: Ok(None), api: PodGroupApi::Workload }
}

/// Everything `run` spawned, ended when it returns.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The API clients of the scheduler.
#[derive(Clone)]
pub struct Clients {
    /// Watches, binds, status patches, Events, the Lease.
    pub api: Client,
    /// Evictions: a client without kube's own retries of 429, 503 and 504 answers. An eviction's 429 is a
    /// PodDisruptionBudget's refusal, which those retries would repeat for minutes after its `Retry-After`.
    pub evictions: Client,
}

/// One client for everything: evictions then wait out the client's own retries of a refusal.
impl From<Client> for Clients {
    fn from(client: Client) -> Self {
        Clients { api: client.clone(), evictions: client }
    }
}

/// Runs the scheduler until `shutdown` resolves. `listening` receives the bound HTTP address (tests pass
/// `listenAddress: 127.0.0.1:0`).
pub async fn run(
    config: Config,
    clients: impl Into<Clients>,
    shutdown: impl Future<Output = ()> + Send,
    listening: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    config.validate()?;
    let Clients { api: client, evictions } = clients.into();
    let profiles: Vec<Profile> =
        config.profiles.iter().map(|p| p.build_with_topology(&config.topology_levels)).collect::<Result<_, _>>()?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let identity = config.leader_election.identity.clone().unwrap_or_else(default_identity);
    let mut tasks = Tasks(Vec::new());

    let listener = tokio::net::TcpListener::bind(&config.listen_address).await?;
    let addr = listener.local_addr()?;
    info!(%addr, "serving /metrics, /healthz, /readyz");
    if let Some(tx) = listening {
        let _ = tx.send(addr);
    }
    tasks.0.push(tokio::spawn(http::serve(listener, metrics.clone(), health.clone(), NOT_READY)));

    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let query_tx = tx.clone();
    let placement = placement_api::start(&config, Arc::new(move |q| query_tx.send(Input::Query(q)).is_ok())).await;
    let wc = watcher::Config::default();
    tasks.0.push(watch(Api::<k8s::Node>::all(client.clone()), wc.clone(), tx.clone(), Input::Node, "nodes"));
    let pods_config = wc.clone().fields("status.phase!=Succeeded,status.phase!=Failed");
    tasks.0.push(watch(Api::<k8s::Pod>::all(client.clone()), pods_config, tx.clone(), Input::Pod, "pods"));
    tasks.0.push(watch(Api::<PodGroup>::all(client.clone()), wc.clone(), tx.clone(), Input::PodGroup, "podgroups"));
    if workload_pod_groups_served(&client).await {
        let api = Api::<WorkloadPodGroup>::all(client.clone());
        let name = group_watch(PodGroupApi::Workload);
        tasks.0.push(watch(api, wc, tx.clone(), Input::WorkloadPodGroup, name));
    } else {
        info!("scheduling.k8s.io/v1beta1 PodGroups are not served (GenericWorkload off): not watched");
    }

    // Two write budgets of the configured size, as kube-scheduler has two clients: binds and status patches
    // share one, Events have their own.
    let limiter = Arc::new(Limiter::new(config.client.qps, config.client.burst));
    let event_limiter = Arc::new(Limiter::new(config.client.qps, config.client.burst));
    let salt = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let salt = salt & 0xffff_ffff;
    let reporters = Reporters::start(
        client.clone(),
        limiter.clone(),
        event_limiter,
        identity.clone(),
        salt,
        config.bind_concurrency,
    );
    // Binds go out only while this instance leads: the election grants the fence until its renew deadline.
    let fence = if config.leader_election.enabled { Fence::new() } else { Fence::always() };
    let bind_tx = tx.clone();
    let evict_tx = tx.clone();
    let evictor = Evictor::new(evictions, limiter.clone(), fence.clone(), move |outcome| {
        let _ = evict_tx.send(Input::EvictionDone(Box::new(outcome)));
    });
    let binder = Binder::start(client.clone(), limiter, config.bind_concurrency, fence.clone(), move |outcome| {
        let _ = bind_tx.send(Input::BindDone(Box::new(outcome)));
    });

    // Leader election: a standby keeps its caches warm and takes over a released or expired Lease.
    let mut election = None;
    if config.leader_election.enabled {
        let le = &config.leader_election;
        let elector = Elector::new(identity.clone(), Timing::new(le.lease_duration_seconds, le.renew_grace_seconds));
        let started = leader::start(client.clone(), &le.namespace, &le.lease_name, elector, fence.clone());
        let mut status = started.status.clone();
        let tx = tx.clone();
        tasks.0.push(tokio::spawn(async move {
            loop {
                let current = status.borrow_and_update().clone();
                if tx.send(Input::Lease(current)).is_err() || status.changed().await.is_err() {
                    return;
                }
            }
        }));
        election = Some(started);
    } else {
        tx.send(Input::Lease(LeaseStatus { leading: true, reachable: true })).ok();
    }

    let mut lp = Loop {
        state: ClusterState::new(config.topology_levels.clone(), config.scheduler_names(), config.bind_retries),
        queue: GangQueue::new(config.queue_config()),
        profiles,
        start: Instant::now(),
        leader: false,
        fence: fence.clone(),
        lease_reachable: true,
        stale: BTreeSet::new(),
        failure_logs: LogThrottle::new(FAILURE_LOG_INTERVAL),
        synced_nodes: false,
        synced_pods: false,
        synced_groups: HashSet::new(),
        seen_nodes: None,
        seen_pods: None,
        seen_groups: HashMap::new(),
        metrics: metrics.clone(),
        health: health.clone(),
        reports: reporters,
        binder,
        evictor,
        gangs_gauge_due: Duration::ZERO,
        more_to_try: false,
        invalid: std::collections::HashMap::new(),
    };
    health.live.store(true, Ordering::Relaxed);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let wake = lp.queue.next_wakeup().map(|t| t.saturating_sub(lp.now())).unwrap_or(Duration::from_secs(1));
        let wake = wake.clamp(Duration::from_millis(5), Duration::from_secs(1));
        // A bounded pass left ready units: the next pass follows once the inputs that came meanwhile are in.
        let wake = if lp.more_to_try { Duration::ZERO } else { wake };
        tokio::select! {
            _ = &mut shutdown => break,
            input = rx.recv() => {
                let Some(input) = input else { break };
                lp.handle(input);
                // Take whatever else arrived, so one pass sees a batch of events.
                let mut n = 0;
                while n < 10_000 {
                    match rx.try_recv() {
                        Ok(input) => lp.handle(input),
                        Err(_) => break,
                    }
                    n += 1;
                }
            }
            _ = tokio::time::sleep(wake) => {}
        }
        lp.maybe_schedule();
    }
    info!("shutting down");
    health.ready.store(false, Ordering::Relaxed);
    // Pods decided but not sent yet stay pending for the next leader. Binds already sent finish before the
    // lease goes (a new leader would find their pods still pending and bind them again), and their pods'
    // Scheduled Events are written below.
    fence.close();
    lp.binder.stop();
    let drain_until = Instant::now() + BIND_DRAIN;
    while lp.binder.on_the_wire() > 0 && Instant::now() < drain_until {
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::BindDone(outcome)) => lp.handle_bind_done(*outcome),
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    while let Ok(input) = rx.try_recv() {
        if let Input::BindDone(outcome) = input {
            lp.handle_bind_done(*outcome);
        }
    }
    // Nothing of ours can land any more: the Lease goes now, so a standby takes over at once, while the
    // Placement API stops and the reports are flushed. A bind still out after the drain keeps the Lease to
    // expire instead (a new leader would find its pod pending and place it again).
    let drained = lp.binder.on_the_wire() == 0;
    let release = async {
        if let Some(election) = election {
            election.end(drained, RELEASE_WITHIN).await;
        }
    };
    // Queries still queued are dropped (their callers get UNAVAILABLE), so the graceful stop cannot wait on them.
    drop(rx);
    let placement_stop = async {
        if let Some(placement) = placement {
            placement.stop(Duration::from_secs(3)).await;
        }
    };
    drop(tasks);
    let Loop { mut reports, .. } = lp;
    tokio::join!(release, placement_stop, reports.flush(REPORT_FLUSH));
    Ok(())
}

/// How long a graceful stop waits for binds already sent (their outcome decides their Events).
const BIND_DRAIN: Duration = Duration::from_secs(2);
/// How long a graceful stop waits for the Lease to be given back.
const RELEASE_WITHIN: Duration = Duration::from_secs(2);
/// How long a graceful stop waits for queued reports (Scheduled Events and the rest) to be written. With
/// `BIND_DRAIN` well inside the kubelet's grace period (30 s in `manifests/deployment.yaml`).
const REPORT_FLUSH: Duration = Duration::from_secs(5);

fn default_identity() -> String {
    let host = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| "mlsched".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{host}-{nanos:08x}")
}

struct Loop {
    state: ClusterState,
    /// Every pending unit, across passes and profiles: the core queue `mlsim jobs` replays through too.
    queue: GangQueue,
    profiles: Vec<Profile>,
    start: Instant,
    /// As the election last said; binds are fenced on the election's own deadline regardless.
    leader: bool,
    fence: Fence,
    lease_reachable: bool,
    /// Watches that failed after listing once, and have not listed again since.
    stale: BTreeSet<&'static str>,
    failure_logs: LogThrottle,
    synced_nodes: bool,
    synced_pods: bool,
    /// The PodGroup watches (by name) that have listed once.
    synced_groups: HashSet<&'static str>,
    seen_nodes: Option<HashSet<String>>,
    seen_pods: Option<HashSet<String>>,
    seen_groups: HashMap<PodGroupApi, HashSet<String>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    reports: Reporters,
    binder: Binder,
    evictor: Evictor,
    /// When `mlsched_gangs_pending` is next refreshed while every unit is binding.
    gangs_gauge_due: Duration,
    /// The last pass was cut at `UNITS_PER_PASS` with units still ready.
    more_to_try: bool,
    /// Pods reported as malformed, with the message, so their own updates do not re-report them.
    invalid: std::collections::HashMap<String, String>,
}

impl Loop {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn report(&self, r: Report) {
        self.reports.send(r);
    }

    fn handle_bind_done(&mut self, outcome: BindOutcome) {
        let BindOutcome { job: BindJob { unit, priority, member }, result, elapsed, sent } = outcome;
        if sent {
            self.bind_done(unit, priority, member, result, elapsed);
        } else {
            self.bind_not_sent(unit, member);
        }
    }

    /// A bind the binder held back because this instance stopped leading. Its unit is given up without a
    /// report or a retry (the new leader decides it afresh), and waits in the queue should leadership come
    /// back.
    fn bind_not_sent(&mut self, unit: UnitKey, member: MemberBind) {
        let now = self.now();
        let key = member.pod.key();
        // Given up at once, a gang member's retries too: none of them could be sent either.
        self.state.bind_result(&mut self.queue, &unit, &key, Err(BindError::NotSent), now);
        self.drop_if_finished(Some(unit));
    }

    /// Nodes and pods listed, and no watch waiting to list again after a failure.
    fn caches_fresh(&self) -> bool {
        self.synced_nodes && self.synced_pods && self.stale.is_empty()
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Node(e) => self.node_event(*e),
            Input::Pod(e) => self.pod_event(*e),
            Input::PodGroup(e) => self.pod_group_event(*e),
            Input::WorkloadPodGroup(e) => self.workload_pod_group_event(*e),
            Input::BindDone(outcome) => self.handle_bind_done(*outcome),
            Input::EvictionDone(outcome) => self.eviction_done(*outcome),
            // The election logs its changes.
            Input::Lease(status) => {
                self.leader = status.leading;
                self.lease_reachable = status.reachable;
                self.metrics.is_leader.set(i64::from(status.leading));
            }
            Input::WatchError(what, e) => {
                // PodGroups not listed yet (no CRD, say) hold nothing up: their gangs wait until they are.
                let listed = match what {
                    "nodes" => self.synced_nodes,
                    "pods" => self.synced_pods,
                    groups => self.synced_groups.contains(groups),
                };
                if listed {
                    self.stale.insert(what);
                }
                let cause = format!("watch {what}: {}", watch_cause(&e));
                if let Some(count) = self.failure_logs.note(&cause, Instant::now()) {
                    warn!(watch = what, error = %e, count, "watch failed, listing again");
                }
            }
            Input::Query(query) => query(placement_api::QueryContext {
                state: &mut self.state,
                profiles: &self.profiles,
                synced: self.synced_nodes && self.synced_pods,
            }),
        }
        self.health.ready.store(self.caches_fresh() && self.lease_reachable, Ordering::Relaxed);
    }

    fn node_event(&mut self, e: Event<k8s::Node>) {
        let apply = |lp: &mut Loop, n: &k8s::Node| match translate_node(n) {
            Ok(node) => {
                if lp.state.apply_node(node) {
                    lp.queue.activate_backoff();
                }
            }
            Err(err) => warn!(node = %n.name_any(), error = %err, "node ignored"),
        };
        match e {
            Event::Apply(n) => apply(self, &n),
            Event::Delete(n) => self.state.delete_node(&n.name_any()),
            Event::Init => self.seen_nodes = Some(HashSet::new()),
            Event::InitApply(n) => {
                if let Some(seen) = self.seen_nodes.as_mut() {
                    seen.insert(n.name_any());
                }
                apply(self, &n);
            }
            Event::InitDone => {
                let seen = self.seen_nodes.take().unwrap_or_default();
                for name in self.state.node_names() {
                    if !seen.contains(&name) {
                        self.state.delete_node(&name);
                    }
                }
                self.synced_nodes = true;
                self.stale.remove("nodes");
            }
        }
    }

    fn pod_event(&mut self, e: Event<k8s::Pod>) {
        match e {
            Event::Apply(p) => self.apply_pod(&p),
            Event::Delete(p) => self.delete_pod(&PodRef::of(&p).key()),
            Event::Init => self.seen_pods = Some(HashSet::new()),
            Event::InitApply(p) => {
                if let Some(seen) = self.seen_pods.as_mut() {
                    seen.insert(PodRef::of(&p).key());
                }
                self.apply_pod(&p);
            }
            Event::InitDone => {
                let seen = self.seen_pods.take().unwrap_or_default();
                for key in self.state.pod_keys() {
                    if !seen.contains(&key) {
                        self.delete_pod(&key);
                    }
                }
                self.synced_pods = true;
                self.stale.remove("pods");
            }
        }
    }

    fn delete_pod(&mut self, key: &str) {
        self.invalid.remove(key);
        let unit = self.pending_unit(key);
        if self.state.delete_pod(key) {
            self.queue.activate_backoff();
        }
        self.drop_if_finished(unit);
        self.report(Report::PodGone(key.to_string()));
    }

    fn pending_unit(&self, key: &str) -> Option<UnitKey> {
        self.state.pending(key).map(|p| p.unit.clone())
    }

    /// Only the unit of the pod that changed can have finished: checking every queued unit on each pod
    /// event cost time in proportion to the backlog, once per bind.
    fn drop_if_finished(&mut self, unit: Option<UnitKey>) {
        if let Some(unit) = unit
            && !self.state.finished_units(std::iter::once(&unit)).is_empty()
        {
            self.queue.remove(&unit.queue_name());
        }
    }

    fn apply_pod(&mut self, p: &k8s::Pod) {
        let bound = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
        let ours = p.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).is_some_and(|n| self.state.is_ours(n));
        let translated = if bound {
            translate_bound_pod(p)
        } else {
            translate_pod(p).and_then(|info| self.state.check_topology_level(&info).map(|()| info))
        };
        match translated {
            Ok(info) => {
                // Fixed since: a later fault, even the same one, is reported again.
                if !self.invalid.is_empty() {
                    self.invalid.remove(&info.pod_ref.key());
                }
                let was_pending = self.pending_unit(&info.pod_ref.key());
                let (freed, unit) = self.state.apply_pod(info);
                if freed {
                    self.queue.activate_backoff();
                }
                if let Some((unit, priority)) = unit {
                    let now = self.now();
                    self.queue.touch(&unit.queue_name(), priority, now);
                }
                if bound {
                    self.drop_if_finished(was_pending);
                }
            }
            Err(invalid) if ours && !bound => {
                let message = invalid.to_string();
                let pod = PodRef::of(p);
                let unit = self.pending_unit(&pod.key());
                self.state.delete_pod(&pod.key());
                self.drop_if_finished(unit);
                if self.invalid.get(&pod.key()) != Some(&message) {
                    warn!(pod = %pod.key(), error = %message, "pod cannot be scheduled as written");
                    self.invalid.insert(pod.key(), message.clone());
                    self.metrics.attempt("error", 1);
                    self.report(Report::Unschedulable { pod, reason: crate::keys::REASON_INVALID, message });
                }
            }
            Err(invalid) => debug!(pod = %PodRef::of(p).key(), error = %invalid, "pod not accounted"),
        }
    }

    fn pod_group_event(&mut self, e: Event<PodGroup>) {
        self.group_event(PodGroupApi::Coscheduling, e, |g, key| {
            let topology = topology_requirement(g.meta().annotations.as_ref()).unwrap_or_else(|err| {
                warn!(podgroup = %key, error = %err, "ignoring the PodGroup's topology annotation");
                None
            });
            PodGroupInfo {
                min_member: g.spec.min_member.unwrap_or(1).max(1) as usize,
                timeout: g.spec.schedule_timeout_seconds.filter(|s| *s > 0).map(|s| Duration::from_secs(s as u64)),
                topology,
                min_resources: match &g.spec.min_resources {
                    None => Ok(None),
                    Some(map) => crate::translate::min_resources(map).map(Some),
                },
                api: PodGroupApi::Coscheduling,
            }
        });
    }

    fn workload_pod_group_event(&mut self, e: Event<WorkloadPodGroup>) {
        self.group_event(PodGroupApi::Workload, e, workload_group_info);
    }

    fn group_event<K: Resource>(&mut self, api: PodGroupApi, e: Event<K>, info: impl Fn(&K, &str) -> PodGroupInfo) {
        let key_of = |g: &K| format!("{}/{}", g.namespace().unwrap_or_else(|| "default".into()), g.name_any());
        match e {
            Event::Apply(g) | Event::InitApply(g) => {
                let key = key_of(&g);
                if let Some(seen) = self.seen_groups.get_mut(&api) {
                    seen.insert(key.clone());
                }
                if self.state.pod_group_in_other_api(&key, api) {
                    warn!(podgroup = %key, "PodGroups of this name exist in scheduling.x-k8s.io and in scheduling.k8s.io: members naming either form one gang, which follows the group its first member (by name) names");
                }
                let unit = self.state.apply_pod_group(key.clone(), info(&g, &key));
                self.wake(unit);
            }
            Event::Delete(g) => {
                let unit = self.state.delete_pod_group(&key_of(&g), api);
                self.wake(unit);
            }
            Event::InitDone => {
                // Groups deleted while the watch was down are not in the new list.
                let seen = self.seen_groups.remove(&api).unwrap_or_default();
                for key in self.state.pod_group_keys(api) {
                    if !seen.contains(&key) {
                        let unit = self.state.delete_pod_group(&key, api);
                        self.wake(unit);
                    }
                }
                self.synced_groups.insert(group_watch(api));
                self.stale.remove(group_watch(api));
            }
            Event::Init => {
                self.seen_groups.insert(api, HashSet::new());
            }
        }
    }

    /// Tries a queued unit again at once (its PodGroup changed or went away).
    fn wake(&mut self, unit: Option<UnitKey>) {
        if let Some(unit) = unit
            && self.queue.unit(&unit.queue_name()).is_some()
        {
            let now = self.now();
            self.queue.touch(&unit.queue_name(), 0, now);
        }
    }

    fn maybe_schedule(&mut self) {
        self.more_to_try = false;
        // Standbys learn too, so a new leader starts with the shapes seen so far.
        for (profile, pod) in self.state.take_arrivals() {
            if let Some(p) = self.profiles.get_mut(profile) {
                p.observe_arrival(&pod);
            }
        }
        let now = self.now();
        // A throttled scheduler with a backlog has every unit binding and an event every few milliseconds:
        // then neither the queue nor the gangs are walked on each one.
        let all_in_flight = self.queue.all_binding();
        let counts = if all_in_flight {
            QueueCounts { active: 0, backoff: 0, in_flight: self.queue.len() }
        } else {
            self.queue.counts(now)
        };
        self.metrics.set_pending("active", counts.active);
        self.metrics.set_pending("backoff", counts.backoff);
        self.metrics.set_pending("binding", counts.in_flight);
        if !all_in_flight || now >= self.gangs_gauge_due {
            self.metrics.gangs_pending.set(self.state.pending_gangs() as i64);
            self.gangs_gauge_due = now + Duration::from_secs(1);
        }
        // No decisions on stale caches either: after an outage, binds wait for the fresh picture.
        if !(self.leader && self.fence.holds() && self.caches_fresh()) || counts.active == 0 {
            return;
        }
        let started = Instant::now();
        let result = self.state.run_pass(&mut self.queue, &self.profiles, now);
        self.more_to_try = result.more;
        self.metrics.attempt_duration.observe(started.elapsed().as_secs_f64());
        self.metrics.attempt("scheduled", result.scheduled_pods);
        self.metrics.attempt("unschedulable", result.unschedulable_pods);
        self.metrics.attempt("error", result.error_pods);
        for (pod, reason, message) in result.unschedulable {
            self.report(Report::Unschedulable { pod, reason, message });
        }
        for g in result.gangs {
            if g.reason == crate::keys::REASON_GANG_TIMEOUT {
                self.metrics.gang("timeout");
                self.report(Report::GangEvent { gang: g.gang.clone(), reason: g.reason, message: g.message.clone() });
            }
            self.report(Report::Gang(g));
        }
        for plan in result.binds {
            self.dispatch(plan);
        }
        for order in result.preemptions {
            self.preempt(order);
        }
        let (used, cap, partial) = self.state.gpu_usage();
        self.metrics.gpu_allocated_milli.set(used);
        self.metrics.gpu_capacity_milli.set(cap);
        let in_use = if cap > 0 { (used as f64 / 1000.0).ceil() } else { 0.0 };
        self.metrics.gpu_fragmentation.set(if in_use > 0.0 { partial as f64 / in_use } else { 0.0 });
    }

    /// Nominates the preemptor's members to their nodes and evicts the victims. The room stays held for the
    /// preemptor in the core queue (its nomination) until it is placed or the nomination lapses.
    fn preempt(&self, order: PreemptionOrder) {
        info!(preemptor = %order.preemptor, victims = order.victims.len(), "preempting lower-priority pods");
        for (pod, node) in &order.nominated {
            self.report(Report::Nominated { pod: pod.clone(), node: Some(node.clone()) });
        }
        self.evictor.submit(order);
    }

    /// A preemption whose evictions did not all go through makes no room: the room held for the preemptor
    /// is let go (it may preempt again after `PREEMPTION_RETRY`), and it is tried again at once, so that its
    /// members are told why it waits.
    fn eviction_done(&mut self, outcome: EvictionOutcome) {
        let EvictionOutcome { order, result } = outcome;
        let Err(e) = result else {
            // Told once evicted: a victim whose eviction a budget refused was not preempted.
            self.metrics.preemption("evicted");
            for (pod, node) in order.victims {
                self.report(Report::Preempted { pod, by: order.preemptor.clone(), node });
            }
            return;
        };
        self.metrics.preemption("refused");
        if let Some(count) = self.failure_logs.note(&format!("evict: {}", e.cause()), Instant::now()) {
            warn!(preemptor = %order.preemptor, error = %e, count, "preemption stopped");
        }
        let now = self.now();
        let unit = self.state.preemption_failed(&mut self.queue, &order.preemptor, e.to_string(), now);
        for (pod, _) in order.nominated {
            self.report(Report::Nominated { pod, node: None });
        }
        self.wake(unit);
    }

    fn dispatch(&self, plan: BindPlan) {
        for member in plan.members {
            self.spawn_bind(BindJob { unit: plan.unit.clone(), priority: plan.priority, member }, Duration::ZERO);
        }
    }

    fn spawn_bind(&self, job: BindJob, delay: Duration) {
        self.binder.submit_after(job, delay);
    }

    fn bind_done(
        &mut self,
        unit: UnitKey,
        priority: i32,
        member: MemberBind,
        result: Result<(), BindError>,
        elapsed: Duration,
    ) {
        self.metrics.bind_duration.observe(elapsed.as_secs_f64());
        self.metrics.bind(if result.is_ok() { "ok" } else { "error" });
        if let Err(e) = &result
            && let Some(count) = self.failure_logs.note(&format!("bind: {}", e.cause()), Instant::now())
        {
            warn!(pod = %member.pod.key(), node = %member.node, error = %e, count, "bind failed");
        }
        let now = self.now();
        match self.state.bind_result(&mut self.queue, &unit, &member.pod.key(), result, now) {
            BindFollowUp::None => {}
            BindFollowUp::Bound { pod, node, gang_done, bound_earlier } => {
                info!(pod = %pod.key(), %node, "bound");
                self.report(Report::Scheduled { pod, node });
                // Written unless the binding leader wrote it (the Event's name is the pod's own).
                for (pod, node) in bound_earlier {
                    self.report(Report::Scheduled { pod, node });
                }
                if let Some(g) = gang_done {
                    self.metrics.gang("scheduled");
                    self.report(Report::Gang(g));
                }
                self.drop_if_finished(Some(unit));
            }
            BindFollowUp::Retry(member, attempt) => {
                self.spawn_bind(BindJob { unit, priority, member }, Duration::from_millis(200) * attempt);
            }
            BindFollowUp::Dropped { pod, kind } => {
                let why = if kind == ErrorKind::NotFound { "the pod is gone" } else { "the pod is bound already" };
                debug!(pod = %pod.key(), node = %member.node, "bind refused: {why}; not retried");
                self.drop_if_finished(Some(unit));
            }
            BindFollowUp::GaveUp { pods, message, gang } => {
                // The pod may be gone by now (a delete while its bind was out).
                self.drop_if_finished(Some(unit));
                if let Some(g) = gang {
                    self.metrics.gang("bind_failed");
                    self.report(Report::GangEvent {
                        gang: g.gang.clone(),
                        reason: g.reason,
                        message: g.message.clone(),
                    });
                    self.report(Report::Gang(g));
                }
                for pod in pods {
                    self.report(Report::Unschedulable {
                        pod,
                        reason: crate::keys::REASON_UNSCHEDULABLE,
                        message: message.clone(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(d: Duration, ms: f64) -> bool {
        (d.as_secs_f64() * 1000.0 - ms).abs() < 0.001
    }

    #[test]
    fn a_failed_watch_is_retried_at_once_then_backs_off_to_a_second() {
        let no_jitter: Vec<Duration> = (0..7).map(|n| watch_retry_delay(n, 0.0)).collect();
        for (d, ms) in no_jitter.iter().zip([100.0, 200.0, 400.0, 800.0, 1000.0, 1000.0, 1000.0]) {
            assert!(about(*d, ms), "{no_jitter:?}");
        }
        assert!(about(watch_retry_delay(u32::MAX, 0.0), 1000.0));
        // Jitter takes up to half off.
        assert!(about(watch_retry_delay(0, 1.0), 50.0));
        assert!(about(watch_retry_delay(9, 0.5), 750.0));
    }

    #[test]
    fn jitter_is_in_range_and_differs_from_call_to_call() {
        let draws: Vec<f64> = (0..200).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)), "{draws:?}");
        let mut distinct = draws.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert!(distinct.len() > 190, "{} distinct of 200", distinct.len());
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.35..0.65).contains(&mean), "mean {mean}");
    }
}
