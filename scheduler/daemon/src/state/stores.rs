//! The stores fed by the watches: nodes, PodGroups and pods, and the snapshot and topology kept from them.

use super::*;

impl ClusterState {
    /// Returns whether the change could help waiting pods: a node added, or one that may now hold a pod it
    /// could not (`Node::may_fit_more_than`); a cordon, a new taint or a shrink re-activates nothing.
    pub fn apply_node(&mut self, node: Node) -> bool {
        match self.nodes.get(&node.name) {
            Some(old) if *old == node => false,
            Some(old) => {
                let may_help = node.may_fit_more_than(old);
                self.nodes.insert(node.name.clone(), node);
                self.snapshot_stale = true;
                self.topology_stale = true;
                may_help
            }
            None => {
                let name = node.name.clone();
                if !self.snapshot_stale {
                    match self.snapshot.add_node(node.clone()) {
                        Ok(_) => {
                            let on_it: Vec<String> =
                                self.bound.iter().filter(|(_, b)| b.node == name).map(|(k, _)| k.clone()).collect();
                            for key in on_it {
                                self.place_bound(&key);
                            }
                        }
                        Err(_) => self.snapshot_stale = true,
                    }
                }
                self.nodes.insert(name, node);
                self.topology_stale = true;
                true
            }
        }
    }

    pub fn delete_node(&mut self, name: &str) {
        if self.nodes.remove(name).is_some() {
            self.snapshot_stale = true;
            self.topology_stale = true;
        }
    }

