//! mlsched's own GPU packing policy: each placement is costed by the idle GPU it is expected to leave
//! unusable for good, not by FGD's fragmentation measure, together with the GPUs stranded by exhausted CPU
//! and the GPUs of a scarce model taken from the pods that can run nowhere else.
//!
//! # What is being minimised
//!
//! With no departures, the GPU left unallocated when the arrived request reaches the cluster's capacity is
//! exactly the idle GPU milli at that moment, and all of it is idle because no arriving pod could use
//! it. A placement should therefore minimise the idle capacity it makes *unusable* for the pods that keep
//! arriving. Each candidate (node, GPU) is costed, in milli-GPU, as the change it causes in
//!
//! 1. **Expected sliver** (`waste_table_contested`): the GPU milli a GPU with `l` free is expected to keep
//!    idle forever if it is filled by arriving shares that fit, drawn in proportion to their frequency,
//!    until none fits. It prefers `350 − 320 = 30` over `530 − 320 = 210`, and it knows that a 530-milli
//!    hole, which the many 470 shares will complete, is cheap while a 190-milli one is not. Shares are
//!    *contested*: a hole of `l` gets an `m` share only with probability `min(1, F_m / N_m)`, where `F_m`
//!    is how many `m` shares are expected before the cluster's idle milli is all requested (idle milli ×
//!    frequency of `m` / mean GPU milli per pod) and `N_m` the partially used GPUs with at least `m` free,
//!    all of which compete for them (the same random-fill assumption as the recursion; counting only the
//!    holes at most as large as the one costed, as if shares always went to the tightest fit, was worse).
//!    Both are measured on the cluster every [`COMPETITION_EVERY`] arrivals (every 16 or 64 gives the same
//!    result and costs up to twice the time on the many-model workloads). Early on every hole is fillable;
//!    once ~1000 GPUs hold an 810 share, the ~100 shares of ≤ 190 milli cannot fill their 190-milli holes,
//!    so a 210-milli hole (a 320 beside a 470) is costed as nearly all idle for good. Without contest (the
//!    plain recursion) the estimate was optimistic about small leftovers and had to be weighted down.
//! 2. **CPU stranding**: idle GPU milli that the node's free CPU cannot feed, at the CPU-per-GPU ratio
//!    `rho` of the GPU workload (`max(0, idle_gpu − free_cpu / rho)`). The ratio is smooth, so CPU-only
//!    and CPU-heavy pods go where CPU is plentiful relative to the GPUs left (T4 nodes with 52 cores per
//!    GPU rather than P100 nodes with 8), and CPU-light GPU pods are drawn to the GPUs of CPU-poor nodes,
//!    which only they can use. (Capping `rho` at each node's own hardware ratio, so that an idle P100 node
//!    is not "stranded" to begin with, loses that pull.) That is the regime where GPUs run out first, as
//!    on every workload of the shared trace folder. Where the workload asks more CPU per GPU than the
//!    cluster has, CPU runs out first and the cost is instead the idle GPU that the arriving pods which fit
//!    (CPU-only pods among them, which take free CPU and no GPU) are not expected to fill, beside each GPU
//!    shape's need for its CPU in one piece ([`CpuFeed`] has both regimes and the measurements behind them).
//! 3. **Scarce models** (`price`): taking `g` milli of model `M` displaces `price(M) · g` milli of demand
//!    restricted to `M` (by `gpu_spec`), where `price(M)` is the share of `M`'s capacity that the
//!    restricted typical shapes will need (their GPU demand on `M` over `M`'s share of the cluster,
//!    capped at 1; a shape allowing several models is split among them by capacity). A pod that may run
//!    anywhere then leaves the scarce V100/P100/G3 nodes to the pods that can only run there; for a pod
//!    restricted to one model the cost is the same on all its nodes and changes nothing.
//!
//! # Why not FGD's fragmentation term
//!
//! FGD's measure (`frag::node_frag_milli`) counts, for each typical shape, the idle milli that shape could
//! not use now, weighted by the shape's frequency. It is a proxy for what the sliver cost estimates
//! directly, and a coarse one: a 530-milli hole is "fragment" for the 810 and whole-GPU shapes, most of
//! the pods, so FGD charges nearly as much for it as for a 190-milli hole, although the 470 shares will
//! complete it. Earlier versions of this policy added the sliver cost *on top of* FGD's term; removing the
//! term improved every workload of the shared trace folder, both variants (seeds 42..51, unallocated GPU %
//! at 100 % arrival, with / without FGD's term, prior): default 4.01 / 3.87, cpu050 3.99 / 3.85, cpu200
//! 4.06 / 3.87, gpushare60 8.17 / 7.75, gpushare100 12.68 / 11.94, gpuspec10 4.20 / 4.03, gpuspec25 4.24 /
//! 4.05, multigpu20 3.55 / 3.34, multigpu40 2.76 / 2.58; weighting it by 0.25, 0.5 or 0.75 on default gave
//! 3.94, 3.98, 4.00, so its contribution is monotonically harmful. Multi-GPU pods need no term of their
//! own: a whole idle GPU's sliver cost is the same on every node, so the cheapest place for a whole-GPU
//! pod is decided by CPU stranding and model price, which keeps CPU-rich nodes' GPUs for CPU-hungry pods,
//! and shares fill holes before they open idle GPUs.
//!
//! The score is the negated cost, kept exact rather than FGD's `int(sigmoid(−Δ/1000)·100)`: that
//! truncation turns every Δ within ~40 milli into a tie which the node-name order then breaks at random.
//! Remaining exact ties (identical nodes) go to the smallest node name, like every policy here. Weights:
//! [`WASTE_WEIGHT`] 0.7 or 1.5 instead of 1 change default by at most 0.01 point.
//!
//! # Prior and online learning
//!
//! `mlsched` is given the same prior as FGD (the typical shapes of the whole workload). `mlsched-online`
//! starts with nothing and counts the shapes of the pods that have arrived so far (`observe_arrival`, which
//! the replay calls before each pod is scheduled, failed ones included), re-deriving the typical shapes,
//! `rho`, the model prices and the sliver tables on a geometric schedule (after 1, 2, …, 8 pods, then
//! every 1/8 more, at most every [`MAX_REFRESH_EVERY`]). It never sees a pod before it arrives. Older
//! arrivals fade: a pod's weight halves every [`LEARNER_HALF_LIFE`] later arrivals, so a scheduler that
//! runs for months follows its workload's mix as it changes (`mlsim drift` measures it). On the
//! openb traces the shape mix is stationary, so a few hundred arrivals already give nearly the prior. The
//! competition for shares (sliver cost) is measured on the live cluster by both variants: it is state,
//! not foresight.
//!
//! # Cost
//!
//! Scores are memoised by (node state incl. model, pod shape) as in `fgd`; the price depends only on the
//! model and the workload estimate, the sliver table also on the competition (re-measured every
//! [`COMPETITION_EVERY`] arrivals by one O(GPUs) pass), and the memo is cleared whenever either changes
//! (each online refresh; a competition that changed a sliver table). A cold decision costs 0.8x–0.9x what
//! FGD's does in the latest runs (criterion, `decision_half_full`): the cost is a table look-up per GPU,
//! where FGD's measure walks every typical shape. Where CPU runs out first, the stranding cost is a look-up
//! in the fill table and a binary search over the GPU shapes' CPU, 0.74x FGD's time
//! (`decision_half_full_cpux4`; the fill table is built with the workload estimate, not per decision).
//!
//! # Where the rest goes
//!
//! On the default trace ~3.0 of the remaining ~3.9 % are GPUs holding one 810-milli share: only the rare
//! ≤190-milli shares can complete them, so that part is out of any placement policy's reach. `mlsim
//! bound` proves it: no placement of the same pods, even one knowing them all in advance, leaves less
//! than 3.01 % unallocated (mean of seeds 42..51). It gets there only by leaving out one-GPU pods that
//! arrive early: no placement that runs every one-GPU pod arriving before 95 % of capacity, as this
//! policy's replays do, leaves less than 3.61 %.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::cpu_feed::{CpuFeed, cluster_cpu_per_gpu_milli};
use super::score_memo::ScoreMemo;

