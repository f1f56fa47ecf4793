//! `mlsim autoscale run`: workloads under a seeded load curve on a generated tree, scaled by four
//! controllers, with every placement made by the scheduling core (`schedule_one` + `assume`) and every
//! sync stream measured in switch hops on the real topology.
//!
//! **Cluster.** `nodes` nodes of `node_cpu_milli` CPU, `nodes_per_rack` per rack, `racks_per_spine` per
//! spine, labelled `network.mlsched.io/spine`, `network.mlsched.io/rack`, `kubernetes.io/hostname`, with
//! hashed names (the name tie-break does not follow racks). Tiers: `rack` = node↔ToR links, `spine` =
//! ToR↔spine links, `core` = spine↔core links.
//!
//! **Setup (identical for every mode).** Each workload's `min_replicas` pods are placed first by
//! kube-scheduler's default scoring (`cluster.rs`), then background pods fill every node: with probability `full_fraction` a node is left
//! with 0–600 m free (no room to grow), otherwise with 30–70% of its CPU free.
//!
//! **Serving.** Demand is routed to ready pods in proportion to their CPU request (limit = request), so
//! a workload is *overloaded* while demand exceeds the requests of its ready pods.
//!
//! **Sync model.** Replica 0 (the oldest) is the primary; every other ready replica streams state with it
//! at `sync_mb_s` MB/s, and a pod that starts (new, or recreated: its memory is lost) first copies
//! `state_mb` MB from the nearest ready replica. A stream between nodes `h` hops apart loads `h` links,
//! two in each of the `h/2` lowest tiers; traffic within a node loads none. Reported as the mean link
//! load in MB/s (link-MB per second), in total and per tier.
//!
//! **Modes.** Every mode runs the sidecar's own decision ([`mlsched_autoscale::decide`], see
//! `controller.rs`) with the sidecar's defaults, restricted as the mode says. `hybrid-inplace`: vertical by
//! in-place resize while the pods' nodes have room, else new pods placed by mlsched's scheduler profile
//! near the existing ones; `hybrid-recreate`: the same with in-place resize unavailable and recreate
//! allowed (one pod at a time, `restart_delay_s` without its capacity); `horizontal-only` (HPA's rule) and
//! `vertical-only` (VPA Recreate, which never grows a pod past its node's room), with their pods placed by
//! kube-scheduler's default scoring, as HPA or VPA beside kube-scheduler would have them.

use std::collections::BTreeMap;

use mlsched::core::{GpuRequest, NodeId, Pod, Resources, Snapshot};
use mlsched::topology::Topology;
use mlsched_autoscale::{Bounds, Mode as Scaling, Policy};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::cluster::{LEVELS, Placer, Scheduler, build_nodes};
use super::controller::Ctx;
use super::load::{LoadCurve, curves};
use super::workload::{Replica, Workload};

