//! Prometheus metrics: kube-scheduler's names for the common ones, `mlsched_` for gangs and GPUs.

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
    /// `result`: scheduled, unschedulable, error.
    pub attempts: Family<Labels, Counter>,
    /// `queue`: active, backoff, binding (in units: a gang counts once).
    pub pending: Family<Labels, Gauge>,
    pub attempt_duration: Histogram,
    pub bind_duration: Histogram,
    pub binds: Family<Labels, Counter>,
    pub gangs_pending: Gauge,
    /// `result`: scheduled, timeout, bind_failed.
    pub gangs: Family<Labels, Counter>,
    /// Preemptions carried out, by `result`: evicted (every victim's eviction accepted), refused (one was
    /// refused, by a PodDisruptionBudget say, or not sent).
    pub preemptions: Family<Labels, Counter>,
    pub gpu_allocated_milli: Gauge,
    pub gpu_capacity_milli: Gauge,
    /// Share of allocated GPUs that are only partly used (0..1).
    pub gpu_fragmentation: Gauge<f64, AtomicU64>,
    pub is_leader: Gauge,
}

fn labels(key: &str, value: &str) -> Labels {
    vec![(key.to_string(), value.to_string())]
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let attempts = Family::<Labels, Counter>::default();
        registry.register("scheduler_schedule_attempts", "Scheduling attempts by result (pods)", attempts.clone());
        let pending = Family::<Labels, Gauge>::default();
        registry.register("scheduler_pending_pods", "Pending scheduling units by queue", pending.clone());
        let attempt_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Duration of one scheduling pass",
            attempt_duration.clone(),
        );
        let bind_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register("scheduler_binding_duration_seconds", "Duration of one bind call", bind_duration.clone());
        let binds = Family::<Labels, Counter>::default();
        registry.register("mlsched_binds", "Bind calls by result", binds.clone());
        let gangs_pending = Gauge::default();
        registry.register("mlsched_gangs_pending", "Gangs with pending members", gangs_pending.clone());
        let gangs = Family::<Labels, Counter>::default();
        registry.register("mlsched_gangs", "Gang outcomes by result", gangs.clone());
        let preemptions = Family::<Labels, Counter>::default();
        registry.register("mlsched_preemptions", "Preemptions by result (evicted, refused)", preemptions.clone());
        let gpu_allocated_milli = Gauge::default();
        registry.register(
            "mlsched_gpu_allocated_milli",
            "Milli-GPU allocated in the snapshot",
            gpu_allocated_milli.clone(),
        );
        let gpu_capacity_milli = Gauge::default();
        registry.register(
            "mlsched_gpu_capacity_milli",
            "Milli-GPU capacity of the known nodes",
            gpu_capacity_milli.clone(),
        );
        let gpu_fragmentation = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "mlsched_gpu_fragmentation_ratio",
            "Partly used GPUs over GPUs in use",
            gpu_fragmentation.clone(),
        );
        let is_leader = Gauge::default();
        registry.register(
            "mlsched_leader",
            "1 while this instance leads (has renewed the Lease within its renew deadline)",
            is_leader.clone(),
        );
        Metrics {
            registry,
            attempts,
            pending,
            attempt_duration,
            bind_duration,
            binds,
            gangs_pending,
            gangs,
            preemptions,
            gpu_allocated_milli,
            gpu_capacity_milli,
            gpu_fragmentation,
            is_leader,
        }
    }

    pub fn attempt(&self, result: &str, n: usize) {
        if n > 0 {
            self.attempts.get_or_create(&labels("result", result)).inc_by(n as u64);
        }
    }

    pub fn set_pending(&self, queue: &str, n: usize) {
        self.pending.get_or_create(&labels("queue", queue)).set(n as i64);
    }

    pub fn bind(&self, result: &str) {
        self.binds.get_or_create(&labels("result", result)).inc();
    }

    pub fn preemption(&self, result: &str) {
        self.preemptions.get_or_create(&labels("result", result)).inc();
    }

    pub fn gang(&self, result: &str) {
        self.gangs.get_or_create(&labels("result", result)).inc();
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
    fn names_follow_kube_scheduler() {
        let m = Metrics::new();
        m.attempt("scheduled", 2);
        m.set_pending("active", 3);
        m.attempt_duration.observe(0.01);
        let text = m.encode();
        assert!(text.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 2"), "{text}");
        assert!(text.contains("scheduler_pending_pods{queue=\"active\"} 3"));
        assert!(text.contains("scheduler_scheduling_attempt_duration_seconds_bucket"));
        assert!(text.contains("mlsched_gpu_fragmentation_ratio"));
    }
}