use crate::core::{GPU_MILLI, Node, NodeId, Pod, Snapshot};
use crate::frag::{Shape, TypicalShapes};
use crate::framework::ScorePlugin;

/// Weight of the CPU-stranding cost, relative to the expected-sliver cost (both in milli-GPU).
pub const STRAND_WEIGHT: f64 = 1.0;
/// Weight of the expected-sliver cost.
pub const WASTE_WEIGHT: f64 = 1.0;
/// Weight of the scarce-model cost: milli of restricted demand displaced per milli taken, relative to
/// the expected-sliver cost.
pub const MODEL_WEIGHT: f64 = 1.0;
/// Added to every score so feasible placements score above 0 (the score of a wrong GPU model).
const SCORE_OFFSET: i64 = 1_000_000_000;
/// Costs are scored in thousandths of a milli-GPU.
const SCORE_SCALE: f64 = 1000.0;

/// Pods between two measurements of the competition for shares.
const COMPETITION_EVERY: u64 = 256;

/// Arrivals after which a pod's shape counts half as much in `mlsched-online`'s estimate. Long enough
/// that a stationary mix is estimated from ~1,500 pods' worth of weight: against counting every arrival
/// alike, `mlsched-online` moved by at most 0.03 points on the shared openb workloads and 0.09 on the
/// stress variants (`cpux2` 5.67 → 5.58; the most it lost is 0.06, on `sharesmall-cpux2`), as 512 and 2048
/// did (measured with the CPU-scarce cost before expected fill). Short enough that 2,048 pods after a
/// change of workload the learned mix is 0.23 from the new one in total variation, where all history is
/// still 0.68 away (`mlsim drift`).
pub const LEARNER_HALF_LIFE: f64 = 1024.0;

/// The most arrivals between two refreshes of the online estimate, so that a learner that has seen many
/// pods still follows a change (the geometric schedule alone would wait ever longer).
const MAX_REFRESH_EVERY: u64 = 256;

/// Shape weights of the pods seen so far, each pod's weight halving every `half_life` later arrivals:
/// the online learner's whole state. `None` counts every arrival alike, forever.
#[derive(Debug, Clone)]
pub struct ShapeCounts {
    weights: FxHashMap<Shape, f64>,
    /// The weight the next arrival gets; it grows instead of every old weight shrinking, and all are
    /// rescaled together long before it could overflow.
    next_weight: f64,
    growth: f64,
    total: u64,
}

impl ShapeCounts {
    pub fn with_half_life(half_life: Option<f64>) -> Self {
        let growth = half_life.filter(|h| h.is_finite() && *h > 0.0).map_or(1.0, |h| 2f64.powf(1.0 / h));
        ShapeCounts { weights: FxHashMap::default(), next_weight: 1.0, growth, total: 0 }
    }

    pub fn add(&mut self, pod: &Pod) {
        *self.weights.entry(Shape::of(pod)).or_insert(0.0) += self.next_weight;
        self.total += 1;
        self.next_weight *= self.growth;
        if self.next_weight > 1e100 {
            let scale = 1.0 / self.next_weight;
            self.weights.values_mut().for_each(|w| *w *= scale);
            // Shapes not seen for a long time weigh nothing any more: forget them.
            self.weights.retain(|_, w| *w > 1e-12);
            self.next_weight = 1.0;
        }
    }