    /// Every pod key the state holds (bound, pending), for reconciling after a watch re-list.
    pub fn pod_keys(&self) -> Vec<String> {
        self.bound.keys().chain(self.pending.keys()).cloned().collect()
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// The PodGroups of `api` the state holds, for reconciling after that watch's re-list.
    pub fn pod_group_keys(&self, api: PodGroupApi) -> Vec<String> {
        self.pod_groups.keys().filter(|(a, _)| *a == api).map(|(_, k)| k.clone()).collect()
    }

    /// Whether a PodGroup `key` of the API other than `api` is held too (its members would share a gang).
    pub fn pod_group_in_other_api(&self, key: &str, api: PodGroupApi) -> bool {
        let other = match api {
            PodGroupApi::Coscheduling => PodGroupApi::Workload,
            PodGroupApi::Workload => PodGroupApi::Coscheduling,
        };
        self.pod_groups.contains_key(&(other, key.to_string()))
    }

    // ----- PodGroups -----

    /// Returns the unit to wake (its members may now have a quorum).
    pub fn apply_pod_group(&mut self, key: String, info: PodGroupInfo) -> Option<UnitKey> {
        let id = (info.api, key.clone());
        let changed = self.pod_groups.get(&id) != Some(&info);
        self.pod_groups.insert(id, info);
        changed.then_some(UnitKey::Gang(key))
    }

    /// Returns the unit to wake if the group was known (its members now wait on a missing PodGroup).
    pub fn delete_pod_group(&mut self, key: &str, api: PodGroupApi) -> Option<UnitKey> {
        self.pod_groups.remove(&(api, key.to_string())).map(|_| UnitKey::Gang(key.to_string()))
    }

    // ----- pods -----

    /// A pod event. Returns `(freed, unit)`: whether capacity was freed (wake backing-off units) and the
    /// unit a new pending pod joined (queue it).
    pub fn apply_pod(&mut self, info: PodInfo) -> (bool, Option<(UnitKey, i32)>) {
        let key = info.pod_ref.key();
        if info.terminal || (info.deleting && info.node_name.is_none()) {
            return (self.delete_pod(&key), None);
        }
        if self.is_ours(&info.scheduler_name) && self.observed.insert(key.clone()) {
            let profile = self.scheduler_names.iter().position(|n| *n == info.scheduler_name).unwrap_or(0);
            self.arrivals.push((profile, info.pod.clone()));
        }
        if let Some(node) = info.node_name.clone() {
            self.remove_pending(&key);
            if let Some(b) = self.bound.get_mut(&key)
                && b.node == node
            {
                // An in-place resize (`pods/resize`) changes what a running pod asks for: the snapshot books
                // what it asks now, on the GPUs it holds.
                b.deleting = info.deleting;
                let resized =
                    b.pod.requests != info.pod.requests || b.pod.gpu != info.pod.gpu || b.pod.mig != info.pod.mig;
                if !resized {
                    return (false, None);
                }
                b.pod = info.pod;
                if self.snapshot.placement(&key).is_some() {
                    let _ = self.snapshot.forget(&key);
                }
                self.place_bound(&key);
                return (true, None);
            }
            let had = self.bound.remove(&key).is_some() && self.snapshot.placement(&key).is_some();
            if had {
                let _ = self.snapshot.forget(&key);
            }
            let assumed = self.assumed.remove(&key);
            let gang = info.gang.as_ref().map(|g| g.key.clone());
            let gpu_index = match &assumed {
                Some((n, gpus)) if *n == node => Some(gpus.clone()),
                _ => info.gpu_index.clone(),
            };
            let keep_assumption = assumed.as_ref().is_some_and(|(n, _)| *n == node);
            if assumed.is_some() && !keep_assumption {
                let _ = self.snapshot.forget(&key);
            }
            let labels = info.labels;
            let bound_by_another_instance = !keep_assumption && self.is_ours(&info.scheduler_name);
            let bound = BoundPod {
                pod: info.pod,
                pod_ref: info.pod_ref,
                node,
                gpu_index,
                gang,
                labels,
                expected_end: info.expected_runtime.map(|r| self.clock + r),
                deleting: info.deleting,
                since: self.clock,
                bound_by_another_instance,
            };
            self.bound.insert(key.clone(), bound);
            if !keep_assumption {
                self.place_bound(&key);
            }
            return (false, None);
        }
        if !self.is_ours(&info.scheduler_name) {
            return (false, None);
        }
        let profile = self.scheduler_names.iter().position(|n| *n == info.scheduler_name).unwrap_or(0);
        let unit = match &info.gang {
            Some(g) => UnitKey::Gang(g.key.clone()),
            None => UnitKey::Pod(key.clone()),
        };
        let priority = info.pod.priority;
        let old = self.pending.insert(key.clone(), PendingPod { info, profile, unit: unit.clone() });
        match old {
            Some(old) if old.unit == unit => (false, None),
            Some(old) => {
                self.waiting_told.remove(&key);
                self.shrink_unit(&old.unit);
                *self.unit_sizes.entry(unit.clone()).or_insert(0) += 1;
                (false, Some((unit, priority)))
            }
            None => {
                *self.unit_sizes.entry(unit.clone()).or_insert(0) += 1;
                (false, Some((unit, priority)))
            }
        }
    }

    pub(super) fn shrink_unit(&mut self, unit: &UnitKey) {
        if let Some(n) = self.unit_sizes.get_mut(unit) {
            *n -= 1;
            if *n == 0 {
                self.unit_sizes.remove(unit);
            }
        }
    }

    pub(super) fn remove_pending(&mut self, key: &str) -> Option<PendingPod> {
        self.waiting_told.remove(key);
        let p = self.pending.remove(key)?;
        self.shrink_unit(&p.unit);
        Some(p)
    }

    /// Units with no pending member left and no bind in flight, for the queue to drop.
    pub fn finished_units<'a>(&'a self, units: impl Iterator<Item = &'a UnitKey>) -> Vec<UnitKey> {
        units.filter(|u| !self.unit_sizes.contains_key(u) && !self.in_flight.contains_key(u)).cloned().collect()
    }

