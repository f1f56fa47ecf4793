//! The API writes: `binding` subresource, pod `PodScheduled` condition, Events, PodGroup status.
//! Thin: what to write (and whether to write at all) is decided by pure code elsewhere.
//!
//! Two budgets, like kube-scheduler's two clients: binds and status patches share the `client` limit;
//! Events have a limiter of their own of the same size, so a `Scheduled` Event per bind does not halve the
//! bind rate, and Events never delay a bind.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Binding, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::bind_backlog::Backlog;
use crate::crd::PodGroup;
use crate::dedupe::{ChangeLog, EventAction, EventLog};
use crate::error::{BindError, ErrorKind, ReportError};
use crate::keys::*;
use crate::leader::Fence;
use crate::ratelimit::Limiter;
use crate::state::{GangReport, MemberBind};
use crate::translate::{PodRef, format_gpu_index};
use crate::unit::UnitKey;

pub const COMPONENT: &str = "mlsched";

/// How often a failed report write is retried, and the first delay (doubling: 50, 100, 200, 400 ms).
const REPORT_RETRIES: u32 = 4;
const REPORT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// POSTs the pod's `binding` subresource. The GPU indices ride along as a Binding annotation, which the
/// API server copies onto the pod (`mlsched.io/gpu-index`). The caller has taken the limiter's token.
pub async fn bind(client: &Client, m: &MemberBind) -> Result<(), BindError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &m.pod.namespace);
    let mut annotations = std::collections::BTreeMap::new();
    if !m.gpus.is_empty() {
        annotations.insert(GPU_INDEX_ANNOTATION.to_string(), format_gpu_index(&m.gpus));
    }
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(m.pod.name.clone()),
            namespace: Some(m.pod.namespace.clone()),
            uid: Some(m.pod.uid.clone()).filter(|u| !u.is_empty()),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(m.node.clone()),
            ..ObjectReference::default()
        },
    };
    api.create_subresource::<_, serde_json::Value>("binding", &m.pod.name, &PostParams::default(), &binding)
        .await
        .map(|_| ())
        .map_err(BindError::Request)
}

/// One member's bind, handed to the [`Binder`].
#[derive(Debug, Clone)]
pub struct BindJob {
    pub unit: UnitKey,
    /// The unit's priority: of the binds waiting for a token, the highest goes first.
    pub priority: i32,
    pub member: MemberBind,
}

/// What became of a [`BindJob`].
#[derive(Debug)]
pub struct BindOutcome {
    pub job: BindJob,
    pub result: Result<(), BindError>,
    /// The POST alone, from the moment it was sent.
    pub elapsed: Duration,
    /// `false`: not sent, because this instance did not lead any more when its turn came ([`Fence`]).
    pub sent: bool,
}

/// Sends binds, at most `concurrency` at once, each after a token of the limiter: when a token comes, the
/// waiting bind of highest priority goes, and among equals the one decided first ([`Backlog`]). One task
/// waits on the limiter for all of them, so a backlog of thousands of decided pods costs a queue entry
/// each, not a task each polling the limiter.
///
/// Fenced: right before a bind goes out the [`Fence`] is checked, and a bind whose turn comes after this
/// instance stopped leading is handed back unsent (`sent: false`) instead.
pub struct Binder {
    queue: mpsc::UnboundedSender<BindJob>,
    /// Binds sent whose outcome has not been handed over yet.
    on_the_wire: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Binder {
    /// Starts the dispatcher; `done` receives every outcome (from the task that sent the bind).
    pub fn start(
        client: Client,
        limiter: Arc<Limiter>,
        concurrency: usize,
        fence: Fence,
        done: impl Fn(BindOutcome) + Send + Sync + 'static,
    ) -> Binder {
        let send = move |member: MemberBind| -> BoxFuture<'static, Result<(), BindError>> {
            let client = client.clone();
            Box::pin(async move { bind(&client, &member).await })
        };
        Binder::start_with(limiter, concurrency, fence, send, done)
    }