    /// Arrivals counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn typical(&self, coverage: f64) -> TypicalShapes {
        TypicalShapes::from_weights(self.weights.iter().map(|(s, w)| (s.clone(), *w)), coverage)
    }
}

/// `w[l]`: the milli a GPU with `l` free is expected to keep idle for good if arriving pods that fit
/// (those of `typical` allowed on `model`, drawn in proportion to their weight) fill it until none fits.
pub fn waste_table(typical: &TypicalShapes, model: &str) -> Vec<f64> {
    waste_table_contested(typical, model, None)
}

/// The partially used GPUs of the cluster and its idle GPU milli: what decides how contested each share
/// size is. `holes[f]` counts the GPUs with `0 < f < 1000` milli free, as a prefix sum.
#[derive(Debug, Clone, Default)]
pub struct Competition {
    holes_upto: Vec<u64>,
    idle_milli: i64,
}

impl Competition {
    pub fn of(nodes: &[Node]) -> Self {
        let mut holes = vec![0u64; GPU_MILLI as usize + 1];
        let mut idle_milli = 0;
        for g in nodes.iter().flat_map(|n| &n.gpus) {
            let f = g.free_milli().clamp(0, GPU_MILLI);
            idle_milli += f;
            if f > 0 && f < GPU_MILLI {
                holes[f as usize] += 1;
            }
        }
        for f in 1..holes.len() {
            holes[f] += holes[f - 1];
        }
        Competition { holes_upto: holes, idle_milli }
    }

    /// Partially used GPUs with at least `m` (≥ 1) milli free.
    fn holes_fitting(&self, m: usize) -> u64 {
        self.holes_upto[GPU_MILLI as usize - 1] - self.holes_upto[m.min(GPU_MILLI as usize) - 1]
    }
}

/// [`waste_table`] where each share size `m` is contested: a hole receives an `m` share only with
/// probability `min(1, F_m / N_m)`, where `F_m` is the number of `m` shares expected to arrive before the
/// cluster's idle milli is all requested (idle milli × their frequency / mean GPU milli per pod), and
/// `N_m` the partially used GPUs with at least `m` free, among which they are spread. With no competition
/// given every share always comes, as in [`waste_table`].
pub fn waste_table_contested(typical: &TypicalShapes, model: &str, comp: Option<&Competition>) -> Vec<f64> {
    let mut by_size: FxHashMap<usize, f64> = FxHashMap::default();
    let mut mean_gpu = 0.0;
    for w in &typical.shapes {
        mean_gpu += w.weight * (i64::from(w.shape.gpu_count) * w.shape.milli_per_gpu) as f64;
        if w.shape.milli_per_gpu > 0 && w.shape.allows_model(model) {
            *by_size.entry(w.shape.milli_per_gpu as usize).or_insert(0.0) += w.weight;
        }
    }
    let mut sizes: Vec<(usize, f64)> = by_size.into_iter().collect();
    sizes.sort_by_key(|&(m, _)| m);
    // Expected future arrivals of each size; unbounded without a competition to weigh them against.
    let arrivals: Vec<f64> = sizes
        .iter()
        .map(|&(_, p)| match comp {
            Some(c) if mean_gpu > 0.0 => c.idle_milli as f64 * p / mean_gpu,
            _ => f64::INFINITY,
        })
        .collect();
    let mut w = vec![0.0; GPU_MILLI as usize + 1];
    for l in 1..w.len() {
        let (mut num, mut den, mut miss) = (0.0, 0.0, 1.0);
        for (&(m, p), &f) in sizes.iter().zip(&arrivals) {
            if m > l {
                break;
            }
            let theta = match comp {
                Some(c) => (f / c.holes_fitting(m).max(1) as f64).min(1.0),
                None => 1.0,
            };
            miss *= 1.0 - theta;
            num += p * theta * w[l - m];
            den += p * theta;
        }
        w[l] = if den > 0.0 { (1.0 - miss) * num / den + miss * l as f64 } else { l as f64 };
    }
    w
}

pub struct MlschedScore {
    /// The typical shapes: the prior as given, or learned from the arrivals so far.
    typical: TypicalShapes,
    /// How much idle GPU free CPU can feed, for `typical`.
    feed: CpuFeed,
    /// The cluster's CPU milli per GPU milli, and the node count it was counted at.
    cluster_ratio: Mutex<(usize, f64)>,
    /// The node count of `cluster_ratio`, readable without the lock on every score.
    counted_nodes: AtomicUsize,
    /// Whether the workload asks more CPU per GPU than the cluster has: which of `feed`'s two regimes
    /// prices stranding.
    cpu_scarce: AtomicBool,
    /// `Some` for the online variant.
    online: Option<ShapeCounts>,
    next_refresh: u64,
    /// Sliver tables by node model.
    waste: Mutex<FxHashMap<String, Arc<Vec<f64>>>>,
    /// GPU capacity (milli) by model of the cluster last scored, and the nodes it was counted on.
    capacity: Mutex<(usize, Arc<FxHashMap<String, i64>>)>,
    /// Prices by model, for the current workload estimate and cluster capacity.
    prices: Mutex<FxHashMap<String, f64>>,
    /// Scores by (node state, pod shape), as in `fgd`.
    memo: ScoreMemo,
    /// Pods arrived so far (both variants count them).
    arrivals: u64,
    /// The cluster's competition for shares, and the arrival count it was measured at.
    competition: Mutex<(u64, Option<Arc<Competition>>)>,
}

