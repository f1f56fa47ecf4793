//! `mlsim autoscale`: the analytic model's ordering, and the simulation's done-when (hybrid syncs less than
//! HPA and relieves overloads faster than VPA with recreate), and that a period of the simulator is the
//! sidecar's own decision on what the sidecar would observe, applied.

use std::sync::OnceLock;

use mlsched::core::{GpuRequest, Pod, Resources, Snapshot};
use mlsched::topology::Topology;
use mlsched_autoscale::{Action, Decision, Input, decide};
use mlsim::autoscale::cluster::{LEVELS, Placer, Scheduler, build_nodes};
use mlsim::autoscale::controller::Ctx;
use mlsim::autoscale::model::ModelParams;
use mlsim::autoscale::run::{Acc, Mode, ModeRun, RunConfig, run_all, summary_json};
use mlsim::autoscale::workload::{Replica, Workload};

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

/// A small cluster with one workload of two 1000 m pods on one node, and `free_milli` left on every node.
fn one_workload(free_milli: i64) -> (RunConfig, Snapshot, Topology, Workload) {
    let cfg = RunConfig { nodes: 16, workloads: 1, ..RunConfig::default() };
    let nodes = build_nodes(&cfg);
    let topology = Topology::from_labels(&LEVELS, &nodes).unwrap();
    let mut snapshot = Snapshot::new(nodes).unwrap();
    let mut wl = Workload::new("w00".into(), cfg.pod_cpu_milli, cfg.pod_memory_gib);
    for _ in 0..2 {
        let (key, seq) = wl.next_pod();
        snapshot.assume(&wl.pod(&key, 1000), 0, &[]).unwrap();
        wl.replicas.push(Replica { key, node: Some(0), cpu_milli: 1000, ready_at: 0.0, needs_state: false, seq });
    }
    wl.spec_replicas = 2;
    for id in 0..cfg.nodes {
        let node = &snapshot.nodes()[id];
        let bg = Pod::new(
            format!("bg/{id}"),
            Resources::new(node.free_cpu_milli() - free_milli, node.free_memory_bytes() / 2, 1),
            GpuRequest::default(),
        );
        snapshot.assume(&bg, id, &[]).unwrap();
    }
    (cfg, snapshot, topology, wl)
}

/// One period of the simulator on `wl`, and the decision `mlsched_autoscale::decide` takes on the same
/// observation, called directly as the sidecar calls it.
fn period_and_direct(
    mode: Mode,
    cfg: &RunConfig,
    snapshot: &mut Snapshot,
    topology: &Topology,
    wl: &mut Workload,
) -> (Decision, Decision, Acc) {
    let policy = mode.policy();
    let mut twin = Workload::new(wl.name.clone(), wl.template_milli, cfg.pod_memory_gib);
    twin.replicas = wl.replicas.clone();
    twin.spec_replicas = wl.spec_replicas;
    let obs = twin.observe(snapshot, 15.0, 1.0, mlsched_autoscale::DEFAULT_HISTORY_S, true);
    let direct = decide(&Input {
        policy: &policy,
        now: 15.0,
        replicas: twin.spec_replicas,
        pods: &obs.pods,
        baseline: &obs.baseline,
        headroom: &obs.headroom,
        in_place_available: mode == Mode::HybridInPlace,
        history: &[],
        limit_base: twin.spec_replicas,
        rollout_in_progress: false,
        last_grow_at: None,
    });
    let mut placer = Placer::new(Scheduler::Mlsched).unwrap();
    let mut acc = Acc::default();
    let mut ctx = Ctx {
        cfg,
        policy: &policy,
        in_place: mode == Mode::HybridInPlace,
        topology,
        snapshot,
        placer: &mut placer,
        acc: &mut acc,
    };
    let simulated = ctx.period(wl, 15.0, 1.0);
    (simulated, direct, acc)
}

#[test]
fn the_simulator_runs_the_sidecars_decision_and_applies_its_resize() {
    let (cfg, mut snapshot, topology, mut wl) = one_workload(4000);
    let (simulated, direct, acc) = period_and_direct(Mode::HybridInPlace, &cfg, &mut snapshot, &topology, &mut wl);
    assert_eq!(simulated, direct);
    // Fully used 1000 m pods grow to usage / target = 1000 / 0.7, in place, on their node.
    let Action::Resize { pods, grow: true } = &simulated.action else { panic!("{simulated:?}") };
    assert_eq!(pods.len(), 2);
    for r in pods {
        assert_eq!(r.containers[0].request.cpu, 1429);
        let replica = wl.replicas.iter().find(|p| p.key == r.pod).unwrap();
        assert_eq!(replica.cpu_milli, 1429);
        assert_eq!(snapshot.placement(&r.pod).unwrap().requests.cpu_milli, 1429);
    }
    assert_eq!(snapshot.nodes()[0].free_cpu_milli(), 4000 - 2 * 429);
    assert_eq!(acc.decisions.get("Vertical"), Some(&1));
}

#[test]
fn without_room_the_simulator_scales_out_near_the_workload_with_the_shipped_scheduler_profile() {
    // 800 m free everywhere: the growth (+858 m on node 0) does not fit, a new 1000 m pod does not either,
    // so make room for exactly the new pods under the workload's rack and far away.
    let (cfg, mut snapshot, topology, mut wl) = one_workload(800);
    for far in [1, 9, 15] {
        let bg = format!("bg/{far}");
        let old = snapshot.forget(&bg).unwrap();
        let smaller = Pod::new(
            &bg,
            Resources::new(old.requests.cpu_milli - 2000, old.requests.memory_bytes, 1),
            GpuRequest::default(),
        );
        snapshot.assume(&smaller, far, &[]).unwrap();
    }
    let (simulated, direct, acc) = period_and_direct(Mode::HybridInPlace, &cfg, &mut snapshot, &topology, &mut wl);
    assert_eq!(simulated, direct);
    assert!(matches!(simulated.action, Action::Scale { from: 2, to: 3 }), "{simulated:?}");
    assert_eq!(wl.replicas.len(), 3);
    let added = wl.replicas[2].node.expect("the new pod is placed");
    // Node 1 shares node 0's rack (8 per rack); nodes 9 and 15 do not.
    assert_eq!(added, 1, "placed by NetworkProximityScore next to the workload");
    assert_eq!(topology.hops(0, added), Some(2));
    assert_eq!(acc.pods_added, 1);
}
