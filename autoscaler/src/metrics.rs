//! Prometheus metrics, under `mlsched_autoscaler_`.

use std::sync::atomic::AtomicU64;

use mlsched_edge::http::Exposition;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    /// `workload` (`namespace/name` of the HybridAutoscaler), `kind`: Vertical, Recreate, ScaleUp,
    /// ScaleDown, None, Recommend (mode Off), Invalid.
    pub decisions: Family<Labels, Counter>,
    /// `workload`, `source`: metrics, placement, kube.
    pub errors: Family<Labels, Counter>,
    pub desired_replicas: Family<Labels, Gauge>,
    /// Mean network cost of the last planned scale-out (Placement API `PlanReplicas`).
    pub network_cost: Family<Labels, Gauge<f64, AtomicU64>>,
    pub reconcile_duration: Histogram,
    pub is_leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn wl(workload: &str) -> Labels {
    vec![("workload".into(), workload.into())]
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let decisions = Family::<Labels, Counter>::default();
        registry.register("mlsched_autoscaler_decisions", "Decisions by workload and kind", decisions.clone());
        let errors = Family::<Labels, Counter>::default();
        registry.register("mlsched_autoscaler_errors", "Periods given up by workload and source", errors.clone());
        let desired_replicas = Family::<Labels, Gauge>::default();
        registry.register(
            "mlsched_autoscaler_desired_replicas",
            "Replicas by the horizontal formula",
            desired_replicas.clone(),
        );
        let network_cost = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "mlsched_autoscaler_planned_network_cost",
            "Mean network cost from the last planned new replicas to the existing pods",
            network_cost.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "mlsched_autoscaler_reconcile_duration_seconds",
            "Duration of one workload's period",
            reconcile_duration.clone(),
        );
        let is_leader = Gauge::default();
        registry.register("mlsched_autoscaler_leader", "1 while this instance holds the lease", is_leader.clone());
        Metrics { registry, decisions, errors, desired_replicas, network_cost, reconcile_duration, is_leader }
    }

    pub fn decision(&self, workload: &str, kind: &str) {
        let mut l = wl(workload);
        l.push(("kind".into(), kind.into()));
        self.decisions.get_or_create(&l).inc();
    }

    pub fn error(&self, workload: &str, source: &str) {
        let mut l = wl(workload);
        l.push(("source".into(), source.into()));
        self.errors.get_or_create(&l).inc();
    }

    pub fn set_desired(&self, workload: &str, replicas: u32) {
        self.desired_replicas.get_or_create(&wl(workload)).set(replicas as i64);
    }

    pub fn set_network_cost(&self, workload: &str, cost: f64) {
        self.network_cost.get_or_create(&wl(workload)).set(cost);
    }
}

impl Exposition for Metrics {
    fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let m = Metrics::new();
        m.decision("default/web", "ScaleUp");
        m.error("default/web", "placement");
        let t = m.encode();
        assert!(t.contains("mlsched_autoscaler_decisions_total{workload=\"default/web\",kind=\"ScaleUp\"} 1"), "{t}");
        assert!(t.contains("mlsched_autoscaler_errors_total{workload=\"default/web\",source=\"placement\"} 1"));
    }
}