impl MlschedScore {
    /// Given the workload's typical shapes, as FGD is.
    pub fn with_prior(typical: TypicalShapes) -> Self {
        let feed = CpuFeed::of(&typical);
        // Built with the prior, like the typical shapes, rather than on the first CPU-scarce decision.
        feed.fill_table();
        MlschedScore {
            feed,
            cluster_ratio: Mutex::new((usize::MAX, 0.0)),
            counted_nodes: AtomicUsize::new(usize::MAX),
            cpu_scarce: AtomicBool::new(false),
            typical,
            online: None,
            next_refresh: u64::MAX,
            waste: Mutex::new(FxHashMap::default()),
            capacity: Mutex::new((usize::MAX, Arc::new(FxHashMap::default()))),
            prices: Mutex::new(FxHashMap::default()),
            memo: ScoreMemo::default(),
            arrivals: 0,
            competition: Mutex::new((u64::MAX, None)),
        }
    }

    /// Learns the shapes from arrivals, older ones fading with [`LEARNER_HALF_LIFE`]; knows nothing
    /// before the first.
    pub fn online() -> Self {
        MlschedScore::online_with_half_life(Some(LEARNER_HALF_LIFE))
    }

    /// [`MlschedScore::online`] with another half-life (`None`: every arrival counts alike, forever).
    pub fn online_with_half_life(half_life: Option<f64>) -> Self {
        MlschedScore {
            online: Some(ShapeCounts::with_half_life(half_life)),
            next_refresh: 1,
            ..MlschedScore::with_prior(TypicalShapes::default())
        }
    }

    pub fn typical(&self) -> &TypicalShapes {
        &self.typical
    }

    pub fn cpu_per_gpu_milli(&self) -> f64 {
        self.feed.rho()
    }

    /// Whether the workload runs out of CPU before GPUs on this cluster. The cluster's ratio is recounted
    /// when its node count changes; a change of regime changes every score, so it clears the memo.
    fn cpu_scarce(&self, snapshot: &Snapshot) -> bool {
        let nodes = snapshot.nodes();
        if self.counted_nodes.load(Ordering::Relaxed) != nodes.len() {
            let mut ratio = self.cluster_ratio.lock().expect("cluster ratio lock");
            if ratio.0 != nodes.len() {
                *ratio = (nodes.len(), cluster_cpu_per_gpu_milli(nodes));
                let scarce = self.feed.cpu_scarce(ratio.1);
                if self.cpu_scarce.swap(scarce, Ordering::Relaxed) != scarce {
                    self.memo.clear();
                }
                self.counted_nodes.store(nodes.len(), Ordering::Relaxed);
            }
        }
        self.cpu_scarce.load(Ordering::Relaxed)
    }

    fn waste_table(&self, model: &str) -> Arc<Vec<f64>> {
        let mut cache = self.waste.lock().expect("waste lock");
        if let Some(t) = cache.get(model) {
            return t.clone();
        }
        let comp = self.competition.lock().expect("competition lock").1.clone();
        let table = Arc::new(waste_table_contested(&self.typical, model, comp.as_deref()));
        cache.insert(model.to_string(), table.clone());
        table
    }

    fn capacity(&self, snapshot: &Snapshot) -> Arc<FxHashMap<String, i64>> {
        let mut cache = self.capacity.lock().expect("capacity lock");
        if cache.0 != snapshot.nodes().len() {
            let mut cap: FxHashMap<String, i64> = FxHashMap::default();
            for n in snapshot.nodes() {
                if let Some(m) = n.gpu_model() {
                    *cap.entry(m.to_string()).or_insert(0) += n.gpu_capacity_milli();
                }
            }
            *cache = (snapshot.nodes().len(), Arc::new(cap));
            self.prices.lock().expect("price lock").clear();
        }
        cache.1.clone()
    }

