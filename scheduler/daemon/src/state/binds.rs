//! Binds in flight: what follows from the outcome of each member's bind.

use super::*;

impl ClusterState {
    /// What follows from the outcome of one member's bind (see [`BindFollowUp`]), by the kind of failure:
    /// - retryable (429, 5xx, no answer): a gang member is retried on its reserved node up to `bindRetries`
    ///   times, then its gang is given up; a single pod is given up (and decided again after its backoff);
    /// - conflict (409: bound already) or not found (404: gone): the member's assumption is released and
    ///   nothing is retried or reported; a pod that is gone leaves the pending pods at once;
    /// - anything else (403, 422, not sent): given up at once, with a report.
    ///
    /// A unit whose binds have all ended with some dropped backs off, so that the watch shows what became of
    /// the dropped members before any still pending is decided again.
    pub fn bind_result(
        &mut self,
        queue: &mut GangQueue,
        unit: &UnitKey,
        pod_key: &str,
        result: Result<(), BindError>,
        now: Duration,
    ) -> BindFollowUp {
        let kind = result.as_ref().err().map(BindError::kind);
        let is_gang = matches!(unit, UnitKey::Gang(_));
        let bind_retries = self.bind_retries;
        let Some(flight) = self.in_flight.get_mut(unit) else { return BindFollowUp::None };
        let Some((member, state, attempts)) = flight.members.get_mut(pod_key) else { return BindFollowUp::None };
        match kind {
            None => *state = BindState::Bound,
            Some(ErrorKind::Conflict | ErrorKind::NotFound) => *state = BindState::Dropped,
            Some(ErrorKind::Retryable) if is_gang && *attempts < bind_retries => {
                *attempts += 1;
                return BindFollowUp::Retry(member.clone(), *attempts);
            }
            Some(_) => {
                let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                return self.give_up(queue, unit, pod_key, &error, now);
            }
        }
        let member = member.clone();
        if let Some(kind @ (ErrorKind::Conflict | ErrorKind::NotFound)) = kind {
            // Bound already: if the watch has shown it, the assumption was turned into the bound pod then.
            if self.assumed.remove(pod_key).is_some() {
                let _ = self.snapshot.forget(pod_key);
            }
            // Gone: dropped now, unless the watch already shows a new pod of the same name.
            if kind == ErrorKind::NotFound && self.pending.get(pod_key).is_some_and(|p| p.info.pod_ref == member.pod) {
                self.remove_pending(pod_key);
            }
        }
        let flight = self.in_flight.get(unit).expect("checked above");
        let finished = flight.members.values().all(|(_, s, _)| *s != BindState::InFlight);
        let all_bound = finished && flight.members.values().all(|(_, s, _)| *s == BindState::Bound);
        let count = flight.members.len();
        let mut gang_done = None;
        let mut bound_earlier = Vec::new();
        if all_bound {
            let flight = self.in_flight.remove(unit).expect("checked above");
            // A single pod has nothing left to try: its unit stays out of the passes until the watch
            // shows the pod bound and drops it. A gang may still have members beyond its quorum.
            if is_gang {
                queue.bind_finished(&unit.queue_name());
            }
            if let UnitKey::Gang(g) = unit {
                // Members bound before (seen by the watch) plus this flight's, whose bound state the
                // watch may not have shown yet (after a give-up, earlier members are already bound).
                let before: Vec<&BoundPod> = self
                    .bound
                    .iter()
                    .filter(|(k, b)| b.gang.as_deref() == Some(g.as_str()) && !flight.members.contains_key(*k))
                    .map(|(_, b)| b)
                    .collect();
                bound_earlier = before
                    .iter()
                    .filter(|b| b.bound_by_another_instance)
                    .map(|b| (b.pod_ref.clone(), b.node.clone()))
                    .collect();
                bound_earlier.sort();
                let bound_now = before.len() + count;
                let message = if before.is_empty() {
                    format!("{bound_now} members bound")
                } else {
                    format!("{bound_now} members bound ({count} now, {} earlier)", before.len())
                };
                let mut report = self.gang_report(g, "Scheduled", "Scheduled", message);
                report.scheduled = bound_now;
                gang_done = Some(report);
            }
        } else if finished {
            // Some member was dropped: no gang report (not every member was bound by this flight), and a
            // backoff before the unit's members still pending, if any, are decided again.
            self.in_flight.remove(unit);
            queue.failed(&unit.queue_name(), now);
        }
        match kind {
            None => BindFollowUp::Bound { pod: member.pod, node: member.node, gang_done, bound_earlier },
            Some(kind) => BindFollowUp::Dropped { pod: member.pod, kind },
        }
    }

    /// Gives the unit up after a failed bind of `pod_key`: the assumptions of its members not bound (or
    /// dropped) are released and the unit backs off.
    pub(super) fn give_up(
        &mut self,
        queue: &mut GangQueue,
        unit: &UnitKey,
        pod_key: &str,
        error: &str,
        now: Duration,
    ) -> BindFollowUp {
        let flight = self.in_flight.remove(unit).expect("checked by the caller");
        let retries = flight.members.get(pod_key).map_or(0, |(_, _, attempts)| *attempts);
        let mut pods = Vec::new();
        for (key, (m, s, _)) in flight.members {
            if s != BindState::InFlight {
                continue;
            }
            if self.assumed.remove(&key).is_some() {
                let _ = self.snapshot.forget(&key);
            }
            self.waiting_told.remove(&key);
            pods.push(m.pod);
        }
        pods.sort();
        queue.failed(&unit.queue_name(), now);
        let message = format!("binding {pod_key} failed: {error}");
        let gang = match unit {
            UnitKey::Gang(g) => Some(self.gang_report(
                g,
                "Pending",
                crate::keys::REASON_GANG_FAILED,
                format!("gang given up after {retries} bind retries, assumptions released: {message}"),
            )),
            UnitKey::Pod(_) => None,
        };
        BindFollowUp::GaveUp { pods, message, gang }
    }
}
