//! Report: what one period says of a workload. The HybridAutoscaler's status (conditions, `lastDecision`,
//! the recommendation, the placement of the last scale-out), Events on it and on its target, and the
//! Prometheus metrics. Status and Events are written once, at the end of the period, after any action.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::act::{Acted, Applied};
use crate::crd::*;
use crate::decide::{Action, Blocker, ContainerResize, Decision, Headroom, Policy, Res};
use crate::metrics::Metrics;
use crate::observe::{Fail, Observation, RECREATE_TIMEOUT_S, Rollout};
use crate::placement::Plan;
use mlsched::quantity::{format_cpu, format_memory};

/// An Event to write: on the HybridAutoscaler, and on the target too when `on_target`.
struct Note {
    type_: EventType,
    reason: &'static str,
    message: String,
    on_target: bool,
}

/// A period's decision with what it was made of, for the words of the report.
pub struct Decided<'a> {
    pub policy: &'a Policy,
    pub obs: &'a Observation,
    pub decision: &'a Decision,
}

pub struct Report<'a> {
    pub status: HybridAutoscalerStatus,
    notes: Vec<Note>,
    metrics: &'a Metrics,
    key: &'a str,
}

fn now_text() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
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

fn container_resources<'r>(rs: impl IntoIterator<Item = (&'r String, &'r Res)>) -> Vec<ContainerResources> {
    rs.into_iter()
        .map(|(n, r)| ContainerResources {
            container_name: n.clone(),
            cpu: format_cpu(r.cpu),
            memory: format_memory(r.mem),
        })
        .collect()
}