    /// The cost (milli-GPU made unusable) of placing `pod` on `node`, as a score, and for a share the GPU.
    /// `price` is the share of the node model's GPUs that pods restricted to it will need.
    /// `cpu_scarce`: the workload runs out of CPU before GPUs (see [`CpuFeed`]).
    pub fn evaluate(&self, node: &Node, pod: &Pod, price: f64, cpu_scarce: bool) -> (i64, Option<usize>) {
        if pod.gpu.is_none() && pod.requests.cpu_milli == 0 {
            return (SCORE_OFFSET, None);
        }
        let model = node.gpu_model().unwrap_or("");
        if !pod.gpu.is_none() && !pod.gpu.allows_model(model) {
            return (0, None);
        }
        let table = self.waste_table(model);
        let waste = |f: &[i64]| -> f64 { f.iter().map(|&x| table[x.clamp(0, GPU_MILLI) as usize]).sum() };
        let mut free: Vec<i64> = node.gpus.iter().map(|g| g.free_milli()).collect();
        let cpu_free = node.free_cpu_milli();
        let cpu_after = cpu_free - pod.requests.cpu_milli;
        let cost = |free: &[i64], cpu_free: i64| -> f64 {
            STRAND_WEIGHT * self.feed.stranded(free.iter().sum(), cpu_free, cpu_scarce) + WASTE_WEIGHT * waste(free)
        };
        let before = cost(&free, cpu_free);
        let cost_after = |free: &[i64]| cost(free, cpu_after);
        let displaced = MODEL_WEIGHT * price * pod.gpu.total_milli() as f64;
        let score = |after: f64| SCORE_OFFSET + ((before - after - displaced) * SCORE_SCALE).round() as i64;
        let milli = pod.gpu.milli_per_gpu;
        if pod.gpu.is_shared() {
            let mut best: Option<(i64, usize)> = None;
            for i in 0..free.len() {
                // GPUs with equal free milli cost the same; the lowest index is kept on ties.
                if free[i] < milli || free[..i].contains(&free[i]) {
                    continue;
                }
                free[i] -= milli;
                let s = score(cost_after(&free));
                free[i] += milli;
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, i));
                }
            }
            return best.map_or((0, None), |(s, i)| (s, Some(i)));
        }
        if !pod.gpu.is_none() {
            let mut order: Vec<usize> = (0..free.len()).filter(|&i| free[i] >= milli).collect();
            order.sort_by_key(|&i| free[i]);
            for &i in order.iter().take(pod.gpu.count as usize) {
                free[i] -= milli;
            }
        }
        (score(cost_after(&free)), None)
    }

    /// The share of `node`'s model that the typical shapes restricted to a set of models will need: their
    /// GPU demand on the model (a shape allowing several models is split by capacity) over the model's
    /// share of cluster capacity, at most 1. 0 for a model nobody is restricted to.
    fn price(&self, snapshot: &Snapshot, node: &Node) -> f64 {
        let Some(model) = node.gpu_model() else { return 0.0 };
        let cap = self.capacity(snapshot);
        if let Some(p) = self.prices.lock().expect("price lock").get(model) {
            return *p;
        }
        let p = Self::compute_price(&self.typical, &cap, model);
        self.prices.lock().expect("price lock").insert(model.to_string(), p);
        p
    }

    fn compute_price(typical: &TypicalShapes, cap: &FxHashMap<String, i64>, model: &str) -> f64 {
        let total_cap: i64 = cap.values().sum();
        let my_cap = cap.get(model).copied().unwrap_or(0);
        if total_cap == 0 || my_cap == 0 {
            return 0.0;
        }
        let (mut restricted, mut demand) = (0.0, 0.0);
        for w in &typical.shapes {
            let d = w.weight * (i64::from(w.shape.gpu_count) * w.shape.milli_per_gpu) as f64;
            demand += d;
            if let Some(models) = &w.shape.models {
                if !w.shape.allows_model(model) {
                    continue;
                }
                let allowed: i64 =
                    cap.iter().filter(|(m, _)| models.iter().any(|x| &**x == m.as_str())).map(|(_, c)| c).sum();
                restricted += d * my_cap as f64 / allowed.max(1) as f64;
            }
        }
        if demand <= 0.0 {
            return 0.0;
        }
        ((restricted / demand) / (my_cap as f64 / total_cap as f64)).min(1.0)
    }

    /// Re-measures the competition for shares every [`COMPETITION_EVERY`] arrivals (and at the first
    /// decision). The memo is cleared only if a sliver table changed: while no share size is contested
    /// (early in a replay) the tables are the plain ones and the memo stays valid.
    fn refresh_competition(&self, snapshot: &Snapshot) {
        let mut comp = self.competition.lock().expect("competition lock");
        if comp.0 != u64::MAX && self.arrivals < comp.0 + COMPETITION_EVERY {
            return;
        }
        let fresh = Arc::new(Competition::of(snapshot.nodes()));
        *comp = (self.arrivals, Some(fresh.clone()));
        drop(comp);
        let mut waste = self.waste.lock().expect("waste lock");
        let mut changed = false;
        for (model, table) in waste.iter_mut() {
            let new = waste_table_contested(&self.typical, model, Some(&fresh));
            if new != **table {
                *table = Arc::new(new);
                changed = true;
            }
        }
        drop(waste);
        if changed {
            self.memo.clear();
        }
    }

    fn cached_evaluate(&self, snapshot: &Snapshot, node: &Node, pod: &Pod) -> (i64, Option<usize>) {
        self.refresh_competition(snapshot);
        let cpu_scarce = self.cpu_scarce(snapshot);
        self.memo.get_or_compute(node, pod, || self.evaluate(node, pod, self.price(snapshot, node), cpu_scarce))
    }
}

