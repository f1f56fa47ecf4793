//! The API writes: `binding` subresource, pod `PodScheduled` condition, Events, PodGroup status.
//! Thin: what to write (and whether to write at all) is decided by pure code elsewhere.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Binding, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::{debug, warn};

use crate::crd::PodGroup;
use crate::dedupe::{ChangeLog, EventAction, EventLog};
use crate::keys::*;
use crate::ratelimit::Limiter;
use crate::state::{GangReport, MemberBind};
use crate::translate::{PodRef, format_gpu_index};

pub const COMPONENT: &str = "mlsched";

/// How often a failed report write is retried, and the first delay (doubling: 50, 100, 200, 400 ms).
const REPORT_RETRIES: u32 = 4;
const REPORT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// POSTs the pod's `binding` subresource. The GPU indices ride along as a Binding annotation, which the
/// API server copies onto the pod (`mlsched.io/gpu-index`).
pub async fn bind(client: &Client, limiter: &Limiter, m: &MemberBind) -> Result<(), String> {
    limiter.acquire().await;
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
        .map_err(|e| e.to_string())
}

/// What the reporter is asked to write.
#[derive(Debug, Clone)]
pub enum Report {
    Unschedulable { pod: PodRef, reason: &'static str, message: String },
    Scheduled { pod: PodRef, node: String },
    Gang(GangReport),
    GangEvent { gang: String, reason: &'static str, message: String },
    PodGone(String),
}

pub struct Reporter {
    client: Client,
    limiter: Arc<Limiter>,
    identity: String,
    events: EventLog,
    conditions: ChangeLog,
}

fn now() -> Timestamp {
    Timestamp::now()
}

impl Reporter {
    pub fn new(client: Client, limiter: Arc<Limiter>, identity: String, salt: u64) -> Self {
        Reporter { client, limiter, identity, events: EventLog::new(salt), conditions: ChangeLog::default() }
    }

    /// Writes one report. A failed write (a 409, a 500, a dropped connection) is retried a few times with
    /// a short backoff, in order (a later report never overtakes an earlier one); every failed write first
    /// un-records its de-duplication entry, so a retry, or the next report with the same content, writes it
    /// again instead of being skipped as "unchanged" and losing the reason for good.
    pub async fn handle(&mut self, report: Report) {
        let mut attempt = 0u32;
        loop {
            match self.handle_once(&report).await {
                Ok(()) => return,
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

    async fn handle_once(&mut self, report: &Report) -> Result<(), String> {
        match report {
            Report::Unschedulable { pod, reason, message } => self.unschedulable(pod, reason, message).await,
            Report::Scheduled { pod, node } => {
                self.conditions.forget(&pod.key());
                let message = format!("Successfully assigned {} to {node}", pod.key());
                self.event(&pod_object(pod), "Normal", REASON_SCHEDULED, &message).await
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
            Report::PodGone(key) => {
                self.events.forget(key);
                self.conditions.forget(key);
                Ok(())
            }
        }
    }

    async fn unschedulable(&mut self, pod: &PodRef, reason: &str, message: &str) -> Result<(), String> {
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
            if let Err(e) = strategic {
                debug!(error = %e, "strategic merge patch refused; falling back to a merge patch");
                if let Err(e) = api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&body)).await {
                    self.conditions.forget(&pod.key());
                    return Err(format!("patching {} status: {e}", pod.key()));
                }
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
    ) -> Result<(), String> {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let name = object.name.clone().unwrap_or_default();
        let key = format!("{}/{namespace}/{name}", object.kind.as_deref().unwrap_or(""));
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let action = self.events.record(&key, &name, reason, message);
        self.limiter.acquire().await;
        let ts = now();
        match action {
            EventAction::Create { name: event_name } => {
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(event_name),
                        namespace: Some(namespace.clone()),
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
                };
                api.create(&PostParams::default(), &event).await.map(|_| ()).map_err(|e| {
                    self.events.unrecord(&key, reason);
                    format!("creating Event: {e}")
                })
            }
            EventAction::Bump { name: event_name, count } => {
                let body = json!({"count": count, "lastTimestamp": ts.to_string()});
                api.patch(&event_name, &PatchParams::default(), &Patch::Merge(&body)).await.map(|_| ()).map_err(|e| {
                    if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                        // The Event is gone (expired or deleted): the retry creates a new one.
                        self.events.unrecord(&key, reason);
                    }
                    format!("bumping Event {event_name}: {e}")
                })
            }
        }
    }

    async fn gang(&mut self, g: &GangReport) -> Result<(), String> {
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
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body)).await.map(|_| ()).map_err(|e| {
            self.conditions.forget(&format!("podgroup/{}", g.gang));
            format!("patching PodGroup {} status: {e}", g.gang)
        })
    }
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
