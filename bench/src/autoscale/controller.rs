//! The sidecar's period for one simulated workload: observe, the shipped decision
//! ([`mlsched_autoscale::decide`]), act. Between periods the cluster's own controllers do their part, as
//! they would on a real cluster: the scheduler retries pending pods, and a recreate rollout replaces one
//! pod that still runs the old request at a time (VPA's one-by-one eviction).

use mlsched::core::Snapshot;
use mlsched::topology::Topology;
use mlsched_autoscale::{
    Action, DEFAULT_HISTORY_S, DEFAULT_SCALE_UP_LIMIT_PERIOD_S, Decision, Input, Mode, PodResize, Policy, decide,
};

use super::cluster::Placer;
use super::run::{Acc, RunConfig};
use super::workload::{CONTAINER, Replica, Workload};

/// Everything a period reads and changes besides the workload itself.
pub struct Ctx<'a> {
    pub cfg: &'a RunConfig,
    pub policy: &'a Policy,
    /// In-place resize is available (else the vertical path recreates, when the policy allows it).
    pub in_place: bool,
    pub topology: &'a Topology,
    pub snapshot: &'a mut Snapshot,
    pub placer: &'a mut Placer,
    pub acc: &'a mut Acc,
}

impl Ctx<'_> {
    /// One period: the decision on what the sidecar would observe now, then its action.
    pub fn period(&mut self, wl: &mut Workload, t: f64, utilization: f64) -> Decision {
        let ask_headroom = self.policy.mode != Mode::HorizontalOnly;
        let obs = wl.observe(self.snapshot, t, utilization, DEFAULT_HISTORY_S, ask_headroom);
        let limit_base = wl.replicas_history.limit_base(t, wl.spec_replicas, DEFAULT_SCALE_UP_LIMIT_PERIOD_S);
        let d = decide(&Input {
            policy: self.policy,
            now: t,
            replicas: wl.spec_replicas,
            pods: &obs.pods,
            baseline: &obs.baseline,
            headroom: &obs.headroom,
            in_place_available: self.in_place,
            history: &wl.replicas_history.recommendations,
            limit_base,
            rollout_in_progress: wl.rollout,
            last_grow_at: wl.last_grow_at,
        });
        wl.replicas_history.remember(t, self.policy, &d);
        *self.acc.decisions.entry(d.action.kind().to_string()).or_default() += 1;
        self.act(wl, t, &d.action);
        d
    }

    fn act(&mut self, wl: &mut Workload, t: f64, action: &Action) {
        match action {
            Action::None => {}
            Action::Resize { pods, grow } => {
                for r in pods {
                    self.resize(wl, r);
                }
                if *grow {
                    wl.last_grow_at = Some(t);
                }
                self.acc.vertical_actions += 1;
            }
            Action::Recreate { containers } => {
                // The sidecar's recreate patch carries the near-workload annotation too.
                if let Some(c) = containers.iter().find(|c| c.name == CONTAINER) {
                    wl.template_milli = c.request.cpu;
                }
                wl.rollout = true;
                wl.near_annotated = true;
                wl.last_grow_at = Some(t);
                self.acc.vertical_actions += 1;
            }
            Action::Scale { from, to } if to > from => {
                // The sidecar annotates the template before its first scale-out.
                wl.near_annotated = true;
                wl.spec_replicas = *to;
                for _ in *from..*to {
                    let replica = self.create_pod(wl, t, self.cfg.start_delay_s);
                    if let Some(node) = replica.node {
                        let nearest = wl.replicas.iter().filter_map(|r| self.topology.hops(node, r.node?)).min();
                        self.acc.added_hops += f64::from(nearest.unwrap_or(0));
                    }
                    self.acc.pods_added += 1;
                    wl.replicas.push(replica);
                }
            }
            Action::Scale { from, to } => {
                wl.spec_replicas = *to;
                let mut gone = wl.removal_order(t, (from - to) as usize);
                gone.sort_unstable_by(|a, b| b.cmp(a));
                for i in gone {
                    let r = wl.replicas.remove(i);
                    if r.node.is_some() {
                        let _ = self.snapshot.forget(&r.key);
                    }
                    self.acc.pods_removed += 1;
                }
            }
        }
    }

    /// Rebooks one pod at its new request on its node; a resize the node cannot take is left undone (the
    /// decision checked the room, so this only guards the simulation's own bookkeeping).
    fn resize(&mut self, wl: &mut Workload, r: &PodResize) {
        let Some(new) = r.containers.iter().find(|c| c.name == CONTAINER).map(|c| c.request.cpu) else { return };
        let Some(i) = wl.replicas.iter().position(|p| p.key == r.pod) else { return };
        let Some(node) = wl.replicas[i].node else { return };
        let Ok(old) = self.snapshot.forget(&r.pod) else { return };
        if self.snapshot.assume(&wl.pod(&r.pod, new), node, &[]).is_ok() {
            wl.replicas[i].cpu_milli = new;
        } else {
            let back = wl.pod(&r.pod, old.requests.cpu_milli);
            self.snapshot.assume(&back, node, &[]).expect("the old size fit a moment ago");
        }
    }

    /// A new pod from the template, placed by the mode's scheduler (pending when nothing fits).
    fn create_pod(&mut self, wl: &mut Workload, t: f64, delay_s: f64) -> Replica {
        let (key, seq) = wl.next_pod();
        let pod = wl.pod(&key, wl.template_milli);
        let node = self.placer.place(self.snapshot, pod, wl.near_nodes(self.snapshot), true);
        if node.is_none() {
            self.acc.unschedulable += 1;
        }
        Replica { key, node, cpu_milli: wl.template_milli, ready_at: t + delay_s, needs_state: true, seq }
    }

    /// What happens between periods: pending pods are retried, a rollout moves on by one pod.
    pub fn between_periods(&mut self, wl: &mut Workload, t: f64) {
        for i in 0..wl.replicas.len() {
            if wl.replicas[i].node.is_some() {
                continue;
            }
            let pod = wl.pod(&wl.replicas[i].key, wl.replicas[i].cpu_milli);
            if let Some(node) = self.placer.place(self.snapshot, pod, wl.near_nodes(self.snapshot), false) {
                wl.replicas[i].node = Some(node);
                wl.replicas[i].ready_at = t + self.cfg.start_delay_s;
            }
        }
        if wl.rollout {
            self.roll_one(wl, t);
        }
    }

    /// Replaces the first pod still at an old request, once every pod is up; ends the rollout when none is.
    fn roll_one(&mut self, wl: &mut Workload, t: f64) {
        if wl.replicas.iter().any(|r| !r.ready(t)) {
            return;
        }
        let Some(i) = wl.replicas.iter().position(|r| r.cpu_milli != wl.template_milli) else {
            wl.rollout = false;
            return;
        };
        let _ = self.snapshot.forget(&wl.replicas[i].key);
        wl.replicas[i].node = None;
        // The replacement takes the old pod's place in the list, so the sync model's primary stays index 0.
        wl.replicas[i] = self.create_pod(wl, t, self.cfg.restart_delay_s);
        self.acc.restarts += 1;
    }
}