impl ScorePlugin for MlschedScore {
    fn name(&self) -> &'static str {
        "MlschedScore"
    }

    fn pre_score(&self, snapshot: &Snapshot) {
        self.refresh_competition(snapshot);
        self.cpu_scarce(snapshot);
    }

    /// Every change of what a score depends on beyond the pod, the node and the node list (the learned
    /// shapes, the contested sliver tables) clears the memo, so the memo's generation is the plugin's.
    fn cache_generation(&self) -> Option<u64> {
        Some(self.memo.generation())
    }

    /// `1e9 + 1000 × (milli-GPU of unusable idle capacity avoided)`: higher is better, 0 for a GPU model
    /// the pod may not use.
    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        self.cached_evaluate(snapshot, &snapshot.nodes()[node], pod).0
    }

    fn pick_gpus(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Option<Vec<usize>> {
        // Whole GPUs: the lowest-index idle ones (the profile default); shares: the cheapest GPU.
        self.cached_evaluate(snapshot, &snapshot.nodes()[node], pod).1.map(|i| vec![i])
    }

    fn observe_arrival(&mut self, pod: &Pod) {
        self.arrivals += 1;
        let Some(counts) = self.online.as_mut() else { return };
        counts.add(pod);
        let n = counts.total();
        if n >= self.next_refresh {
            self.typical = counts.typical(TypicalShapes::DEFAULT_COVERAGE);
            self.feed = CpuFeed::of(&self.typical);
            let cluster_ratio = self.cluster_ratio.get_mut().expect("cluster ratio lock").1;
            *self.cpu_scarce.get_mut() = self.feed.cpu_scarce(cluster_ratio);
            self.waste.get_mut().expect("waste lock").clear();
            self.prices.get_mut().expect("price lock").clear();
            self.memo.clear();
            self.next_refresh = n + (n / 8).clamp(1, MAX_REFRESH_EVERY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, Resources};
    use crate::frag::{FreeView, WeightedShape, node_frag_milli};
    use crate::framework::schedule_one;
    use crate::plugins::cpu_feed::stranded_milli;
    use crate::plugins::policy::{Policy, PolicyInputs, profile_for};

    const GIB: i64 = 1 << 30;

    fn shape(cpu: i64, count: u32, milli: i64) -> Shape {
        Shape { cpu_milli: cpu, gpu_count: count, milli_per_gpu: milli, models: None }
    }

    fn typical(shapes: &[(Shape, f64)]) -> TypicalShapes {
        TypicalShapes { shapes: shapes.iter().map(|(s, w)| WeightedShape { shape: s.clone(), weight: *w }).collect() }
    }

    fn node(name: &str, cpu: i64, gpus: usize) -> Node {
        Node::new(name, Resources::new(cpu, 512 * GIB, 110)).with_gpus(gpus, "G2")
    }

    fn pod(key: &str, cpu: i64, gpu: GpuRequest) -> Pod {
        Pod::new(key, Resources::new(cpu, GIB, 1), gpu)
    }

    /// A workload like openb's: mostly whole GPUs, many large and medium shares, some CPU-only pods.
    fn openb_like() -> TypicalShapes {
        typical(&[
            (shape(8000, 1, 1000), 0.5),
            (shape(4000, 1, 810), 0.15),
            (shape(4000, 1, 470), 0.1),
            (shape(4000, 1, 320), 0.05),
            (shape(64000, 8, 1000), 0.05),
            (shape(8000, 0, 0), 0.15),
        ])
    }

    fn place(policy: Policy, t: &TypicalShapes, nodes: Vec<Node>, p: &Pod) -> (String, Vec<usize>) {
        let snapshot = Snapshot::new(nodes).unwrap();
        let profile = profile_for(policy, PolicyInputs { seed: 1, typical: t.clone() });
        let d = schedule_one(&profile, &snapshot, p).unwrap();
        (snapshot.nodes()[d.node].name.clone(), d.gpus)
    }

    #[test]
    fn a_whole_free_node_is_not_broken_for_a_share_that_fits_a_used_node() {
        // "a" sorts first, so a name tie-break would pick the idle node.
        let idle = node("a", 96_000, 8);
        let mut used = node("b", 96_000, 8);
        used.gpus[3].used_milli = 470;
        used.requested.cpu_milli = 4000;
        let (name, gpus) =
            place(Policy::Mlsched, &openb_like(), vec![idle, used], &pod("p", 4000, GpuRequest::shared(470)));
        assert_eq!((name.as_str(), gpus), ("b", vec![3]), "the share completes the used GPU (470 + 470)");
    }

    #[test]
    fn a_share_goes_where_it_leaves_the_smallest_sliver() {
        // Free [1000, 530, 350]: a 320 share leaves 210 on GPU 1 but only 30 on GPU 2. Both leftovers are
        // below every typical shape, so FGD's measure alone cannot tell them apart; the sliver cost can.
        let mut n = node("n", 96_000, 3);
        n.gpus[1].used_milli = 470;
        n.gpus[2].used_milli = 650;
        let t = openb_like();
        let s = MlschedScore::with_prior(t.clone());
        let (_, gpu) = s.evaluate(&n, &pod("p", 4000, GpuRequest::shared(320)), 0.0, false);
        assert_eq!(gpu, Some(2));
        let table = waste_table(&t, "G2");
        assert!(table[30] < table[210]);
    }

    #[test]
    fn a_hole_the_arriving_shares_complete_costs_less_than_a_smaller_one_nobody_fills() {
        // Why FGD's measure is not part of the cost: for it a 530-milli hole is fragment for the 810 and
        // whole-GPU shapes and counts more than a 190-milli one; but 470 and 320 shares complete 530 (to
        // 60 or 210), while no share fits 190.
        let t = openb_like();
        let w = waste_table(&t, "G2");
        assert_eq!(w[190], 190.0);
        assert!(w[530] < 120.0, "{}", w[530]);
        let frag = |free: i64| node_frag_milli(FreeView { cpu_free: 96_000, gpu_free: &[free], model: "G2" }, &t);
        assert!(frag(530) > 2.0 * frag(190), "{} vs {}", frag(530), frag(190));
    }

    #[test]
    fn cpu_only_pods_do_not_strand_the_gpus_of_a_cpu_poor_node() {
        // One GPU shape: 1 whole GPU with 4 cores, so rho = 4 CPU milli per GPU milli. A 14-core CPU-only
        // pod on the 20-core node leaves 6 cores for 2 idle GPUs: the GPU shape still fits (FGD sees no
        // change) but only 1.5 GPUs can ever be fed. On the 100-core node it strands nothing.
        let t = typical(&[(shape(4000, 1, 1000), 0.8), (shape(2000, 0, 0), 0.2)]);
        let poor = node("a-poor", 20_000, 2);
        let rich = node("b-rich", 100_000, 2);
        let p = pod("cpu-only", 14_000, GpuRequest::none());
        assert_eq!(place(Policy::Fgd, &t, vec![poor.clone(), rich.clone()], &p).0, "a-poor");
        assert_eq!(place(Policy::Mlsched, &t, vec![poor, rich], &p).0, "b-rich");
    }

    #[test]
    fn cpu_heavy_gpu_pods_go_where_cpu_is_plentiful() {
        let t = typical(&[(shape(4000, 1, 1000), 1.0)]);
        let poor = node("a-poor", 16_000, 2);
        let rich = node("b-rich", 100_000, 2);
        // 12 cores with one GPU: on the poor node the other GPU keeps 4 cores (exactly enough), but a
        // 13-core pod would leave it 3, stranding 250 milli.
        let p = pod("heavy", 13_000, GpuRequest::whole(1));
        assert_eq!(place(Policy::Mlsched, &t, vec![poor, rich], &p).0, "b-rich");
    }

    #[test]
    fn stranding_is_the_idle_gpu_the_free_cpu_cannot_feed() {
        assert_eq!(stranded_milli(2000, 8000, 4.0), 0.0);
        assert_eq!(stranded_milli(2000, 6000, 4.0), 500.0);
        assert_eq!(stranded_milli(2000, -5, 4.0), 2000.0);
        assert_eq!(stranded_milli(2000, 0, 0.0), 0.0, "no GPU shapes known: nothing is stranded");
        let t = typical(&[(shape(4000, 1, 1000), 0.5), (shape(2000, 1, 500), 0.5), (shape(9000, 0, 0), 1.0)]);
        // (0.5·4000 + 0.5·2000) / (0.5·1000 + 0.5·500) = 3000 / 750.
        assert!((MlschedScore::with_prior(t).cpu_per_gpu_milli() - 4.0).abs() < 1e-12);
    }

    #[test]
    fn sliver_table_follows_what_can_still_fit() {
        let t = typical(&[(shape(0, 1, 1000), 0.6), (shape(0, 1, 810), 0.3), (shape(0, 1, 160), 0.1)]);
        let w = waste_table(&t, "G2");
        assert_eq!(w[0], 0.0);
        assert_eq!(w[100], 100.0, "nothing fits 100");
        assert_eq!(w[190], 30.0, "only 160 fits, leaving 30");
        // 1000 free: whole GPU (0.6 → 0), 810 (0.3 → 190 → 30), 160 (0.1 → 840 → ...): small but > 0.
        assert!(w[1000] > 0.0 && w[1000] < 30.0);
        let t4_only = typical(&[(Shape { models: Some(vec!["T4".into()]), ..shape(0, 1, 500) }, 1.0)]);
        assert_eq!(waste_table(&t4_only, "G2")[600], 600.0, "shapes for other models never fill a GPU");
        assert_eq!(waste_table(&t4_only, "T4")[600], 100.0);
    }

    #[test]
    fn a_share_size_is_contested_by_the_holes_it_fits() {
        let t = typical(&[(shape(0, 1, 1000), 0.6), (shape(0, 1, 810), 0.3), (shape(0, 1, 160), 0.1)]);
        // Plenty of idle capacity and no holes yet: every share still comes, as in the plain model.
        let fresh: Vec<Node> = (0..10).map(|i| node(&format!("f{i}"), 96_000, 8)).collect();
        let open = waste_table_contested(&t, "G2", Some(&Competition::of(&fresh)));
        assert_eq!(open, waste_table(&t, "G2"));
        // Eight GPUs hold an 810 share each: 1520 idle milli bring 1520 · 0.1 / 859 ≈ 0.18 shares of 160
        // for eight 190-milli holes, so a 190 hole almost surely stays idle (the plain model says 30).
        let mut full = node("n", 96_000, 8);
        for g in &mut full.gpus {
            g.used_milli = 810;
        }
        let contested = waste_table_contested(&t, "G2", Some(&Competition::of(&[full])));
        assert!(contested[190] > 180.0, "{}", contested[190]);
        assert_eq!(waste_table(&t, "G2")[190], 30.0);
        // A whole free GPU is not contested for whole-GPU pods: its expected sliver stays small.
        assert!(contested[1000] < 100.0, "{}", contested[1000]);
    }

    #[test]
    fn the_online_learner_converges_to_the_observed_mix_and_never_sees_ahead() {
        let mut s = MlschedScore::online();
        assert!(s.typical().is_empty(), "nothing is known before the first arrival");
        let whole = pod("w", 8000, GpuRequest::whole(1));
        let share = pod("s", 2000, GpuRequest::shared(500));
        for i in 0..4000 {
            s.observe_arrival(if i % 4 == 3 { &share } else { &whole });
            if i == 0 {
                assert_eq!(s.typical().len(), 1, "after one pod only its shape is known");
            }
        }
        let weight = |sh: &Shape| s.typical().shapes.iter().find(|w| &w.shape == sh).map_or(0.0, |w| w.weight);
        // The schedule refreshes every 1/8 more pods, at most every 256, so the estimate is at most 256
        // arrivals old.
        assert!((weight(&shape(8000, 1, 1000)) - 0.75).abs() < 0.01);
        assert!((weight(&shape(2000, 1, 500)) - 0.25).abs() < 0.01);
        // rho = (0.75·8000 + 0.25·2000) / (0.75·1000 + 0.25·500) = 6500 / 875.
        assert!((s.cpu_per_gpu_milli() - 6500.0 / 875.0).abs() < 0.1);
    }

    #[test]
    fn old_arrivals_fade_with_the_half_life_and_all_history_never_does() {
        let (a, b) = (pod("a", 8000, GpuRequest::whole(1)), pod("b", 2000, GpuRequest::shared(500)));
        let weight_of_b = |counts: &ShapeCounts| {
            let t = counts.typical(1.0);
            t.shapes.iter().find(|w| w.shape == shape(2000, 1, 500)).map_or(0.0, |w| w.weight)
        };
        let mut fading = ShapeCounts::with_half_life(Some(LEARNER_HALF_LIFE));
        let mut all = ShapeCounts::with_half_life(None);
        for counts in [&mut fading, &mut all] {
            (0..10_000).for_each(|_| counts.add(&a));
            (0..LEARNER_HALF_LIFE as usize).for_each(|_| counts.add(&b));
        }
        // One half-life of b after (nearly) all the weight a can have: half each.
        assert!((weight_of_b(&fading) - 0.5).abs() < 0.01, "{}", weight_of_b(&fading));
        assert!((weight_of_b(&all) - 1024.0 / 11_024.0).abs() < 1e-9, "{}", weight_of_b(&all));
        assert_eq!(fading.total(), 11_024);
        // A half-life of one arrival doubles the next weight each time: the rescaling keeps it finite and
        // forgets shapes whose weight has gone.
        let mut fast = ShapeCounts::with_half_life(Some(1.0));
        (0..2000).for_each(|_| fast.add(&b));
        fast.add(&a);
        assert!((weight_of_b(&fast) - 0.5).abs() < 1e-6, "{}", weight_of_b(&fast));
        (0..2000).for_each(|_| fast.add(&a));
        assert_eq!(fast.typical(1.0).len(), 1, "b is forgotten");
    }

    #[test]
    fn the_all_history_learner_decides_like_the_prior() {
        // Feed the prior's mix in 100-pod rounds; the prior is what the replay would give FGD for them.
        let mut pods = Vec::new();
        for round in 0..40 {
            for (k, w) in openb_like().shapes.iter().enumerate() {
                for j in 0..(w.weight * 100.0).round() as usize {
                    let sh = &w.shape;
                    let gpu = if sh.gpu_count == 0 {
                        GpuRequest::none()
                    } else {
                        GpuRequest { count: sh.gpu_count, milli_per_gpu: sh.milli_per_gpu, models: None }
                    };
                    pods.push(pod(&format!("{round}-{k}-{j}"), sh.cpu_milli, gpu));
                }
            }
        }
        let prior = MlschedScore::with_prior(TypicalShapes::from_pods(pods.iter(), TypicalShapes::DEFAULT_COVERAGE));
        let mut n = node("n", 96_000, 8);
        n.gpus[0].used_milli = 470;
        n.gpus[1].used_milli = 650;
        n.requested.cpu_milli = 30_000;
        let probes = [
            pod("a", 4000, GpuRequest::shared(320)),
            pod("b", 8000, GpuRequest::whole(2)),
            pod("c", 8000, GpuRequest::none()),
        ];
        let mut all_history = MlschedScore::online_with_half_life(None);
        pods.iter().for_each(|p| all_history.observe_arrival(p));
        assert_eq!(all_history.typical().len(), prior.typical().len());
        for p in &probes {
            let (so, go) = all_history.evaluate(&n, p, 0.0, false);
            let (sp, gp) = prior.evaluate(&n, p, 0.0, false);
            assert_eq!(go, gp, "{}", p.key);
            // Within 2 milli-GPU of a ~500-milli cost: the estimate is at most 256 arrivals old, and the sliver
            // term, at full weight, is the most sensitive to it.
            assert!((so - sp).abs() < 2 * SCORE_SCALE as i64, "{}: {so} vs {sp}", p.key);
        }
        // The fading learner (the shipped one) is not held to this: fed shape by shape, its last rounds weigh
        // most and can tip the rarest shape over the 95 % cut; replays measure it (`mlsim reproduce`).
    }

    #[test]
    fn unrestricted_pods_leave_a_scarce_model_to_the_pods_restricted_to_it() {
        // 1 V100 node (4 GPUs) and 1 G2 node (4 GPUs). 30 % of the GPU demand may only run on V100,
        // which is 50 % of capacity: price(V100) = 0.3 / 0.5 = 0.6, price(G2) = 0.
        let v100 = Shape { models: Some(vec!["V100".into()]), ..shape(4000, 1, 1000) };
        let t = typical(&[(shape(4000, 1, 1000), 0.7), (v100, 0.3)]);
        let a = Node::new("a-v100", Resources::new(64_000, 512 * GIB, 110)).with_gpus(4, "V100");
        let b = node("b-g2", 64_000, 4);
        let snapshot = Snapshot::new(vec![a.clone(), b.clone()]).unwrap();
        let s = MlschedScore::with_prior(t.clone());
        assert!((s.price(&snapshot, &a) - 0.6).abs() < 1e-12);
        assert_eq!(s.price(&snapshot, &b), 0.0);
        let p = pod("anywhere", 4000, GpuRequest::whole(1));
        assert_eq!(place(Policy::Mlsched, &t, vec![a.clone(), b.clone()], &p).0, "b-g2");
        // Without restricted shapes both models are free to take, and the name decides.
        let t = typical(&[(shape(4000, 1, 1000), 1.0)]);
        assert_eq!(place(Policy::Mlsched, &t, vec![a, b], &p).0, "a-v100");
    }

    #[test]
    fn the_policies_are_named_and_the_paper_list_is_unchanged() {
        assert_eq!("mlsched".parse::<Policy>(), Ok(Policy::Mlsched));
        assert_eq!("mlsched-online".parse::<Policy>(), Ok(Policy::MlschedOnline));
        assert_eq!(Policy::ALL.len(), 6);
        assert!(!Policy::ALL.contains(&Policy::Mlsched));
        assert!(Policy::EXTENDED.contains(&Policy::MlschedOnline));
        assert!(Policy::Mlsched.needs_typical_shapes() && !Policy::MlschedOnline.needs_typical_shapes());
    }

    #[test]
    fn wrong_model_scores_zero_and_requestless_pods_score_alike() {
        let s = MlschedScore::with_prior(openb_like());
        let n = node("n", 96_000, 8);
        let t4 = pod("t4", 1000, GpuRequest::whole(1).with_models(vec!["T4".into()]));
        assert_eq!(s.evaluate(&n, &t4, 0.0, false), (0, None));
        let empty = pod("e", 0, GpuRequest::none());
        assert_eq!(s.evaluate(&n, &empty, 0.0, false).0, SCORE_OFFSET);
        assert!(s.evaluate(&n, &pod("g", 8000, GpuRequest::whole(1)), 0.0, false).0 > 0);
    }
}
