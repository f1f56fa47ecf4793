//! The scheduling pass: the pending units decided on the snapshot, as binds to send and reports to write.

use super::preemption::PreemptionView;
use super::*;

impl ClusterState {
    pub(super) fn gang_params(
        &self,
        unit: &UnitKey,
        members: &[&PendingPod],
    ) -> Result<(usize, Option<Duration>, Option<TopologyRequirement>), PodGroupMissing> {
        let UnitKey::Gang(key) = unit else { return Ok((1, None, None)) };
        let first = members.first().and_then(|m| m.info.gang.as_ref());
        let topology_from_pods = members.iter().find_map(|m| m.info.topology.clone());
        let timeout_from_pods = members.iter().find_map(|m| m.info.gang.as_ref()?.timeout);
        if let Some(api) = first.and_then(|g| g.pod_group) {
            let pg = self.pod_groups.get(&(api, key.clone())).ok_or_else(|| PodGroupMissing(key.clone(), api))?;
            Ok((pg.min_member, pg.timeout.or(timeout_from_pods), pg.topology.clone().or(topology_from_pods)))
        } else {
            let size = members.iter().filter_map(|m| m.info.gang.as_ref()?.size).max().unwrap_or(1);
            Ok((size, timeout_from_pods, topology_from_pods))
        }
    }

    /// The PodGroup's `minResources` less what its bound members request (they count towards it).
    fn min_resources_left(&self, unit: &UnitKey, members: &[&PendingPod]) -> Result<Option<MinResources>, Invalid> {
        let UnitKey::Gang(key) = unit else { return Ok(None) };
        let Some(api) = members.first().and_then(|m| m.info.gang.as_ref()?.pod_group) else { return Ok(None) };
        match self.pod_groups.get(&(api, key.clone())).map(|pg| &pg.min_resources) {
            Some(Ok(Some(min))) => {
                Ok(Some(min.less_held(self.bound.values().filter(|b| b.gang.as_deref() == Some(key)).map(|b| &b.pod))))
            }
            Some(Err(e)) => Err(Invalid(format!("PodGroup {key}: {e}"))),
            _ => Ok(None),
        }
    }

    pub(super) fn bound_members(&self, gang: &str) -> usize {
        self.bound.values().filter(|b| b.gang.as_deref() == Some(gang)).count()
    }