fn describe(cs: &[ContainerResize]) -> String {
    cs.iter()
        .map(|c| format!("{}: cpu {}, memory {}", c.name, format_cpu(c.request.cpu), format_memory(c.request.mem)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn none_decision(reason: String) -> DecisionStatus {
    DecisionStatus { kind: "None".into(), reason, time: now_text(), ..Default::default() }
}

impl<'a> Report<'a> {
    /// Starts from the status as it is: conditions keep their transition times, and an Event is written
    /// only when one changes.
    pub fn new(ha: &HybridAutoscaler, metrics: &'a Metrics, key: &'a str) -> Report<'a> {
        let mut status = ha.status.clone().unwrap_or_default();
        status.observed_generation = ha.metadata.generation;
        Report { status, notes: Vec::new(), metrics, key }
    }

    fn note(&mut self, type_: EventType, reason: &'static str, message: String, on_target: bool) {
        self.notes.push(Note { type_, reason, message, on_target });
    }

    fn condition(&mut self, type_: &str, status: bool, reason: &str, message: &str) -> bool {
        set_condition(&mut self.status.conditions, type_, status, reason, message)
    }

    pub fn invalid(&mut self, e: &str) {
        if self.condition("Valid", false, "InvalidSpec", e) {
            self.note(EventType::Warning, "InvalidSpec", e.to_string(), false);
        }
        self.metrics.decision(self.key, "Invalid");
        self.status.last_decision = Some(none_decision(format!("invalid spec: {e}")));
    }

    pub fn valid(&mut self) {
        self.condition("Valid", true, "ValidSpec", "");
    }

    pub fn failed(&mut self, f: Fail) {
        self.metrics.error(self.key, f.source.as_str());
        self.metrics.decision(self.key, "None");
        let msg = format!("{}; doing nothing this period", f.message);
        if self.condition(f.condition, false, f.reason, &msg) {
            self.note(EventType::Warning, f.reason, msg.clone(), true);
        }
        warn!(workload = %self.key, "{msg}");
        self.status.last_decision = Some(none_decision(msg));
    }

    pub fn scale_read(&mut self, replicas: u32) {
        self.condition("AbleToScale", true, "SucceededGetScale", "");
        self.status.current_replicas = Some(replicas as i32);
    }

    pub fn rollout(&mut self, rollout: &Rollout, recreated: Option<String>) {
        if let Rollout::Stalled { stale } = rollout {
            let msg = format!("{stale} pods still run the old requests after {RECREATE_TIMEOUT_S}s; giving up");
            self.note(EventType::Warning, "RecreateStalled", msg, true);
        }
        if let Some(pod) = recreated {
            self.note(EventType::Normal, "RecreatedPod", format!("deleted pod {pod} to apply new requests"), true);
        }
    }

    /// The recommendation and the conditions that say why nothing was done; returns the decision's record,
    /// timed now, which [`Report::recommended`] or [`Report::acted`] completes.
    pub fn decided(&mut self, obs: &Observation, d: &Decision) -> DecisionStatus {
        if let Some(r) = d.recommended_replicas {
            self.metrics.set_desired(self.key, r);
            self.status.desired_replicas = Some(r as i32);
            self.status.recommendation =
                Some(RecommendationStatus { replicas: r as i32, containers: container_resources(&d.recommended) });
        }
        self.blockers(&obs.headroom, d);
        DecisionStatus {
            kind: d.action.kind().into(),
            reason: d.reason.clone(),
            time: now_text(),
            ..Default::default()
        }
    }

    fn blockers(&mut self, headroom: &Headroom, d: &Decision) {
        if d.blocker == Blocker::Metrics {
            if self.condition("MetricsAvailable", false, "MetricsMissing", &d.reason) {
                self.note(EventType::Warning, "MetricsMissing", format!("{}; doing nothing", d.reason), true);
            }
            self.metrics.error(self.key, "metrics");
        } else {
            self.condition("MetricsAvailable", true, "MetricsPresent", "");
        }
        if let Headroom::Failed(e) = headroom {
            if self.condition("PlacementAvailable", false, "PlacementAPIError", e) {
                self.note(EventType::Warning, "PlacementUnavailable", format!("{e}; doing nothing"), true);
            }
            if d.blocker == Blocker::Placement {
                self.metrics.error(self.key, "placement");
            }
        } else {
            self.condition("PlacementAvailable", true, "PlacementAPIReachable", "");
        }
        let limited = d.blocker == Blocker::Limited;
        let (reason, message) = if limited { ("CannotScale", d.reason.as_str()) } else { ("NotLimited", "") };
        self.condition("ScalingLimited", limited, reason, message);
    }

    /// Mode Off: what would have been done. The Event only when that changes, since nothing else would.
    pub fn recommended(&mut self, d: &Decision, mut record: DecisionStatus) {
        let kind = d.action.kind();
        let changed = self.status.last_decision.as_ref().is_none_or(|l| l.kind != kind);
        if d.action != Action::None && changed {
            self.note(EventType::Normal, "Recommendation", format!("mode Off, would {kind}: {}", d.reason), false);
        }
        self.metrics.decision(self.key, if d.action == Action::None { "None" } else { "Recommend" });
        if let Action::Scale { from, to } = d.action {
            record.from_replicas = Some(from as i32);
            record.to_replicas = Some(to as i32);
        }
        self.status.last_decision = Some(record);
    }

    /// What acting did. A failure is handed back, for [`Report::failed`], once what was done before it is
    /// recorded: the scale-out's plan, the baseline requests of a template rewrite.
    pub fn acted(&mut self, p: &Decided<'_>, mut record: DecisionStatus, acted: Acted) -> Result<(), Fail> {
        if let Some(plan) = &acted.plan {
            self.planned(plan);
        }
        if matches!(p.decision.action, Action::Recreate { .. }) && self.status.baseline_requests.is_empty() {
            self.status.baseline_requests = container_resources(&p.obs.baseline);
        }
        let applied = acted.result?;
        self.applied(p, &mut record, applied, acted.plan.as_ref());
        if record.applied {
            self.status.last_action_time = Some(now_text());
            info!(workload = %self.key, kind = %record.kind, reason = %record.reason, "applied");
        } else {
            debug!(workload = %self.key, kind = %record.kind, reason = %record.reason, "no action");
        }
        self.metrics.decision(self.key, if record.applied { &record.kind } else { "None" });
        self.status.last_decision = Some(record);
        Ok(())
    }

    fn planned(&mut self, plan: &Plan) {
        let cost = if plan.placements.is_empty() {
            0.0
        } else {
            plan.placements.iter().map(|p| p.network_cost).sum::<f64>() / plan.placements.len() as f64
        };
        self.metrics.set_network_cost(self.key, cost);
        self.status.placement = Some(PlacementStatus {
            time: now_text(),
            replicas: plan
                .placements
                .iter()
                .map(|p| PlannedReplica { node: p.node.clone(), mean_hops: p.mean_hops, network_cost: p.network_cost })
                .collect(),
            unplaceable: plan.unplaceable as i32,
            reason: plan.reason.clone(),
            mean_network_cost: cost,
        });
    }

    fn applied(&mut self, p: &Decided<'_>, record: &mut DecisionStatus, applied: Applied, plan: Option<&Plan>) {
        let reason = &p.decision.reason;
        match (&p.decision.action, applied) {
            (Action::Resize { pods, grow }, Applied::Resized { done, unavailable }) => {
                if let Some(refusal) = unavailable {
                    let msg = self.resize_unavailable(p.policy, &refusal);
                    record.reason = msg;
                }
                if done > 0 {
                    record.applied = true;
                    record.pods = pods.iter().map(|r| r.pod.clone()).collect();
                    let done: Vec<String> =
                        pods[..done].iter().map(|r| format!("{} ({})", r.pod, describe(&r.containers))).collect();
                    let verb = if *grow { "ResizedUp" } else { "ResizedDown" };
                    self.note(EventType::Normal, verb, format!("in place: {}; {reason}", done.join(", ")), true);
                }
            }
            (Action::Recreate { containers }, Applied::Recreating) => {
                record.applied = true;
                let msg = format!(
                    "template requests set to {}; pods are recreated one at a time; {reason}",
                    describe(containers)
                );
                self.note(EventType::Normal, "Recreating", msg, true);
            }
            (&Action::Scale { from, to }, Applied::ScaledUp) => {
                Self::scaled(record, from, to);
                let msg = plan.map_or_else(String::new, |plan| scale_out_words(plan, from, to));
                self.note(EventType::Normal, "ScaledUp", format!("{msg}; {reason}"), true);
            }
            (&Action::Scale { from, to }, Applied::ScaledDown) => {
                Self::scaled(record, from, to);
                self.note(EventType::Normal, "ScaledDown", format!("{from} -> {to} replicas; {reason}"), true);
            }
            _ => {}
        }
    }

    fn scaled(record: &mut DecisionStatus, from: u32, to: u32) {
        record.applied = true;
        record.from_replicas = Some(from as i32);
        record.to_replicas = Some(to as i32);
    }

    /// The Event, and the decision's new reason.
    fn resize_unavailable(&mut self, policy: &Policy, refusal: &str) -> String {
        let then = if policy.allow_recreate {
            "recreating pods instead from the next period"
        } else {
            "recreate is not allowed: horizontal scaling only from now on"
        };
        let msg = format!("in-place resize is unavailable ({refusal}); {then}");
        self.note(EventType::Warning, "ResizeUnavailable", msg.clone(), true);
        msg
    }

    /// Writes the status, then the Events; failures are logged and counted, never retried within the period.
    pub async fn publish(self, client: &Client, recorder: &Recorder, ha: &HybridAutoscaler) {
        let ns = ha.namespace().unwrap_or_default();
        let api: Api<HybridAutoscaler> = Api::namespaced(client.clone(), &ns);
        let patch = Patch::Merge(json!({"status": self.status}));
        if let Err(e) = api.patch_status(&ha.name_any(), &PatchParams::default(), &patch).await {
            warn!(workload = %self.key, error = %e, "writing the status failed");
            self.metrics.error(self.key, "kube");
        }
        let cr_ref = ha.object_ref(&());
        let target_ref = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(ha.spec.target_ref.kind.clone()),
            name: Some(ha.spec.target_ref.name.clone()),
            namespace: Some(ns),
            ..Default::default()
        };
        for n in self.notes {
            let ev = Event {
                type_: n.type_,
                reason: n.reason.into(),
                note: Some(n.message),
                action: "Autoscale".into(),
                secondary: None,
            };
            let refs = if n.on_target { vec![&cr_ref, &target_ref] } else { vec![&cr_ref] };
            for r in refs {
                if let Err(e) = recorder.publish(&ev, r).await {
                    debug!(workload = %self.key, error = %e, "writing an Event failed");
                }
            }
        }
    }
}

/// The ScaledUp Event's words: where the new replicas were planned, and what could not be placed.
fn scale_out_words(plan: &Plan, from: u32, to: u32) -> String {
    let nodes: Vec<String> = plan
        .placements
        .iter()
        .map(|p| format!("{} (hops {:.1}, cost {:.2})", p.node, p.mean_hops, p.network_cost))
        .collect();
    let mut msg = format!("{from} -> {to} replicas; planned near the existing pods on {}", nodes.join(", "));
    if plan.unplaceable > 0 {
        msg.push_str(&format!("; {} cannot be placed now: {}", plan.unplaceable, plan.reason));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Headroom, PodResize};
    use crate::observe::Source;
    use crate::placement::{Planned, TemplateInfo};
    use mlsched_edge::http::Exposition;
    use std::collections::BTreeMap;

    fn ha() -> HybridAutoscaler {
        let spec = HybridAutoscalerSpec {
            target_ref: TargetRef { api_version: None, kind: "Deployment".into(), name: "web".into() },
            max_replicas: 5,
            target_cpu_utilization_percent: Some(70),
            ..Default::default()
        };
        HybridAutoscaler::new("web", spec)
    }

    fn policy() -> Policy {
        crate::run::policy_from_spec(&ha().spec, &crate::Config::default()).unwrap()
    }

    fn observation() -> Observation {
        Observation {
            now: 0.0,
            replicas: 2,
            selector: "app=web".into(),
            near_workload: None,
            template: TemplateInfo::default(),
            pods: Vec::new(),
            baseline: BTreeMap::from([("app".to_string(), Res::new(1000, 256 << 20))]),
            rollout: Rollout::Idle,
            headroom: Headroom::NotAsked,
            limit_base: 2,
        }
    }

    fn decision(action: Action) -> Decision {
        Decision {
            action,
            reason: "because".into(),
            blocker: Blocker::None,
            recommended_replicas: Some(2),
            recommended: BTreeMap::new(),
        }
    }

    fn reasons(r: &Report<'_>) -> Vec<&'static str> {
        r.notes.iter().map(|n| n.reason).collect()
    }

    #[test]
    fn a_failure_after_the_scale_was_read_flips_able_to_scale() {
        let metrics = Metrics::new();
        let mut r = Report::new(&ha(), &metrics, "default/web");
        r.scale_read(3);
        r.failed(Fail::kube("FailedListPods", "pods of web: boom"));
        let c = r.status.conditions.iter().find(|c| c.type_ == "AbleToScale").unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "FailedListPods"));
        assert_eq!(r.status.current_replicas, Some(3));
        let last = r.status.last_decision.as_ref().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.reason.as_str()),
            ("None", "pods of web: boom; doing nothing this period")
        );
        assert_eq!(reasons(&r), ["FailedListPods"]);
        assert!(r.notes[0].on_target);
        let m = metrics.encode();
        assert!(m.contains("source=\"kube\"} 1") && m.contains("kind=\"None\"} 1"), "{m}");
    }

    #[test]
    fn a_resize_refused_part_way_reports_what_was_done_and_why_it_stopped() {
        let metrics = Metrics::new();
        let mut r = Report::new(&ha(), &metrics, "default/web");
        let resize = |pod: &str| PodResize {
            pod: pod.into(),
            node: "n1".into(),
            containers: vec![ContainerResize {
                name: "app".into(),
                request: Res::new(1286, 256 << 20),
                limit_cpu: None,
                limit_mem: None,
            }],
        };
        let d = decision(Action::Resize { pods: vec![resize("a"), resize("b")], grow: true });
        let (p, obs) = (policy(), observation());
        let record = r.decided(&obs, &d);
        let acted = Acted { plan: None, result: Ok(Applied::Resized { done: 1, unavailable: Some("nope".into()) }) };
        r.acted(&Decided { policy: &p, obs: &obs, decision: &d }, record, acted).unwrap();
        assert_eq!(reasons(&r), ["ResizeUnavailable", "ResizedUp"]);
        assert_eq!(r.notes[1].message, "in place: a (app: cpu 1286m, memory 256Mi); because");
        let last = r.status.last_decision.as_ref().unwrap();
        assert!(last.applied && last.reason.starts_with("in-place resize is unavailable (nope)"), "{last:?}");
        assert_eq!(last.pods, ["a", "b"]);
        assert!(r.status.last_action_time.is_some());
    }

    #[test]
    fn a_scale_out_failing_after_its_plan_keeps_the_plan() {
        let metrics = Metrics::new();
        let mut r = Report::new(&ha(), &metrics, "default/web");
        let d = decision(Action::Scale { from: 2, to: 4 });
        let (p, obs) = (policy(), observation());
        let record = r.decided(&obs, &d);
        let plan = Plan {
            placements: vec![Planned { node: "node-b".into(), mean_hops: 2.0, network_cost: 3.0 }],
            unplaceable: 1,
            reason: "full".into(),
        };
        let acted = Acted { plan: Some(plan), result: Err(Fail::kube("FailedUpdateScale", "scale of web: boom")) };
        let f = r.acted(&Decided { policy: &p, obs: &obs, decision: &d }, record, acted).unwrap_err();
        assert_eq!((f.source, f.reason), (Source::Kube, "FailedUpdateScale"));
        let placement = r.status.placement.as_ref().unwrap();
        assert_eq!((placement.replicas[0].node.as_str(), placement.mean_network_cost), ("node-b", 3.0));
        assert!(r.status.last_decision.is_none() && r.notes.is_empty());
    }

    #[test]
    fn a_recreate_records_the_baseline_before_the_template_changes() {
        let metrics = Metrics::new();
        let mut r = Report::new(&ha(), &metrics, "default/web");
        let containers = vec![ContainerResize {
            name: "app".into(),
            request: Res::new(2000, 256 << 20),
            limit_cpu: None,
            limit_mem: None,
        }];
        let d = decision(Action::Recreate { containers });
        let (p, obs) = (policy(), observation());
        let record = r.decided(&obs, &d);
        let acted = Acted { plan: None, result: Ok(Applied::Recreating) };
        r.acted(&Decided { policy: &p, obs: &obs, decision: &d }, record, acted).unwrap();
        assert_eq!(r.status.baseline_requests[0].cpu, "1");
        assert_eq!(reasons(&r), ["Recreating"]);
        assert!(metrics.encode().contains("kind=\"Recreate\"} 1"));
    }

    #[test]
    fn mode_off_says_what_it_would_do_once() {
        let metrics = Metrics::new();
        let mut r = Report::new(&ha(), &metrics, "default/web");
        let d = decision(Action::Scale { from: 2, to: 3 });
        let record = r.decided(&observation(), &d);
        r.recommended(&d, record.clone());
        r.recommended(&d, record);
        assert_eq!(reasons(&r), ["Recommendation"]);
        let last = r.status.last_decision.as_ref().unwrap();
        assert_eq!((last.applied, last.from_replicas, last.to_replicas), (false, Some(2), Some(3)));
    }
}
