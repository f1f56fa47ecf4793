//! Preemption in the daemon: the running units a waiting gang may evict, read from the bound pods, and
//! the order handed to the evictor. What to evict is the core's decision (`mlsched::gang::preempt`).

use mlsched::gang::{NoPreemption, Preemption, RunningUnit};

use super::*;

/// A waiting unit's preemption, as handed to the evictor: evict the victims (whole units, in this order)
/// and nominate each member of the preemptor to the node it would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreemptionOrder {
    /// The preemptor's queue name: a gang's `namespace/name`, or `pod namespace/name` (the victims' Events
    /// say "Preempted by" it).
    pub preemptor: String,
    /// Pods to evict, with their nodes.
    pub victims: Vec<(PodRef, String)>,
    pub nominated: Vec<(PodRef, String)>,
}

/// How long a preemptor whose evictions were refused waits before it may preempt again: a
/// PodDisruptionBudget's refusal asks for 10 s (its `Retry-After`), and asking sooner would be refused again.
pub const PREEMPTION_RETRY: Duration = Duration::from_secs(10);

/// The parts of the state preemption reads, borrowed apart from the queue it nominates in.
pub(super) struct PreemptionView<'a> {
    pub bound: &'a HashMap<String, BoundPod>,
    pub refused: &'a HashMap<String, (Duration, String)>,
    pub pending: &'a HashMap<String, PendingPod>,
    pub snapshot: &'a Snapshot,
    pub topology: &'a Topology,
}

impl PreemptionView<'_> {
    /// The units preemption may evict: bound pods of every scheduler that are not being deleted already,
    /// by gang (a pod outside any gang is a unit of its own), at the highest priority among their pods and
    /// started when the first was seen bound. Unit names say which kind they are, so a gang and a pod of the
    /// same name stay apart.
    fn running_units(&self) -> Vec<RunningUnit> {
        let mut units: HashMap<String, RunningUnit> = HashMap::new();
        for (key, b) in self.bound.iter().filter(|(_, b)| !b.deleting) {
            let name = match &b.gang {
                Some(gang) => format!("gang {gang}"),
                None => format!("pod {key}"),
            };
            let unit = units.entry(name.clone()).or_insert_with(|| RunningUnit {
                name,
                priority: i32::MIN,
                pods: Vec::new(),
                started: b.since,
            });
            unit.priority = unit.priority.max(b.pod.priority);
            unit.started = unit.started.min(b.since);
            unit.pods.push(key.clone());
        }
        let mut units: Vec<RunningUnit> = units.into_values().collect();
        units.sort_by(|a, b| a.name.cmp(&b.name));
        units.iter_mut().for_each(|u| u.pods.sort());
        units
    }

    /// After a pass left gangs without room, the highest of them at `waiting_priority`:
    /// the first that may preempt is nominated and its order added to `result`. Returns, by gang, what
    /// preemption did for each gang it looked at (appended to the gang's waiting message), and for gangs
    /// waiting on a nomination, where. Units are gathered only when some bound pod is below
    /// `waiting_priority` (with one priority everywhere, a pass with waiting units costs no more than before).
    pub(super) fn preempt(
        &self,
        queue: &mut GangQueue,
        profiles: &[Profile],
        waiting_priority: i32,
        now: Duration,
        result: &mut PassResult,
    ) -> HashMap<String, String> {
        let mut notes: HashMap<String, String> = HashMap::new();
        if self.bound.values().any(|b| !b.deleting && b.pod.priority < waiting_priority) {
            let running = self.running_units();
            let outcome = queue.preempt_among(profiles, self.snapshot, self.topology, &running, now);
            notes.extend(outcome.refused.iter().map(|r| (r.gang().to_string(), refusal(r))));
            if let Some(preemption) = outcome.preemption {
                let order = self.order(&preemption, &running);
                debug!(preemptor = %order.preemptor, victims = order.victims.len(), "preempting");
                result.preemptions.push(order);
            }
        }
        for (name, (_, why)) in self.refused {
            let retry = PREEMPTION_RETRY.as_secs();
            notes
                .insert(name.clone(), format!("the last attempt stopped: {why}; it may preempt again {retry} s after"));
        }
        for (name, nodes) in queue.nominations() {
            let mut names: Vec<&str> = nodes.iter().map(|&n| self.snapshot.nodes()[n].name.as_str()).collect();
            names.sort_unstable();
            let note =
                format!("lower-priority pods were preempted on {}; waiting for them to terminate", names.join(", "));
            notes.insert(name.to_string(), note);
        }
        notes
    }

    fn order(&self, preemption: &Preemption, running: &[RunningUnit]) -> PreemptionOrder {
        let victims = preemption
            .victims
            .iter()
            .filter_map(|name| running.iter().find(|u| u.name == *name))
            .flat_map(|u| &u.pods)
            .filter_map(|key| self.bound.get(key).map(|b| (b.pod_ref.clone(), b.node.clone())))
            .collect();
        let nominated = preemption
            .members
            .iter()
            .filter_map(|(key, node)| {
                Some((self.pending.get(key)?.info.pod_ref.clone(), self.snapshot.nodes()[*node].name.clone()))
            })
            .collect();
        PreemptionOrder { preemptor: preemption.gang.clone(), victims, nominated }
    }
}

impl ClusterState {
    /// The evictions for `preemptor` did not all go through (a PodDisruptionBudget forbade one, say): the
    /// room held for it is let go, and it may preempt again [`PREEMPTION_RETRY`] after `now`; until then its
    /// members are told `why`. Returns its unit, to be tried again at once (so they are told).
    pub fn preemption_failed(
        &mut self,
        queue: &mut GangQueue,
        preemptor: &str,
        why: String,
        now: Duration,
    ) -> Option<UnitKey> {
        queue.unit(preemptor)?;
        queue.preemption_refused(preemptor, now + PREEMPTION_RETRY);
        self.refused_preemptions.insert(preemptor.to_string(), (now + PREEMPTION_RETRY, why));
        Some(UnitKey::from_queue_name(preemptor))
    }
}

/// What a member of a gang that evicts nothing is told: why, without repeating the gang's name.
fn refusal(refused: &NoPreemption) -> String {
    let text = refused.to_string();
    let prefix = format!("gang {}: ", refused.gang());
    text.strip_prefix(&prefix).map(str::to_string).unwrap_or(text)
}