    /// [`start`](Self::start) with `send` in place of the `binding` POST.
    fn start_with(
        limiter: Arc<Limiter>,
        concurrency: usize,
        fence: Fence,
        send: impl Fn(MemberBind) -> BoxFuture<'static, Result<(), BindError>> + Send + Sync + 'static,
        done: impl Fn(BindOutcome) + Send + Sync + 'static,
    ) -> Binder {
        let (queue, mut jobs) = mpsc::unbounded_channel::<BindJob>();
        let (stop, mut stopped) = watch::channel(false);
        let on_the_wire = Arc::new(AtomicUsize::new(0));
        let wire = on_the_wire.clone();
        let done = Arc::new(done);
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        let task = tokio::spawn(async move {
            let unsent = |job: BindJob| BindOutcome {
                job,
                result: Err(BindError::NotSent),
                elapsed: Duration::ZERO,
                sent: false,
            };
            let mut backlog = Backlog::default();
            loop {
                while let Ok(job) = jobs.try_recv() {
                    backlog.push(job);
                }
                if backlog.is_empty() {
                    let job = tokio::select! {
                        job = jobs.recv() => job,
                        _ = stopped.wait_for(|s| *s) => None,
                    };
                    let Some(job) = job else { return };
                    backlog.push(job);
                    continue;
                }
                // A deposed leader's backlog comes back at once, without waiting for slots and tokens.
                if !fence.holds() {
                    while let Some(job) = backlog.pop() {
                        done(unsent(job));
                    }
                    continue;
                }
                let slot = tokio::select! {
                    slot = slots.clone().acquire_owned() => slot,
                    _ = stopped.wait_for(|s| *s) => return,
                };
                let Ok(slot) = slot else { return };
                tokio::select! {
                    _ = limiter.acquire() => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                // Chosen once its slot and token are there, among everything decided until then.
                while let Ok(job) = jobs.try_recv() {
                    backlog.push(job);
                }
                let Some(job) = backlog.pop() else { continue };
                if !fence.holds() {
                    done(unsent(job));
                    continue;
                }
                wire.fetch_add(1, Ordering::SeqCst);
                let (done, wire) = (done.clone(), wire.clone());
                let sending = send(job.member.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = sending.await;
                    done(BindOutcome { job, result, elapsed: started.elapsed(), sent: true });
                    // After `done`: once this reads 0, every outcome has been handed over.
                    wire.fetch_sub(1, Ordering::SeqCst);
                    drop(slot);
                });
            }
        });
        Binder { queue, on_the_wire, stop, task }
    }

    pub fn submit(&self, job: BindJob) {
        let _ = self.queue.send(job);
    }

    /// Submits `job` once `delay` has passed (a retry).
    pub fn submit_after(&self, job: BindJob, delay: Duration) {
        if delay.is_zero() {
            return self.submit(job);
        }
        let queue = self.queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = queue.send(job);
        });
    }

    /// No further bind goes out; the ones sent already finish and hand over their outcomes.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub fn on_the_wire(&self) -> usize {
        self.on_the_wire.load(Ordering::SeqCst)
    }
}

impl Drop for Binder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the reporter is asked to write.
#[derive(Debug, Clone)]
pub enum Report {
    Unschedulable {
        pod: PodRef,
        reason: &'static str,
        message: String,
    },
    Scheduled {
        pod: PodRef,
        node: String,
    },
    Gang(GangReport),
    GangEvent {
        gang: String,
        reason: &'static str,
        message: String,
    },
    /// A preemptor's `status.nominatedNodeName`: set while its victims terminate, cleared (`None`) when
    /// the preemption failed.
    Nominated {
        pod: PodRef,
        node: Option<String>,
    },
    /// A pod evicted to make room for a higher-priority one (a `Preempted` Event, as kube-scheduler writes).
    Preempted {
        pod: PodRef,
        by: String,
        node: String,
    },
    PodGone(String),
}