    /// One scheduling pass over the units of `queue` due now: the core queue, kept across passes, orders
    /// them, backs off those that do not fit, holds those binding; the pass gives it their members.
    pub fn run_pass(&mut self, queue: &mut GangQueue, profiles: &[Profile], now: Duration) -> PassResult {
        self.clock = now;
        self.refresh();
        let mut result = PassResult::default();
        let mut ready = queue.ready(now);
        if ready.is_empty() {
            return result;
        }
        if ready.len() > UNITS_PER_PASS {
            ready.truncate(UNITS_PER_PASS);
            result.more = true;
            // The unit holding the core queue's reservation joins every pass (its room stays held only
            // while it takes part), however long the backlog before it.
            if let Some(holder) = queue.reserved_for()
                && !ready.iter().any(|n| n == holder)
                && queue.unit(holder).is_some_and(|u| !u.binding)
            {
                ready.push(holder.to_string());
            }
        }
        let ready: Vec<UnitKey> = ready.iter().map(|name| UnitKey::from_queue_name(name)).collect();
        // A single pod's unit is keyed by the pod; only gangs need a look at every pending pod. Passes come
        // with every batch of events, so they cost what is ready, not the whole backlog.
        let mut members: HashMap<&UnitKey, Vec<&PendingPod>> = HashMap::new();
        for unit in &ready {
            if let UnitKey::Pod(key) = unit
                && let Some(p) = self.pending.get(key)
                && p.unit == *unit
                && !self.assumed.contains_key(key)
            {
                members.entry(unit).or_default().push(p);
            }
        }
        if ready.iter().any(|u| matches!(u, UnitKey::Gang(_))) {
            for p in self.pending.values() {
                if matches!(p.unit, UnitKey::Gang(_)) && !self.assumed.contains_key(&p.info.pod_ref.key()) {
                    members.entry(&p.unit).or_default().push(p);
                }
            }
        }
        let mut tried: HashSet<String> = HashSet::new();
        let mut waiting_for_members: Vec<Waiting> = Vec::new();
        let mut timed_out_early: Vec<(UnitKey, String, Vec<PodRef>)> = Vec::new();
        let mut invalid: Vec<(UnitKey, String, Vec<PodRef>)> = Vec::new();
        for unit in &ready {
            let Some(mut pods) = members.get(unit).cloned() else {
                // Nothing left to place and nothing in flight: a unit kept would be ready on every pass.
                if !self.unit_sizes.contains_key(unit) && !self.in_flight.contains_key(unit) {
                    queue.remove(&unit.queue_name());
                }
                continue;
            };
            pods.sort_by(|a, b| a.info.pod_ref.name.cmp(&b.info.pod_ref.name));
            let refs: Vec<PodRef> = pods.iter().map(|p| p.info.pod_ref.clone()).collect();
            let queue_name = unit.queue_name();
            let arrived_at = queue.unit(&queue_name).expect("ready units are queued").arrived_at;
            let gang_name = unit.name();
            let (min_member, timeout, topology) = match self.gang_params(unit, &pods) {
                Ok(p) => p,
                Err(missing) => {
                    waiting_for_members.push((unit.clone(), None, WaitingFor::PodGroup, missing.to_string(), refs));
                    continue;
                }
            };
            let bound = if matches!(unit, UnitKey::Gang(_)) { self.bound_members(gang_name) } else { 0 };
            let min = min_member.saturating_sub(bound).max(1);
            if pods.len() < min {
                let reason = format!("gang {gang_name}: waiting for members: {}/{min} exist", pods.len());
                match timeout.map(|t| arrived_at + t) {
                    Some(deadline) if deadline <= now => timed_out_early.push((unit.clone(), reason, refs)),
                    deadline => {
                        let why = WaitingFor::Members { min: min_member };
                        waiting_for_members.push((unit.clone(), deadline, why, reason, refs));
                    }
                }
                continue;
            }
            let min_resources = match self.min_resources_left(unit, &pods) {
                Ok(m) => m,
                Err(reason) => {
                    invalid.push((unit.clone(), reason.to_string(), refs));
                    continue;
                }
            };
            let profile = pods[0].profile.min(profiles.len() - 1);
            let priority = pods.iter().map(|p| p.info.pod.priority).max().unwrap_or(0);
            let mut gang = Gang::new(queue_name.clone(), min, pods.iter().map(|p| self.pod_for_pass(p)).collect())
                .with_priority(priority);
            gang.timeout = timeout;
            gang.topology = topology;
            gang.min_resources = min_resources;
            gang.may_preempt = !pods.iter().any(|p| p.info.preempt_never);
            if let Err(e) = queue.upsert(gang, profile, arrived_at) {
                invalid.push((unit.clone(), e.to_string(), refs));
                continue;
            }
            tried.insert(queue_name);
        }
        for (unit, deadline, why, reason, refs) in waiting_for_members {
            queue.sleep_until(&unit.queue_name(), deadline);
            if let UnitKey::Gang(g) = &unit {
                result.gangs.push(self.gang_report(g, "Pending", "WaitingForMembers", reason.clone()));
            }
            // The PodGroup's status carries the live count; a member keeps the count it was told.
            for r in refs {
                if self.waiting_told.get(&r.key()) != Some(&why) {
                    self.waiting_told.insert(r.key(), why.clone());
                    result.unschedulable_pods += 1;
                    result.unschedulable.push((r, crate::keys::REASON_UNSCHEDULABLE, reason.clone()));
                }
            }
        }
        let told_waiting = result.unschedulable.len();
        for (unit, reason, refs) in timed_out_early {
            queue.restart(&unit.queue_name(), now);
            let message = format!("timed out: {reason}");
            if let UnitKey::Gang(g) = &unit {
                result.gangs.push(self.gang_report(g, "Pending", crate::keys::REASON_GANG_TIMEOUT, message.clone()));
            }
            result.unschedulable_pods += refs.len();
            for r in refs {
                result.unschedulable.push((r, crate::keys::REASON_GANG_TIMEOUT, message.clone()));
            }
        }
        for (unit, reason, refs) in invalid {
            queue.failed(&unit.queue_name(), now);
            result.error_pods += refs.len();
            for r in refs {
                result.unschedulable.push((r, crate::keys::REASON_INVALID, reason.clone()));
            }
        }
        if !tried.is_empty() {
            let hints = PodHints { bound: &self.bound, pending: &self.pending, clock: now };
            let outcome =
                queue.schedule_pass_among(profiles, &mut self.snapshot, &self.topology, now, &hints, &|name| {
                    tried.contains(name)
                });
            // The highest priority among the units that found no room: only pods below it can be victims.
            let waiting_priority =
                outcome.waiting.iter().filter_map(|(name, _)| queue.unit(name).map(|u| u.priority)).max();
            let notes = if let Some(waiting_priority) = waiting_priority {
                self.refused_preemptions.retain(|_, (until, _)| *until > now);
                let view = PreemptionView {
                    bound: &self.bound,
                    refused: &self.refused_preemptions,
                    pending: &self.pending,
                    snapshot: &self.snapshot,
                    topology: &self.topology,
                };
                view.preempt(queue, profiles, waiting_priority, now, &mut result)
            } else {
                HashMap::new()
            };
            for placement in outcome.placed {
                let unit = UnitKey::from_queue_name(&placement.gang);
                let mut binds = Vec::new();
                for m in &placement.members {
                    let node = self.snapshot.nodes()[m.node].name.clone();
                    let pod = self.pending[&m.pod_key].info.pod_ref.clone();
                    self.assumed.insert(m.pod_key.clone(), (node.clone(), m.gpus.clone()));
                    binds.push(MemberBind { pod, node, gpus: m.gpus.clone() });
                }
                result.scheduled_pods += binds.len();
                self.in_flight.insert(
                    unit.clone(),
                    InFlightUnit {
                        members: binds.iter().map(|b| (b.pod.key(), (b.clone(), BindState::InFlight, 0))).collect(),
                    },
                );
                if let UnitKey::Gang(g) = &unit {
                    let mut report =
                        self.gang_report(g, "Scheduling", "Binding", format!("binding {} members", binds.len()));
                    report.scheduled = self.bound_members(g);
                    result.gangs.push(report);
                }
                let priority = queue.unit(&placement.gang).map_or(0, |u| u.priority);
                result.binds.push(BindPlan { unit, priority, members: binds });
            }
            for (name, reason) in outcome.waiting {
                let unit = UnitKey::from_queue_name(&name);
                let profile = queue.unit(&name).map_or(0, |u| u.profile.min(profiles.len() - 1));
                let refs: Vec<PodRef> =
                    members.get(&unit).into_iter().flatten().map(|p| p.info.pod_ref.clone()).collect();
                let note = notes.get(&name);
                let reason = match note {
                    Some(note) => format!("{reason}; preemption: {note}"),
                    None => reason,
                };
                let message = match &unit {
                    UnitKey::Pod(key) => match (self.single_pod_message(&profiles[profile], key), note) {
                        (Some(nodes), Some(note)) => format!("{nodes} preemption: {note}."),
                        (Some(nodes), None) => nodes,
                        (None, _) => reason,
                    },
                    UnitKey::Gang(g) => {
                        result.gangs.push(self.gang_report(
                            g,
                            "Pending",
                            crate::keys::REASON_UNSCHEDULABLE,
                            reason.clone(),
                        ));
                        reason
                    }
                };
                result.unschedulable_pods += refs.len();
                for r in refs {
                    result.unschedulable.push((r, crate::keys::REASON_UNSCHEDULABLE, message.clone()));
                }
            }
            for timed_out in outcome.timed_out {
                let message = format!(
                    "gang {} timed out after {}s: {}",
                    timed_out.gang.name,
                    timed_out.waited.as_secs(),
                    timed_out.last_reason.unwrap_or_default()
                );
                result.gangs.push(self.gang_report(
                    &timed_out.gang.name,
                    "Pending",
                    crate::keys::REASON_GANG_TIMEOUT,
                    message.clone(),
                ));
                result.unschedulable_pods += timed_out.gang.members.len();
                for m in &timed_out.gang.members {
                    if let Some(p) = self.pending.get(&m.key) {
                        result.unschedulable.push((
                            p.info.pod_ref.clone(),
                            crate::keys::REASON_GANG_TIMEOUT,
                            message.clone(),
                        ));
                    }
                }
            }
            for (gang, reason) in outcome.rejected {
                result.error_pods += gang.members.len();
                for m in &gang.members {
                    if let Some(p) = self.pending.get(&m.key) {
                        result.unschedulable.push((
                            p.info.pod_ref.clone(),
                            crate::keys::REASON_INVALID,
                            reason.clone(),
                        ));
                    }
                }
            }
        }
        // Told something else since: if the gang waits again, its members are told so again.
        for (pod, _, _) in &result.unschedulable[told_waiting..] {
            self.waiting_told.remove(&pod.key());
        }
        result
    }