pub const TIERS: [&str; 3] = ["rack", "spine", "core"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Mode {
    HybridInPlace,
    HybridRecreate,
    HorizontalOnly,
    VerticalOnly,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::HybridInPlace, Mode::HybridRecreate, Mode::HorizontalOnly, Mode::VerticalOnly];

    pub fn name(self) -> &'static str {
        match self {
            Mode::HybridInPlace => "hybrid-inplace",
            Mode::HybridRecreate => "hybrid-recreate",
            Mode::HorizontalOnly => "horizontal-only",
            Mode::VerticalOnly => "vertical-only",
        }
    }

    /// The sidecar's default policy for a workload of 2–16 replicas whose pods may grow from 250 m to 6
    /// cores, restricted to the mode's kinds of scaling.
    pub fn policy(self) -> Policy {
        let (mode, allow_recreate) = match self {
            Mode::HybridInPlace => (Scaling::Hybrid, false),
            Mode::HybridRecreate => (Scaling::Hybrid, true),
            Mode::HorizontalOnly => (Scaling::HorizontalOnly, false),
            Mode::VerticalOnly => (Scaling::VerticalOnly, true),
        };
        let bounds = Bounds { min_cpu: Some(250), max_cpu: Some(6000), ..Bounds::default() };
        Policy {
            min_replicas: 2,
            max_replicas: 16,
            mode,
            allow_recreate,
            bounds: BTreeMap::from([("*".to_string(), bounds)]),
            ..Policy::default()
        }
    }

    /// Whether pods can be resized in place (else the vertical path recreates them).
    fn in_place(self) -> bool {
        self == Mode::HybridInPlace
    }

    fn scheduler(self) -> Scheduler {
        match self {
            Mode::HybridInPlace | Mode::HybridRecreate => Scheduler::Mlsched,
            Mode::HorizontalOnly | Mode::VerticalOnly => Scheduler::KubeDefault,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub seed: u64,
    pub nodes: usize,
    pub nodes_per_rack: usize,
    pub racks_per_spine: usize,
    pub node_cpu_milli: i64,
    pub node_memory_gib: i64,
    pub full_fraction: f64,
    pub workloads: usize,
    pub duration_s: f64,
    pub step_s: f64,
    pub sync_period_s: f64,
    pub start_delay_s: f64,
    pub restart_delay_s: f64,
    pub sync_mb_s: f64,
    pub state_mb: f64,
    pub pod_memory_gib: i64,
    /// The pod template's CPU request, millicores.
    pub pod_cpu_milli: i64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 42,
            nodes: 64,
            nodes_per_rack: 8,
            racks_per_spine: 4,
            node_cpu_milli: 16_000,
            node_memory_gib: 64,
            full_fraction: 0.5,
            workloads: 16,
            duration_s: super::load::DAY_S,
            step_s: 5.0,
            sync_period_s: mlsched_autoscale::DEFAULT_PERIOD_S,
            start_delay_s: 30.0,
            restart_delay_s: 30.0,
            sync_mb_s: 1.0,
            state_mb: 512.0,
            pod_memory_gib: 1,
            pod_cpu_milli: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeSummary {
    /// Mean sync link load, MB/s (Σ over links), all tiers.
    pub sync_bandwidth: f64,
    /// The same per tier: `rack`, `spine`, `core`.
    pub sync_bandwidth_per_tier: BTreeMap<String, f64>,
    /// Link-GB of state sync over the run.
    pub sync_link_gb: f64,
    /// Mean switch hops between a follower and its primary, time-weighted.
    pub mean_sync_hops: f64,
    /// Workload-seconds with demand above the ready pods' requests.
    pub overload_seconds: f64,
    pub overload_episodes: usize,
    /// Mean length of an overload episode (from onset until demand fits again).
    pub mean_relief_seconds: f64,
    pub max_relief_seconds: f64,
    pub replica_seconds: f64,
    pub cpu_core_seconds_reserved: f64,
    pub peak_replicas: usize,
    pub vertical_actions: usize,
    pub pods_added: usize,
    pub pods_removed: usize,
    pub restarts: usize,
    pub unschedulable: usize,
    /// Mean switch hops from each added pod to the nearest pod the workload already had.
    pub mean_added_pod_hops: f64,
    /// The decisions by kind (`None`, `Vertical`, `Recreate`, `ScaleUp`, `ScaleDown`), over all periods.
    pub decisions: BTreeMap<String, usize>,
}

/// Cluster totals sampled every minute, for the plots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    pub t_s: Vec<f64>,
    pub replicas: Vec<usize>,
    pub cpu_cores: Vec<f64>,
    pub demand_cores: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct ModeRun {
    pub mode: Mode,
    pub summary: ModeSummary,
    pub series: Series,
}

/// The cluster after setup: nodes, topology, the initial pods of every workload (identical in all modes).
fn setup(cfg: &RunConfig) -> anyhow::Result<(Snapshot, Topology, Vec<Workload>)> {
    let nodes = build_nodes(cfg);
    let topology = Topology::from_labels(&LEVELS, &nodes)?;
    let mut snapshot = Snapshot::new(nodes)?;
    let min_replicas = Mode::HybridInPlace.policy().min_replicas;
    let mut placer = Placer::new(Scheduler::KubeDefault)?;
    let mut workloads = Vec::new();
    for w in 0..cfg.workloads {
        let mut wl = Workload::new(format!("w{w:02}"), cfg.pod_cpu_milli, cfg.pod_memory_gib);
        for _ in 0..min_replicas {
            let (key, seq) = wl.next_pod();
            let node = placer.place(&mut snapshot, wl.pod(&key, cfg.pod_cpu_milli), Vec::new(), true);
            anyhow::ensure!(node.is_some(), "initial pod {key} does not fit the empty cluster");
            wl.replicas.push(Replica {
                key,
                node,
                cpu_milli: cfg.pod_cpu_milli,
                ready_at: 0.0,
                needs_state: false,
                seq,
            });
        }
        wl.spec_replicas = min_replicas;
        workloads.push(wl);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xB6_u64);
    for id in 0..cfg.nodes {
        let node = &snapshot.nodes()[id];
        let free = node.free_cpu_milli();
        let leave = if rng.random_range(0.0..1.0) < cfg.full_fraction {
            rng.random_range(0..=6) * 100
        } else {
            (node.allocatable.cpu_milli as f64 * rng.random_range(0.3..0.7) / 100.0).round() as i64 * 100
        };
        let take = free - leave;
        if take > 0 {
            let memory = node.free_memory_bytes() / 2;
            let bg = Pod::new(format!("bg/{id}"), Resources::new(take, memory, 1), GpuRequest::default());
            snapshot.assume(&bg, id, &[])?;
        }
    }
    Ok((snapshot, topology, workloads))
}

/// What a run adds up as it goes.
#[derive(Default)]
pub struct Acc {
    link_mb: [f64; 3],
    follower_hop_seconds: f64,
    follower_seconds: f64,
    overload_seconds: f64,
    episodes: Vec<f64>,
    replica_seconds: f64,
    cpu_milli_seconds: f64,
    peak_replicas: usize,
    pub vertical_actions: usize,
    pub pods_added: usize,
    pub pods_removed: usize,
    pub restarts: usize,
    pub unschedulable: usize,
    pub added_hops: f64,
    pub decisions: BTreeMap<String, usize>,
}

impl Acc {
    fn traffic(&mut self, hops: u32, mb: f64) {
        for tier in 0..(hops as usize / 2).min(3) {
            self.link_mb[tier] += 2.0 * mb;
        }
    }
}

/// CPU reserved on nodes by the workloads' placed pods, millicores.
fn reserved_milli(workloads: &[Workload]) -> f64 {
    workloads.iter().flat_map(|wl| &wl.replicas).filter(|r| r.node.is_some()).map(|r| r.cpu_milli as f64).sum()
}

/// One step of serving: pods that become ready copy state, demand meets the ready pods' requests, followers
/// sync with the primary. Returns the ready pods' utilization (at most 1: limit = request).
fn serve(cfg: &RunConfig, topology: &Topology, wl: &mut Workload, t: f64, demand: f64, acc: &mut Acc) -> f64 {
    let hops = |a: NodeId, b: NodeId| topology.hops(a, b).unwrap_or(6);
    for i in 0..wl.replicas.len() {
        let r = &wl.replicas[i];
        let (Some(node), true) = (r.node, r.ready(t) && r.needs_state) else { continue };
        let nearest = wl
            .replicas
            .iter()
            .enumerate()
            .filter(|&(j, o)| j != i && o.ready(t) && !o.needs_state)
            .filter_map(|(_, o)| Some(hops(node, o.node?)))
            .min();
        if let Some(h) = nearest {
            acc.traffic(h, cfg.state_mb);
        }
        wl.replicas[i].needs_state = false;
    }
    let capacity = wl.capacity_milli(t);
    if demand > capacity as f64 {
        acc.overload_seconds += cfg.step_s;
        wl.overload_since.get_or_insert(t);
    } else if let Some(since) = wl.overload_since.take() {
        acc.episodes.push(t - since);
    }
    acc.replica_seconds += wl.replicas.len() as f64 * cfg.step_s;
    let placed = wl.replicas.iter().filter(|r| r.node.is_some());
    acc.cpu_milli_seconds += placed.map(|r| r.cpu_milli as f64).sum::<f64>() * cfg.step_s;
    if let Some(primary) = wl.replicas.first().filter(|r| r.ready(t)).and_then(|r| r.node) {
        for r in wl.replicas[1..].iter().filter(|r| r.ready(t)) {
            let h = hops(primary, r.node.expect("a ready pod has a node"));
            acc.traffic(h, cfg.sync_mb_s * cfg.step_s);
            acc.follower_hop_seconds += f64::from(h) * cfg.step_s;
            acc.follower_seconds += cfg.step_s;
        }
    }
    if capacity > 0 { (demand / capacity as f64).min(1.0) } else { 0.0 }
}

pub fn run_mode(cfg: &RunConfig, mode: Mode, load: &[LoadCurve]) -> anyhow::Result<ModeRun> {
    let (mut snapshot, topology, mut workloads) = setup(cfg)?;
    let policy = mode.policy();
    let mut placer = Placer::new(mode.scheduler())?;
    let mut acc = Acc::default();
    let mut series = Series::default();
    let steps = (cfg.duration_s / cfg.step_s).ceil() as usize;
    let sync_every = (cfg.sync_period_s / cfg.step_s).round().max(1.0) as usize;
    let sample_every = (60.0 / cfg.step_s).round().max(1.0) as usize;
    for k in 0..steps {
        let t = k as f64 * cfg.step_s;
        let mut total_demand = 0.0;
        for (w, wl) in workloads.iter_mut().enumerate() {
            let demand = load[w].demand[k.min(load[w].demand.len() - 1)];
            total_demand += demand;
            let utilization = serve(cfg, &topology, wl, t, demand, &mut acc);
            let mut ctx = Ctx {
                cfg,
                policy: &policy,
                in_place: mode.in_place(),
                topology: &topology,
                snapshot: &mut snapshot,
                placer: &mut placer,
                acc: &mut acc,
            };
            if k % sync_every == 0 && k > 0 {
                ctx.period(wl, t, utilization);
            }
            ctx.between_periods(wl, t);
        }
        let replicas: usize = workloads.iter().map(|wl| wl.replicas.len()).sum();
        acc.peak_replicas = acc.peak_replicas.max(replicas);
        if k % sample_every == 0 {
            series.t_s.push(t);
            series.replicas.push(replicas);
            series.cpu_cores.push(reserved_milli(&workloads) / 1000.0);
            series.demand_cores.push(total_demand / 1000.0);
        }
    }
    for wl in &workloads {
        if let Some(since) = wl.overload_since {
            acc.episodes.push(cfg.duration_s - since);
        }
    }
    let duration = steps as f64 * cfg.step_s;
    let per_tier: BTreeMap<String, f64> =
        TIERS.iter().zip(acc.link_mb).map(|(name, mb)| (name.to_string(), mb / duration)).collect();
    let total_mb: f64 = acc.link_mb.iter().sum();
    let episodes = acc.episodes.len();
    let summary = ModeSummary {
        sync_bandwidth: total_mb / duration,
        sync_bandwidth_per_tier: per_tier,
        sync_link_gb: total_mb / 1000.0,
        mean_sync_hops: if acc.follower_seconds > 0.0 { acc.follower_hop_seconds / acc.follower_seconds } else { 0.0 },
        overload_seconds: acc.overload_seconds,
        overload_episodes: episodes,
        mean_relief_seconds: if episodes > 0 { acc.episodes.iter().sum::<f64>() / episodes as f64 } else { 0.0 },
        max_relief_seconds: acc.episodes.iter().copied().fold(0.0, f64::max),
        replica_seconds: acc.replica_seconds,
        cpu_core_seconds_reserved: acc.cpu_milli_seconds / 1000.0,
        peak_replicas: acc.peak_replicas,
        vertical_actions: acc.vertical_actions,
        pods_added: acc.pods_added,
        pods_removed: acc.pods_removed,
        restarts: acc.restarts,
        unschedulable: acc.unschedulable,
        mean_added_pod_hops: if acc.pods_added > 0 { acc.added_hops / acc.pods_added as f64 } else { 0.0 },
        decisions: acc.decisions,
    };
    Ok(ModeRun { mode, summary, series })
}

/// All four modes on the same cluster and load, in parallel.
pub fn run_all(cfg: &RunConfig) -> anyhow::Result<Vec<ModeRun>> {
    let load = curves(cfg.seed, cfg.workloads, cfg.duration_s, cfg.step_s);
    Mode::ALL.par_iter().map(|&mode| run_mode(cfg, mode, &load)).collect()
}

/// `summary.json`: the four modes by name.
pub fn summary_json(runs: &[ModeRun]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = runs
        .iter()
        .map(|r| (r.mode.name().to_string(), serde_json::to_value(&r.summary).expect("summary serializes")))
        .collect();
    serde_json::Value::Object(map)
}

pub fn markdown(runs: &[ModeRun]) -> String {
    let mut out = String::from(
        "| mode | sync MB/s (rack / spine / core) | mean sync hops | overload s | episodes | mean relief s | max relief s | replica-h | CPU core-h reserved | decisions: in place / recreate / scale-up / scale-down | pods added / removed / restarted | added-pod hops |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let s = &r.summary;
        let tier = |n: &str| s.sync_bandwidth_per_tier.get(n).copied().unwrap_or(0.0);
        let decided = |kind: &str| s.decisions.get(kind).copied().unwrap_or(0);
        out.push_str(&format!(
            "| {} | {:.1} ({:.1} / {:.1} / {:.1}) | {:.2} | {:.0} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {} / {} / {} / {} | {} / {} / {} | {:.2} |\n",
            r.mode.name(),
            s.sync_bandwidth,
            tier("rack"),
            tier("spine"),
            tier("core"),
            s.mean_sync_hops,
            s.overload_seconds,
            s.overload_episodes,
            s.mean_relief_seconds,
            s.max_relief_seconds,
            s.replica_seconds / 3600.0,
            s.cpu_core_seconds_reserved / 3600.0,
            decided("Vertical"),
            decided("Recreate"),
            decided("ScaleUp"),
            decided("ScaleDown"),
            s.pods_added,
            s.pods_removed,
            s.restarts,
            s.mean_added_pod_hops
        ));
    }
    out
}