impl Report {
    /// `namespace/name` of the object the report is about (a pod, or a gang's PodGroup).
    fn object_key(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Report::Unschedulable { pod, .. }
            | Report::Scheduled { pod, .. }
            | Report::Nominated { pod, .. }
            | Report::Preempted { pod, .. } => pod.key().into(),
            Report::Gang(g) => g.gang.as_str().into(),
            Report::GangEvent { gang, .. } => gang.as_str().into(),
            Report::PodGone(key) => key.as_str().into(),
        }
    }
}

/// The report writers ([`Reporter`]s in tasks of their own), fed by the decision loop. Reports about one
/// object always go to the same writer, so they stay in order and its de-duplication state and retries stay
/// whole; different objects' reports are written at once.
pub struct Reporters {
    writers: Vec<mpsc::UnboundedSender<Report>>,
    tasks: Vec<JoinHandle<()>>,
    /// Reports sent and not yet written (or given up).
    queued: Arc<AtomicUsize>,
}

impl Reporters {
    /// `limiter` is the client's (shared with the binds), `event_limiter` the Events' own. `writers` should be
    /// the binds' concurrency: with a `Scheduled` Event per bind, one round trip each, fewer writers than binds
    /// in flight fall behind whenever the API server is the limit (a lag of seconds, and Events left unwritten
    /// at shutdown, at 400 binds/s).
    pub fn start(
        client: Client,
        limiter: Arc<Limiter>,
        event_limiter: Arc<Limiter>,
        identity: String,
        salt: u64,
        writers: usize,
    ) -> Reporters {
        let queued = Arc::new(AtomicUsize::new(0));
        let count = writers.max(1);
        let mut writers = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..count {
            let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
            // Event names are `<object>.<salt><n>` with a counter per writer: one object's Events all come from
            // one writer, and two objects of one namespace never share a name.
            let mut reporter =
                Reporter::new(client.clone(), limiter.clone(), event_limiter.clone(), identity.clone(), salt);
            let queued = queued.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(r) = rx.recv().await {
                    reporter.handle(r).await;
                    queued.fetch_sub(1, Ordering::SeqCst);
                }
            }));
            writers.push(tx);
        }
        Reporters { writers, tasks, queued }
    }

    pub fn send(&self, report: Report) {
        if self.writers.is_empty() {
            return;
        }
        let mut hasher = DefaultHasher::new();
        report.object_key().hash(&mut hasher);
        let writer = &self.writers[(hasher.finish() % self.writers.len() as u64) as usize];
        self.queued.fetch_add(1, Ordering::SeqCst);
        if writer.send(report).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Reports sent and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Takes no more reports and waits, at most `within`, until the queued ones are written; returns how many
    /// were left unwritten. Later [`send`](Self::send)s are dropped.
    pub async fn flush(&mut self, within: Duration) -> usize {
        self.writers.clear();
        let mut tasks = std::mem::take(&mut self.tasks);
        let all = futures::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(within, all).await.is_err() {
            for t in &tasks {
                t.abort();
            }
        }
        let left = self.queued();
        if left > 0 {
            warn!(left, "reports not written at shutdown");
        } else {
            info!("reports flushed");
        }
        left
    }
}

impl Drop for Reporters {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub struct Reporter {
    client: Client,
    limiter: Arc<Limiter>,
    event_limiter: Arc<Limiter>,
    identity: String,
    events: EventLog,
    conditions: ChangeLog,
}

fn now() -> Timestamp {
    Timestamp::now()
}

impl Reporter {
    pub fn new(
        client: Client,
        limiter: Arc<Limiter>,
        event_limiter: Arc<Limiter>,
        identity: String,
        salt: u64,
    ) -> Self {
        Reporter {
            client,
            limiter,
            event_limiter,
            identity,
            events: EventLog::new(salt),
            conditions: ChangeLog::default(),
        }
    }

