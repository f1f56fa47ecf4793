//! What the Placement API and the metrics read of the state.

use super::*;

impl ClusterState {
    /// A pod the scheduler tracks (bound, assumed or pending), by `namespace/name`.
    pub fn known_pod(&self, key: &str) -> Option<KnownPod<'_>> {
        if let Some((key, b)) = self.bound.get_key_value(key) {
            return Some(KnownPod { key, node: Some(&b.node), labels: &b.labels, pod: &b.pod });
        }
        let (key, p) = self.pending.get_key_value(key)?;
        let node = self.assumed.get(key).map(|(n, _)| n.as_str());
        Some(KnownPod { key, node, labels: &p.info.labels, pod: &p.info.pod })
    }

    /// Every pod the scheduler tracks: bound pods of any scheduler, and its own pending ones.
    pub fn known_pods(&self) -> impl Iterator<Item = KnownPod<'_>> {
        let bound =
            self.bound.iter().map(|(key, b)| KnownPod { key, node: Some(&b.node), labels: &b.labels, pod: &b.pod });
        let pending = self.pending.iter().map(|(key, p)| KnownPod {
            key,
            node: self.assumed.get(key).map(|(n, _)| n.as_str()),
            labels: &p.info.labels,
            pod: &p.info.pod,
        });
        bound.chain(pending)
    }

    /// GPU allocation figures for the metrics: (allocated milli, capacity milli, partly used GPUs).
    pub fn gpu_usage(&mut self) -> (i64, i64, usize) {
        self.refresh();
        let mut used = 0;
        let mut cap = 0;
        let mut partial = 0;
        for n in self.snapshot.nodes() {
            cap += n.gpu_capacity_milli();
            used += n.gpu_capacity_milli() - n.gpu_free_milli();
            partial += n.gpus.iter().filter(|g| g.used_milli > 0 && g.free_milli() > 0).count();
        }
        (used, cap, partial)
    }

    /// Gangs known to the scheduler (pending members), for the metrics.
    pub fn pending_gangs(&self) -> usize {
        self.unit_sizes.keys().filter(|u| matches!(u, UnitKey::Gang(_))).count()
    }

    pub fn gang_members_pending(&self) -> BTreeSet<String> {
        self.pending.values().filter_map(|p| p.info.gang.as_ref().map(|g| g.key.clone())).collect()
    }
}