    /// A pod outside any gang naming a topology level that is not configured: honouring the annotation is
    /// impossible, and ignoring it would bind the pod as if it were absent. (A gang's level is checked with
    /// the gang, in the pass; a known level on a single pod is met by any node.)
    pub fn check_topology_level(&self, info: &PodInfo) -> Result<(), Invalid> {
        let Some(req) = info.topology.as_ref() else { return Ok(()) };
        if info.gang.is_some() || !self.is_ours(&info.scheduler_name) {
            return Ok(());
        }
        let annotation = if req.required { TOPOLOGY_REQUIRED_ANNOTATION } else { TOPOLOGY_PREFERRED_ANNOTATION };
        self.topology.level_index(&req.level).map(|_| ()).map_err(|e| Invalid(format!("annotation {annotation}: {e}")))
    }

    /// The core pod to schedule, with `near_nodes` filled from `mlsched.io/near-workload`: the nodes of the
    /// bound (or assumed) pods of the same namespace matching the selector, one entry per pod.
    pub(super) fn pod_for_pass(&self, pending: &PendingPod) -> Pod {
        let mut pod = pending.info.pod.clone();
        if let Some(selector) = &pending.info.near_workload {
            let namespace = &pending.info.pod_ref.namespace;
            pod.near_nodes = self
                .known_pods()
                .filter(|k| k.key != pod.key && k.key.split_once('/').is_some_and(|(ns, _)| ns == namespace))
                .filter(|k| crate::translate::selector_matches(selector, k.labels))
                .filter_map(|k| k.node.map(str::to_string))
                .collect();
            pod.near_nodes.sort();
        }
        pod
    }