    /// Writes one report. A failed write (a 409, a 500, a dropped connection) is retried a few times with
    /// a short backoff, in order (a later report never overtakes an earlier one); every failed write first
    /// un-records its de-duplication entry, so a retry, or the next report with the same content, writes it
    /// again instead of being skipped as "unchanged" and losing the reason for good. A write about an object
    /// that is gone (404: the pod or PodGroup was deleted) is not retried.
    pub async fn handle(&mut self, report: Report) {
        let mut attempt = 0u32;
        loop {
            match self.handle_once(&report).await {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(error = %e, "reporting on an object that is gone; not retried");
                    return;
                }
                Err(e) if attempt < REPORT_RETRIES => {
                    debug!(error = %e, attempt, "reporting failed; retrying");
                    tokio::time::sleep(REPORT_RETRY_DELAY * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    warn!(error = %e, "reporting failed");
                    return;
                }
            }
        }
    }

    async fn handle_once(&mut self, report: &Report) -> Result<(), ReportError> {
        match report {
            Report::Unschedulable { pod, reason, message } => self.unschedulable(pod, reason, message).await,
            Report::Scheduled { pod, node } => {
                self.conditions.forget(&pod.key());
                let message = format!("Successfully assigned {} to {node}", pod.key());
                match scheduled_event_name(pod) {
                    Some(name) => self.scheduled_event(pod, name, &message).await,
                    None => self.event(&pod_object(pod), "Normal", REASON_SCHEDULED, &message).await,
                }
            }
            Report::Gang(g) => self.gang(g).await,
            Report::GangEvent { gang, reason, message } => {
                let (namespace, name) = gang.split_once('/').unwrap_or(("default", gang));
                let object = ObjectReference {
                    api_version: Some("scheduling.x-k8s.io/v1alpha1".into()),
                    kind: Some("PodGroup".into()),
                    namespace: Some(namespace.into()),
                    name: Some(name.into()),
                    ..ObjectReference::default()
                };
                self.event(&object, "Warning", reason, message).await
            }
            Report::Nominated { pod, node } => {
                self.limiter.acquire().await;
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
                let body = json!({"status": {"nominatedNodeName": node}});
                api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .map(|_| ())
                    .map_err(|source| ReportError::PodStatus { pod: pod.key(), source: source.into() })
            }
            Report::Preempted { pod, by, node } => {
                let message = format!("Preempted by {by} on node {node}");
                self.event(&pod_object(pod), "Normal", REASON_PREEMPTED, &message).await
            }
            Report::PodGone(key) => {
                self.events.forget(key);
                self.conditions.forget(key);
                Ok(())
            }
        }
    }

