//! `mlsim autoscale`: the analytic model's ordering, and the simulation's done-when (hybrid syncs less than
//! HPA and relieves overloads faster than VPA with recreate).

use std::sync::OnceLock;

use mlsim::autoscale::model::ModelParams;
use mlsim::autoscale::run::{Mode, ModeRun, RunConfig, run_all, summary_json};

#[test]
fn model_orders_vpa_hybrid_hpa() {
    let p = ModelParams::default();
    for n in 2..=6 {
        for r in [1.0, 10.0, 100.0, 1000.0] {
            let b = p.bandwidth(n, r);
            assert!(b.vpa <= b.hybrid && b.hybrid <= b.hpa, "N={n} R={r}: {b:?}");
            assert!(b.hybrid < b.hpa, "strictly below HPA once sync crosses tiers: N={n} R={r}");
        }
    }
    // One tier: new pods cannot land anywhere farther, so hybrid equals HPA.
    let one = p.bandwidth(1, 100.0);
    assert!((one.hybrid - one.hpa).abs() < 1e-9);
    // The hybrid sync term is flat in N; HPA's grows linearly.
    let flat = p.sync(1, 100.0).hybrid;
    for n in 1..=6 {
        assert!((p.sync(n, 100.0).hybrid - flat).abs() < 1e-12);
        assert!((p.sync(n, 100.0).hpa - f64::from(n) * flat).abs() < 1e-9);
    }
    // The sweeps cover what the figures plot.
    assert_eq!(p.tier_sweep().len(), 6);
    assert_eq!(p.request_sweep().len(), 11);
}

fn runs() -> &'static [ModeRun] {
    static RUNS: OnceLock<Vec<ModeRun>> = OnceLock::new();
    RUNS.get_or_init(|| run_all(&RunConfig::default()).expect("simulation runs"))
}

fn get(mode: Mode) -> &'static ModeRun {
    runs().iter().find(|r| r.mode == mode).expect("every mode ran")
}

#[test]
fn hybrid_syncs_less_than_horizontal_only() {
    let hpa = &get(Mode::HorizontalOnly).summary;
    for mode in [Mode::HybridInPlace, Mode::HybridRecreate] {
        let s = &get(mode).summary;
        assert!(
            s.sync_bandwidth < hpa.sync_bandwidth,
            "{}: {} vs HPA {}",
            mode.name(),
            s.sync_bandwidth,
            hpa.sync_bandwidth
        );
        assert!(s.sync_bandwidth_per_tier["core"] < hpa.sync_bandwidth_per_tier["core"], "{}", mode.name());
    }
    // Hybrid adds pods nearer to the existing ones than the default policy does.
    assert!(get(Mode::HybridInPlace).summary.mean_added_pod_hops < hpa.mean_added_pod_hops);
}

#[test]
fn hybrid_relieves_overloads_faster_than_vertical_recreate() {
    let vpa = &get(Mode::VerticalOnly).summary;
    assert!(vpa.overload_episodes > 0);
    for mode in [Mode::HybridInPlace, Mode::HybridRecreate] {
        let s = &get(mode).summary;
        assert!(
            s.mean_relief_seconds < vpa.mean_relief_seconds,
            "{}: {} vs VPA {}",
            mode.name(),
            s.mean_relief_seconds,
            vpa.mean_relief_seconds
        );
        assert!(s.overload_seconds < vpa.overload_seconds, "{}", mode.name());
    }
    // In place beats recreate: no capacity is lost while resizing.
    assert!(get(Mode::HybridInPlace).summary.overload_seconds < get(Mode::HybridRecreate).summary.overload_seconds);
    assert_eq!(get(Mode::HybridInPlace).summary.restarts, 0);
    assert_eq!(get(Mode::VerticalOnly).summary.pods_added, 0);
    assert_eq!(get(Mode::HorizontalOnly).summary.vertical_actions, 0);
}

#[test]
fn summary_json_has_the_four_modes_and_fields() {
    let json = summary_json(runs());
    let object = json.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["horizontal-only", "hybrid-inplace", "hybrid-recreate", "vertical-only"]);
    for (mode, summary) in object {
        for field in [
            "sync_bandwidth",
            "overload_seconds",
            "mean_relief_seconds",
            "cpu_core_seconds_reserved",
            "replica_seconds",
        ] {
            assert!(summary[field].as_f64().is_some_and(f64::is_finite), "{mode}.{field}: {}", summary[field]);
        }
        let tiers = summary["sync_bandwidth_per_tier"].as_object().expect("per-tier object");
        assert_eq!(tiers.len(), 3, "{mode}");
        let total: f64 = tiers.values().filter_map(|v| v.as_f64()).sum();
        assert!((total - summary["sync_bandwidth"].as_f64().unwrap()).abs() < 1e-6, "{mode}: tiers add up");
    }
}

#[test]
fn runs_are_deterministic_for_a_seed() {
    let cfg = RunConfig { duration_s: 3.0 * 3600.0, workloads: 4, ..RunConfig::default() };
    let a = summary_json(&run_all(&cfg).unwrap());
    let b = summary_json(&run_all(&cfg).unwrap());
    assert_eq!(a, b);
}