    /// A pod was deleted (or finished). Returns whether it held capacity.
    pub fn delete_pod(&mut self, key: &str) -> bool {
        self.observed.remove(key);
        self.remove_pending(key);
        let assumed = self.assumed.remove(key).is_some();
        let bound = self.bound.remove(key).is_some();
        let placed = self.snapshot.placement(key).is_some();
        if placed {
            let _ = self.snapshot.forget(key);
        }
        bound || assumed || placed
    }

    /// Books a bound pod in the snapshot: on its recorded GPUs when they are free, else best fit.
    pub(super) fn place_bound(&mut self, key: &str) {
        if self.snapshot_stale {
            return;
        }
        let Some(b) = self.bound.get(key) else { return };
        let Some(id) = self.snapshot.node_id(&b.node) else { return };
        if self.snapshot.placement(key).is_some() {
            return;
        }
        let node = &self.snapshot.nodes()[id];
        let node_gpu_count = node.gpus.len();
        let mut gpus = b.gpu_index.clone().filter(|g| {
            g.len() == if b.pod.gpu.is_none() { 0 } else { b.pod.gpu.count as usize }
                && g.iter().all(|&i| node.gpus.get(i).is_some_and(|d| d.free_milli() >= b.pod.gpu.milli_per_gpu))
        });
        if gpus.is_none() {
            let mut any = b.pod.gpu.clone();
            any.models = None;
            gpus = best_fit_gpus(&node.gpus, &any);
        }
        let mut pod = b.pod.clone();
        pod.gpu.models = None;
        if let Some(gpus) = &gpus
            && self.snapshot.assume(&pod, id, gpus).is_ok()
        {
            return;
        }
        // The pod runs there even though the snapshot has no room for it (the node shrank, or another
        // scheduler or a resize over-filled it): book it anyway, so no room is offered that is not there.
        let wanted = if pod.gpu.is_none() { 0 } else { pod.gpu.count as usize };
        let devices = gpus
            .or_else(|| b.gpu_index.clone().filter(|g| g.len() == wanted))
            .unwrap_or_else(|| (0..wanted.min(node_gpu_count)).collect());
        match self.snapshot.record_running(&pod, id, &devices) {
            Ok(()) => warn!(pod = key, node = %b.node, "a bound pod over-commits its node; accounted as running"),
            Err(e) => warn!(pod = key, node = %b.node, error = %e, "a bound pod could not be accounted"),
        }
    }

    pub(super) fn refresh(&mut self) {
        if self.snapshot_stale {
            let old = std::mem::take(&mut self.snapshot);
            let mut fresh = Snapshot::new(self.nodes.values().cloned().collect()).expect("node names are unique keys");
            let keys: Vec<String> = self.bound.keys().cloned().collect();
            // Keep the devices each pod had, so a rebuild does not move anyone's GPUs.
            for key in &keys {
                if let Some(p) = old.placement(key) {
                    let gpus: Vec<usize> = p.gpus.indices().collect();
                    if let Some(b) = self.bound.get_mut(key) {
                        b.gpu_index = Some(gpus);
                    }
                }
            }
            self.snapshot = std::mem::take(&mut fresh);
            self.snapshot_stale = false;
            for key in keys {
                self.place_bound(&key);
            }
            let assumed: Vec<(String, (String, Vec<usize>))> =
                self.assumed.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (key, (node, gpus)) in assumed {
                let pod = self.pending.get(&key).map(|p| p.info.pod.clone());
                match (pod, self.snapshot.node_id(&node)) {
                    (Some(pod), Some(id)) => {
                        if let Err(e) = self.snapshot.assume(&pod, id, &gpus) {
                            warn!(pod = %key, error = %e, "an in-flight assumption no longer fits after a node change");
                        }
                    }
                    _ => debug!(pod = %key, "in-flight assumption on a node that is gone"),
                }
            }
        }
        if self.topology_stale {
            let labels: Vec<&str> = self.levels.iter().map(String::as_str).collect();
            self.topology = Topology::from_labels(&labels, self.snapshot.nodes()).expect("levels are validated");
            self.topology_stale = false;
        }
    }
}