    async fn unschedulable(&mut self, pod: &PodRef, reason: &str, message: &str) -> Result<(), ReportError> {
        let condition_reason = if reason == REASON_UNSCHEDULABLE { REASON_UNSCHEDULABLE } else { reason };
        if self.conditions.changed(&pod.key(), &format!("{condition_reason}\n{message}")) {
            self.limiter.acquire().await;
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
            let condition = json!({
                "type": "PodScheduled", "status": "False", "reason": condition_reason, "message": message,
                "lastProbeTime": null, "lastTransitionTime": now().to_string(),
            });
            let body = json!({"status": {"conditions": [condition]}});
            let strategic = api.patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(&body)).await;
            let patched = match strategic {
                // The pod is gone: a merge patch would not find it either.
                Err(e) if ErrorKind::of(&e) == ErrorKind::NotFound => Err(e),
                Err(e) => {
                    debug!(error = %e, "strategic merge patch refused; falling back to a merge patch");
                    api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&body)).await
                }
                Ok(p) => Ok(p),
            };
            if let Err(source) = patched {
                self.conditions.forget(&pod.key());
                return Err(ReportError::PodStatus { pod: pod.key(), source: source.into() });
            }
        }
        self.event(&pod_object(pod), "Warning", REASON_FAILED_SCHEDULING, message).await
    }

    async fn event(
        &mut self,
        object: &ObjectReference,
        type_: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), ReportError> {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let name = object.name.clone().unwrap_or_default();
        let key = format!("{}/{namespace}/{name}", object.kind.as_deref().unwrap_or(""));
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let action = self.events.record(&key, &name, reason, message);
        self.event_limiter.acquire().await;
        let ts = now();
        match action {
            EventAction::Create { name: event_name } => {
                let event = self.new_event(object, event_name, type_, reason, message, ts);
                api.create(&PostParams::default(), &event).await.map(|_| ()).map_err(|e| {
                    self.events.unrecord(&key, reason);
                    ReportError::CreateEvent(e.into())
                })
            }
            EventAction::Bump { name: event_name, count } => {
                let body = json!({"count": count, "lastTimestamp": ts.to_string()});
                api.patch(&event_name, &PatchParams::default(), &Patch::Merge(&body)).await.map(|_| ()).map_err(|e| {
                    if ErrorKind::of(&e) == ErrorKind::NotFound {
                        // The Event is gone (expired or deleted): the retry creates a new one.
                        self.events.unrecord(&key, reason);
                    }
                    ReportError::BumpEvent { event: event_name, source: e.into() }
                })
            }
        }
    }

    fn new_event(
        &self,
        object: &ObjectReference,
        name: String,
        type_: &str,
        reason: &str,
        message: &str,
        ts: Timestamp,
    ) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(object.namespace.clone().unwrap_or_else(|| "default".into())),
                ..ObjectMeta::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            count: Some(1),
            first_timestamp: Some(Time(ts)),
            last_timestamp: Some(Time(ts)),
            event_time: Some(MicroTime(ts)),
            action: Some("Scheduling".into()),
            source: Some(EventSource { component: Some(COMPONENT.into()), host: None }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(self.identity.clone()),
            ..Event::default()
        }
    }

    /// The pod's one `Scheduled` Event, under the name [`scheduled_event_name`] gives it: when it exists
    /// already (written by the leader that bound the pod, or by an earlier attempt of this write), the
    /// create is refused and there is nothing left to do.
    async fn scheduled_event(&mut self, pod: &PodRef, name: String, message: &str) -> Result<(), ReportError> {
        let object = pod_object(pod);
        let event = self.new_event(&object, name, "Normal", REASON_SCHEDULED, message, now());
        self.event_limiter.acquire().await;
        let api: Api<Event> = Api::namespaced(self.client.clone(), &pod.namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => Ok(()),
            Err(e) if ErrorKind::of(&e) == ErrorKind::Conflict => Ok(()),
            Err(source) => Err(ReportError::ScheduledEvent { pod: pod.key(), source: source.into() }),
        }
    }

    async fn gang(&mut self, g: &GangReport) -> Result<(), ReportError> {
        if !g.pod_group
            || !self.conditions.changed(
                &format!("podgroup/{}", g.gang),
                &format!("{}\n{}\n{}\n{}", g.phase, g.scheduled, g.reason, g.message),
            )
        {
            return Ok(());
        }
        let (namespace, name) = g.gang.split_once('/').unwrap_or(("default", &g.gang));
        let api: Api<PodGroup> = Api::namespaced(self.client.clone(), namespace);
        let condition = json!({
            "type": "Scheduled",
            "status": if g.phase == "Scheduled" { "True" } else { "False" },
            "reason": g.reason, "message": g.message, "lastTransitionTime": now().to_string(),
        });
        let body = json!({"status": {"phase": g.phase, "scheduled": g.scheduled, "conditions": [condition]}});
        self.limiter.acquire().await;
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body)).await.map(|_| ()).map_err(|source| {
            self.conditions.forget(&format!("podgroup/{}", g.gang));
            ReportError::PodGroupStatus { gang: g.gang.clone(), source: source.into() }
        })
    }
}

