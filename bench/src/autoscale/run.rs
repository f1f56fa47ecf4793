//! `mlsim autoscale run`: workloads under a seeded load curve on a generated tree, scaled by four
//! controllers, with every placement made by the scheduling core (`schedule_one` + `assume`) and every
//! sync stream measured in switch hops on the real topology.
//!
//! **Cluster.** `nodes` nodes of `node_cpu_milli` CPU, `nodes_per_rack` per rack, `racks_per_spine` per
//! spine, labelled `network.mlsched.io/spine`, `network.mlsched.io/rack`, `kubernetes.io/hostname`, with
//! hashed names (the name tie-break does not follow racks). Tiers: `rack` = node↔ToR links, `spine` =
//! ToR↔spine links, `core` = spine↔core links.
//!
//! **Setup (identical for every mode).** Each workload's `min_replicas` pods are placed first by the
//! default policy, then background pods fill every node: with probability `full_fraction` a node is left
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
//! **Modes.** `hybrid-inplace`: vertical in place while the pods' nodes have room, else new pods placed
//! nearest (fewest summed hops) to the existing ones; `hybrid-recreate`: the same, but a vertical change
//! restarts the pod (one at a time, `restart_delay_s` without its capacity); `horizontal-only`: HPA, new
//! pods placed by the default policy; `vertical-only`: VPA Recreate, capped by the node's free CPU. The
//! decision is [`super::decide::decide`] every `sync_period_s`. The default policy is kube-scheduler's
//! default NodeResourcesFit scoring, LeastAllocated (CPU and memory weight 1), with the core's filters;
//! kube's other default scorers (BalancedAllocation, soft PodTopologySpread, ImageLocality) are left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlsched::core::{GpuRequest, MIB, Node, NodeId, Pod, Resources, Snapshot};
use mlsched::framework::{Profile, ScorePlugin, schedule_one};
use mlsched::plugins::policy::default_filters;
use mlsched::topology::{HOSTNAME_LABEL, Topology};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::decide::{Decision, Inputs, PodView, Policy, Scaling, decide, recommendation};
use super::load::{LoadCurve, curves};
use crate::jobs::cluster::{RACK_LABEL, SPINE_LABEL};

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

    pub fn policy(self) -> Policy {
        match self {
            Mode::HybridInPlace => Policy::new(Scaling::Hybrid, false),
            Mode::HybridRecreate => Policy::new(Scaling::Hybrid, true),
            Mode::HorizontalOnly => Policy::new(Scaling::HorizontalOnly, false),
            Mode::VerticalOnly => Policy::new(Scaling::VerticalOnly, true),
        }
    }

    fn places_near(self) -> bool {
        matches!(self, Mode::HybridInPlace | Mode::HybridRecreate)
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
            sync_period_s: 15.0,
            start_delay_s: 30.0,
            restart_delay_s: 30.0,
            sync_mb_s: 1.0,
            state_mb: 512.0,
            pod_memory_gib: 1,
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

/// kube-scheduler's default NodeResourcesFit score: LeastAllocated, CPU and memory weight 1, 0..100.
pub struct LeastAllocated;

impl ScorePlugin for LeastAllocated {
    fn name(&self) -> &'static str {
        "LeastAllocated"
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        let n = &snapshot.nodes()[node];
        let frac =
            |free: i64, want: i64, cap: i64| if cap <= 0 { 0.0 } else { (free - want).max(0) as f64 / cap as f64 };
        let cpu = frac(n.free_cpu_milli(), pod.requests.cpu_milli, n.allocatable.cpu_milli);
        let mem = frac(n.free_memory_bytes(), pod.requests.memory_bytes, n.allocatable.memory_bytes);
        ((cpu + mem) * 50.0).round() as i64
    }
}

/// The hybrid placement: fewest switch hops summed over the nodes of the workload's pods.
pub struct NearReplicas {
    pub topology: Arc<Topology>,
    pub replica_nodes: Vec<NodeId>,
}

impl ScorePlugin for NearReplicas {
    fn name(&self) -> &'static str {
        "NearReplicas"
    }

    fn score(&self, _snapshot: &Snapshot, _pod: &Pod, node: NodeId) -> i64 {
        -self.replica_nodes.iter().map(|&r| i64::from(self.topology.hops(node, r).unwrap_or(u32::MAX / 4))).sum::<i64>()
    }
}