    /// kube-scheduler's message for a single pod: `0/N nodes are available: ...`.
    pub(super) fn single_pod_message(&self, profile: &Profile, key: &str) -> Option<String> {
        let pod = &self.pending.get(key)?.info.pod;
        let (feasible, reasons) = feasible_nodes(profile, &self.snapshot, pod);
        feasible.is_empty().then(|| reasons.to_string())
    }

    pub(super) fn gang_report(
        &self,
        gang: &str,
        phase: &'static str,
        reason: &'static str,
        message: String,
    ) -> GangReport {
        // Only a PodGroup that exists has a status to write (a missing one is told to its members instead);
        // the status written is the coscheduling one (a scheduling.k8s.io group's members carry the news).
        let pod_group = self.pod_groups.contains_key(&(PodGroupApi::Coscheduling, gang.to_string()));
        GangReport { gang: gang.to_string(), pod_group, phase, scheduled: self.bound_members(gang), reason, message }
    }
}

/// Run times as the pods declare them (`mlsched.io/expected-runtime-seconds`).
struct PodHints<'a> {
    bound: &'a HashMap<String, BoundPod>,
    pending: &'a HashMap<String, PendingPod>,
    clock: Duration,
}

impl RuntimeHints for PodHints<'_> {
    fn expected_end(&self, pod_key: &str) -> Option<Duration> {
        match self.bound.get(pod_key) {
            Some(b) => b.expected_end,
            // Assumed by a pass, its bind not seen yet: it starts about now.
            None => self.pending.get(pod_key)?.info.expected_runtime.map(|r| self.clock + r),
        }
    }

    /// The longest any member declares; unknown when none does.
    fn expected_runtime(&self, gang: &Gang) -> Option<Duration> {
        gang.members.iter().filter_map(|m| self.pending.get(&m.key)?.info.expected_runtime).max()
    }
}