/// The name of a pod's `Scheduled` Event: the same from every scheduler instance, so that an instance
/// completing a gang another one started can write the Events the other may have died before writing,
/// without a second Event for any pod. `None` when the pod has no uid, or the name would be too long for
/// the API (253 characters); its Event then gets an ordinary unique name.
pub fn scheduled_event_name(pod: &PodRef) -> Option<String> {
    let name = format!("{}.scheduled.{}", pod.name, pod.uid);
    (!pod.uid.is_empty() && name.len() <= 253).then_some(name)
}

fn pod_object(pod: &PodRef) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(pod.namespace.clone()),
        name: Some(pod.name.clone()),
        uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn job(i: usize) -> BindJob {
        let pod = PodRef { namespace: "ns".into(), name: format!("p{i}"), uid: String::new() };
        BindJob {
            unit: UnitKey::Pod(pod.key()),
            priority: 0,
            member: MemberBind { pod, node: "n".into(), gpus: Vec::new() },
        }
    }

    /// A `send` that records the order binds went out and the most that were out at once.
    fn recorder(
        log: Arc<Mutex<(Vec<String>, usize, usize)>>,
        hold: Duration,
    ) -> impl Fn(MemberBind) -> BoxFuture<'static, Result<(), BindError>> + Send + Sync + 'static {
        move |m: MemberBind| -> BoxFuture<'static, Result<(), BindError>> {
            let log = log.clone();
            Box::pin(async move {
                {
                    let mut l = log.lock().unwrap();
                    l.0.push(m.pod.name.clone());
                    l.1 += 1;
                    l.2 = l.2.max(l.1);
                }
                tokio::time::sleep(hold).await;
                log.lock().unwrap().1 -= 1;
                if m.pod.name == "p3" { Err(crate::error::api_error(409).into()) } else { Ok(()) }
            })
        }
    }

    /// The count drops just after the outcome is handed over.
    async fn wire_empties(binder: &Binder) {
        for _ in 0..200 {
            if binder.on_the_wire() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{} binds still counted on the wire", binder.on_the_wire());
    }

    #[tokio::test]
    async fn binds_go_out_in_order_at_most_concurrency_at_once_and_every_outcome_comes_back() {
        let log = Arc::new(Mutex::new((Vec::new(), 0, 0)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let binder = Binder::start_with(
            Arc::new(Limiter::new(1000.0, 1000)),
            3,
            Fence::always(),
            recorder(log.clone(), Duration::from_millis(5)),
            move |o| {
                let _ = tx.send(o);
            },
        );
        for i in 0..20 {
            binder.submit(job(i));
        }
        let mut outcomes = Vec::new();
        while outcomes.len() < 20 {
            outcomes.push(rx.recv().await.unwrap());
        }
        let (sent, _, most) = log.lock().unwrap().clone();
        assert_eq!(sent, (0..20).map(|i| format!("p{i}")).collect::<Vec<_>>());
        assert!(most <= 3 && most > 1, "{most} binds out at once");
        let failed: Vec<&str> =
            outcomes.iter().filter(|o| o.result.is_err()).map(|o| o.job.member.pod.name.as_str()).collect();
        assert_eq!(failed, ["p3"]);
        wire_empties(&binder).await;
    }

    #[tokio::test]
    async fn a_higher_priority_bind_overtakes_the_backlog_waiting_for_tokens() {
        let log = Arc::new(Mutex::new((Vec::new(), 0, 0)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        // One token at once, then 2 a second: the backlog waits for the next release.
        let binder = Binder::start_with(
            Arc::new(Limiter::new(2.0, 1)),
            4,
            Fence::always(),
            recorder(log.clone(), Duration::ZERO),
            move |o| {
                let _ = tx.send(o);
            },
        );
        for i in [0, 1, 2, 4, 5] {
            binder.submit(job(i));
        }
        rx.recv().await.unwrap();
        let mut urgent = job(9);
        urgent.priority = 1000;
        binder.submit(urgent);
        for _ in 0..2 {
            rx.recv().await.unwrap();
        }
        let (sent, _, _) = log.lock().unwrap().clone();
        assert_eq!(sent, ["p0", "p9", "p1"], "decided after p1, sent before it");
    }

    #[tokio::test]
    async fn after_stop_only_the_binds_already_sent_come_back() {
        let log = Arc::new(Mutex::new((Vec::new(), 0, 0)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        // One token, then one a second: the second bind waits on the limiter when the stop comes.
        let binder = Binder::start_with(
            Arc::new(Limiter::new(1.0, 1)),
            4,
            Fence::always(),
            recorder(log.clone(), Duration::from_millis(200)),
            move |o| {
                let _ = tx.send(o);
            },
        );
        for i in 0..5 {
            binder.submit(job(i));
        }
        while log.lock().unwrap().0.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(binder.on_the_wire(), 1);
        binder.stop();
        let first = rx.recv().await.unwrap();
        assert_eq!(first.job.member.pod.name, "p0");
        wire_empties(&binder).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(rx.try_recv().is_err(), "nothing is sent after the stop");
        assert_eq!(log.lock().unwrap().0, ["p0"]);
    }

    #[test]
    fn a_pods_scheduled_event_has_one_name_whoever_writes_it() {
        let pod = PodRef { namespace: "ns".into(), name: "w0".into(), uid: "5b0c3c43-2f0e".into() };
        assert_eq!(scheduled_event_name(&pod).as_deref(), Some("w0.scheduled.5b0c3c43-2f0e"));
        let recreated = PodRef { uid: "77aa".into(), ..pod.clone() };
        assert_ne!(scheduled_event_name(&recreated), scheduled_event_name(&pod), "a new pod of the same name");
        assert_eq!(scheduled_event_name(&PodRef { uid: String::new(), ..pod.clone() }), None);
        assert_eq!(scheduled_event_name(&PodRef { name: "x".repeat(240), ..pod }), None);
    }

    #[tokio::test]
    async fn once_leadership_is_lost_queued_binds_come_back_unsent_and_none_goes_out() {
        let log = Arc::new(Mutex::new((Vec::new(), 0, 0)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let fence = Fence::new();
        fence.grant_until(Instant::now() + Duration::from_secs(3600));
        // One token, then one a second: the later binds wait on the limiter when leadership goes.
        let binder = Binder::start_with(
            Arc::new(Limiter::new(1.0, 1)),
            4,
            fence.clone(),
            recorder(log.clone(), Duration::from_millis(1)),
            move |o| {
                let _ = tx.send(o);
            },
        );
        for i in 0..4 {
            binder.submit(job(i));
        }
        let first = rx.recv().await.unwrap();
        assert!(first.sent && first.result.is_ok(), "{first:?}");
        fence.withdraw();
        let mut unsent = Vec::new();
        for _ in 1..4 {
            let o = rx.recv().await.unwrap();
            assert!(!o.sent && o.result.is_err(), "{o:?}");
            unsent.push(o.job.member.pod.name);
        }
        assert_eq!(unsent, ["p1", "p2", "p3"]);
        assert_eq!(log.lock().unwrap().0, ["p0"], "nothing went out after the loss");
        binder.submit(job(9));
        assert!(!rx.recv().await.unwrap().sent);
        assert_eq!(binder.on_the_wire(), 0);
    }

    #[test]
    fn reports_about_one_object_go_to_one_writer() {
        let pod = PodRef { namespace: "ns".into(), name: "a".into(), uid: String::new() };
        let scheduled = Report::Scheduled { pod: pod.clone(), node: "n".into() };
        let gone = Report::PodGone(pod.key());
        let event = Report::GangEvent { gang: "ns/a".into(), reason: "GangTimeout", message: String::new() };
        assert_eq!(scheduled.object_key(), "ns/a");
        assert_eq!(gone.object_key(), "ns/a");
        assert_eq!(event.object_key(), "ns/a");
    }
}