fn default_profile() -> Profile {
    default_filters(Profile::new("default")).score(LeastAllocated, 1)
}

fn near_profile(topology: &Arc<Topology>, replica_nodes: Vec<NodeId>) -> Profile {
    default_filters(Profile::new("hybrid-near"))
        .score(NearReplicas { topology: topology.clone(), replica_nodes }, 1000)
        .score(LeastAllocated, 1)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn build_nodes(cfg: &RunConfig) -> Vec<Node> {
    (0..cfg.nodes)
        .map(|i| {
            let rack = i / cfg.nodes_per_rack;
            let spine = rack / cfg.racks_per_spine;
            let name = format!("n{:016x}", splitmix64(i as u64));
            Node::new(name.clone(), Resources::new(cfg.node_cpu_milli, cfg.node_memory_gib * 1024 * MIB, 110))
                .with_label(SPINE_LABEL, format!("s{spine}"))
                .with_label(RACK_LABEL, format!("s{spine}-r{rack}"))
                .with_label(HOSTNAME_LABEL, name)
        })
        .collect()
}

struct Replica {
    key: String,
    node: NodeId,
    request: i64,
    ready_at: f64,
    restarting: bool,
    needs_state: bool,
}

struct Workload {
    replicas: Vec<Replica>,
    history: Vec<(f64, i64)>,
    replica_log: Vec<(f64, usize)>,
    overload_since: Option<f64>,
    next_id: usize,
}

fn pod(cfg: &RunConfig, key: &str, cpu: i64) -> Pod {
    Pod::new(key, Resources::new(cpu, cfg.pod_memory_gib * 1024 * MIB, 1), GpuRequest::default())
}

/// The cluster after setup: nodes, topology, the initial pods of every workload (identical in all modes).
fn setup(cfg: &RunConfig) -> anyhow::Result<(Snapshot, Arc<Topology>, Vec<Workload>)> {
    let nodes = build_nodes(cfg);
    let topology = Arc::new(Topology::from_labels(&[SPINE_LABEL, RACK_LABEL, HOSTNAME_LABEL], &nodes)?);
    let mut snapshot = Snapshot::new(nodes)?;
    let policy = Mode::HybridInPlace.policy();
    let profile = default_profile();
    let mut workloads = Vec::new();
    for w in 0..cfg.workloads {
        let mut replicas = Vec::new();
        for i in 0..policy.min_replicas {
            let key = format!("w{w:02}/p{i}");
            let p = pod(cfg, &key, policy.template_cpu_milli);
            let d = schedule_one(&profile, &snapshot, &p).map_err(|e| anyhow::anyhow!("initial pod {key}: {e}"))?;
            snapshot.assume(&p, d.node, &[])?;
            replicas.push(Replica {
                key,
                node: d.node,
                request: p.requests.cpu_milli,
                ready_at: 0.0,
                restarting: false,
                needs_state: false,
            });
        }
        workloads.push(Workload {
            next_id: replicas.len(),
            replicas,
            history: Vec::new(),
            replica_log: vec![(0.0, policy.min_replicas)],
            overload_since: None,
        });
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

#[derive(Default)]
struct Acc {
    link_mb: [f64; 3],
    follower_hop_seconds: f64,
    follower_seconds: f64,
    overload_seconds: f64,
    episodes: Vec<f64>,
    replica_seconds: f64,
    cpu_milli_seconds: f64,
    peak_replicas: usize,
    vertical_actions: usize,
    pods_added: usize,
    pods_removed: usize,
    restarts: usize,
    unschedulable: usize,
    added_hops: f64,
}

impl Acc {
    fn traffic(&mut self, hops: u32, mb: f64) {
        for tier in 0..(hops as usize / 2).min(3) {
            self.link_mb[tier] += 2.0 * mb;
        }
    }
}

pub fn run_mode(cfg: &RunConfig, mode: Mode, load: &[LoadCurve]) -> anyhow::Result<ModeRun> {
    let (mut snapshot, topology, mut workloads) = setup(cfg)?;
    let policy = mode.policy();
    let mut acc = Acc::default();
    let mut series = Series::default();
    let steps = (cfg.duration_s / cfg.step_s).ceil() as usize;
    let sync_every = (cfg.sync_period_s / cfg.step_s).round().max(1.0) as usize;
    let sample_every = (60.0 / cfg.step_s).round().max(1.0) as usize;
    let hops = |a: NodeId, b: NodeId| topology.hops(a, b).unwrap_or(6);
    for k in 0..steps {
        let t = k as f64 * cfg.step_s;
        let mut total_demand = 0.0;
        for (w, wl) in workloads.iter_mut().enumerate() {
            // Pods that become ready now: restarts end, new pods copy state from the nearest ready replica.
            for i in 0..wl.replicas.len() {
                if wl.replicas[i].ready_at <= t && wl.replicas[i].needs_state {
                    let node = wl.replicas[i].node;
                    let nearest = wl
                        .replicas
                        .iter()
                        .enumerate()
                        .filter(|&(j, r)| j != i && r.ready_at <= t && !r.needs_state)
                        .map(|(_, r)| hops(node, r.node))
                        .min();
                    if let Some(h) = nearest {
                        acc.traffic(h, cfg.state_mb);
                    }
                    wl.replicas[i].needs_state = false;
                    wl.replicas[i].restarting = false;
                }
            }
            let ready = |r: &Replica| r.ready_at <= t;
            let capacity: i64 = wl.replicas.iter().filter(|r| ready(r)).map(|r| r.request).sum();
            let demand = load[w].demand[k.min(load[w].demand.len() - 1)];
            total_demand += demand;
            let overloaded = demand > capacity as f64;
            if overloaded {
                acc.overload_seconds += cfg.step_s;
                wl.overload_since.get_or_insert(t);
            } else if let Some(since) = wl.overload_since.take() {
                acc.episodes.push(t - since);
            }
            acc.replica_seconds += wl.replicas.len() as f64 * cfg.step_s;
            acc.cpu_milli_seconds += wl.replicas.iter().map(|r| r.request as f64).sum::<f64>() * cfg.step_s;
            // Steady sync: followers with the primary.
            if let Some(primary) = wl.replicas.first().filter(|r| ready(r)) {
                for r in wl.replicas[1..].iter().filter(|r| ready(r)) {
                    let h = hops(primary.node, r.node);
                    acc.traffic(h, cfg.sync_mb_s * cfg.step_s);
                    acc.follower_hop_seconds += f64::from(h) * cfg.step_s;
                    acc.follower_seconds += cfg.step_s;
                }
            }
            if k % sync_every == 0 && k > 0 {
                let utilization = if capacity > 0 { (demand / capacity as f64).min(1.0) } else { 0.0 };
                control(cfg, mode, &policy, &topology, &mut snapshot, wl, t, utilization, &mut acc);
            }
        }
        let replicas: usize = workloads.iter().map(|wl| wl.replicas.len()).sum();
        acc.peak_replicas = acc.peak_replicas.max(replicas);
        if k % sample_every == 0 {
            series.t_s.push(t);
            series.replicas.push(replicas);
            series.cpu_cores.push(
                workloads.iter().flat_map(|wl| wl.replicas.iter()).map(|r| r.request as f64).sum::<f64>() / 1000.0,
            );
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
    };
    Ok(ModeRun { mode, summary, series })
}

/// One sync period of one workload: observe, decide, act.
#[allow(clippy::too_many_arguments)]
fn control(
    cfg: &RunConfig,
    mode: Mode,
    policy: &Policy,
    topology: &Arc<Topology>,
    snapshot: &mut Snapshot,
    wl: &mut Workload,
    t: f64,
    utilization: f64,
    acc: &mut Acc,
) {
    // Removal order: the primary first; hybrid removes the replica farthest from the primary first,
    // the others the newest first (as a ReplicaSet does among ready pods).
    let mut order: Vec<usize> = (0..wl.replicas.len()).collect();
    if mode.places_near() && !wl.replicas.is_empty() {
        let primary = wl.replicas[0].node;
        order[1..].sort_by_key(|&i| (topology.hops(primary, wl.replicas[i].node), i));
    }
    let views: Vec<PodView> = order
        .iter()
        .map(|&i| {
            let r = &wl.replicas[i];
            let ready = r.ready_at <= t;
            PodView {
                request_milli: r.request,
                usage_milli: ready.then(|| (r.request as f64 * utilization).round() as i64),
                node_free_milli: snapshot.nodes()[r.node].free_cpu_milli(),
                restarting: r.restarting,
            }
        })
        .collect();
    let period_start =
        wl.replica_log.iter().rev().find(|(at, _)| *at <= t - 60.0).or(wl.replica_log.first()).map_or(0, |e| e.1);
    let decision =
        decide(&Inputs { now_s: t, policy, pods: &views, history: &wl.history, replicas_period_start: period_start });
    if let Some(rec) = recommendation(policy, &views, false) {
        wl.history.push((t, rec));
    }
    wl.history.retain(|(at, _)| t - at <= policy.stabilization_s);
    match decision {
        Decision::Nothing(_) => {}
        Decision::Vertical(resizes) => {
            acc.vertical_actions += 1;
            for (pos, new) in resizes {
                let r = &mut wl.replicas[order[pos]];
                let old = snapshot.forget(&r.key).expect("replica is placed");
                let free = snapshot.nodes()[r.node].free_cpu_milli();
                // Two pods of one workload on one node may both have counted its room: cap at what is left.
                let new = new.min(round_down_step(free, policy.step_milli).max(old.requests.cpu_milli));
                snapshot.assume(&pod(cfg, &r.key, new), r.node, &[]).expect("resize fits");
                r.request = new;
                if policy.recreate {
                    r.ready_at = t + cfg.restart_delay_s;
                    r.restarting = true;
                    r.needs_state = true;
                    acc.restarts += 1;
                }
            }
        }
        Decision::AddPods(n) => {
            for _ in 0..n {
                let key = format!("{}/p{}", wl.replicas[0].key.split('/').next().unwrap_or("w"), wl.next_id);
                wl.next_id += 1;
                let p = pod(cfg, &key, policy.template_cpu_milli);
                let profile = if mode.places_near() {
                    near_profile(topology, wl.replicas.iter().map(|r| r.node).collect())
                } else {
                    default_profile()
                };
                match schedule_one(&profile, snapshot, &p) {
                    Ok(d) => {
                        acc.added_hops += f64::from(
                            wl.replicas.iter().filter_map(|r| topology.hops(d.node, r.node)).min().unwrap_or(0),
                        );
                        snapshot.assume(&p, d.node, &[]).expect("decision fits");
                        wl.replicas.push(Replica {
                            key,
                            node: d.node,
                            request: p.requests.cpu_milli,
                            ready_at: t + cfg.start_delay_s,
                            restarting: false,
                            needs_state: true,
                        });
                        acc.pods_added += 1;
                    }
                    Err(_) => acc.unschedulable += 1,
                }
            }
        }
        Decision::RemovePods(n) => {
            let mut gone: Vec<usize> = order[order.len() - n..].to_vec();
            gone.sort_unstable_by(|a, b| b.cmp(a));
            for i in gone {
                let r = wl.replicas.remove(i);
                snapshot.forget(&r.key).expect("replica is placed");
                acc.pods_removed += 1;
            }
        }
    }
    wl.replica_log.push((t, wl.replicas.len()));
    // Keep one entry at or before a period ago, and everything since.
    if let Some(keep) = wl.replica_log.iter().rposition(|(at, _)| *at <= t - 60.0) {
        wl.replica_log.drain(..keep);
    }
}

fn round_down_step(milli: i64, step: i64) -> i64 {
    milli.max(0).div_euclid(step) * step
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
        "| mode | sync MB/s (rack / spine / core) | mean sync hops | overload s | episodes | mean relief s | max relief s | replica-h | CPU core-h reserved | vertical / added / removed / restarts | added-pod hops |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let s = &r.summary;
        let tier = |n: &str| s.sync_bandwidth_per_tier.get(n).copied().unwrap_or(0.0);
        out.push_str(&format!(
            "| {} | {:.1} ({:.1} / {:.1} / {:.1}) | {:.2} | {:.0} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {} / {} / {} / {} | {:.2} |\n",
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
            s.vertical_actions,
            s.pods_added,
            s.pods_removed,
            s.restarts,
            s.mean_added_pod_hops
        ));
    }
    out
}
