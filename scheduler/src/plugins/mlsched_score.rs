//! mlsched's GPU packing policy (draft).

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use rustc_hash::{FxHashMap, FxHasher};

use crate::core::{GPU_MILLI, Node, NodeId, Pod, Snapshot};
use crate::frag::{FreeView, Shape, TypicalShapes, WeightedShape, node_frag_milli};
use crate::framework::ScorePlugin;

fn env_f(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
struct Knobs {
    /// 0: weights by pod count (FGD), 1: by GPU demand, in between: mix.
    demand_weight: f64,
    trunc: bool,
    tie_full: bool,
    strand: f64,
    rho_mult: f64,
    waste: f64,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            demand_weight: env_f("MS_DEMAND", 0.0),
            trunc: env_f("MS_TRUNC", 0.0) > 0.5,
            tie_full: env_f("MS_TIEFULL", 1.0) > 0.5,
            strand: env_f("MS_STRAND", 0.0),
            rho_mult: env_f("MS_RHO", 1.0),
            waste: env_f("MS_W", 0.0),
        }
    }
}

const MEMO_MAX_GPUS: usize = 8;

#[derive(PartialEq, Eq, Hash)]
struct MemoKey {
    pod_cpu: i64,
    pod_count: u32,
    pod_milli: i64,
    pod_models: u64,
    node_model: u64,
    cpu_free: i64,
    gpu_free: [i16; MEMO_MAX_GPUS],
    gpus: u8,
}

fn hash_of(value: impl Hash) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

/// Shape counts seen so far, for the online learner.
#[derive(Debug, Clone, Default)]
pub struct ShapeCounts {
    counts: FxHashMap<Shape, u64>,
    total: u64,
}

impl ShapeCounts {
    pub fn add(&mut self, pod: &Pod) {
        *self.counts.entry(Shape::of(pod)).or_insert(0) += 1;
        self.total += 1;
    }
    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn typical(&self, coverage: f64) -> TypicalShapes {
        TypicalShapes::from_counts(self.counts.iter().map(|(s, n)| (s.clone(), *n)), coverage)
    }
}

pub struct MlschedScore {
    /// The prior (count-weighted typical shapes) as given, or learned so far.
    typical: TypicalShapes,
    /// The shapes the fragmentation is measured against (reweighted).
    measure: TypicalShapes,
    online: Option<ShapeCounts>,
    next_refresh: u64,
    knobs: Knobs,
    /// CPU milli the GPU workload asks per GPU milli.
    rho: f64,
    /// Expected eventual waste of a GPU by free milli, per node model.
    waste: Mutex<FxHashMap<String, std::sync::Arc<Vec<f64>>>>,
    memo: Mutex<FxHashMap<MemoKey, (i64, Option<usize>)>>,
}

fn reweight(typical: &TypicalShapes, demand_weight: f64) -> TypicalShapes {
    if demand_weight <= 0.0 {
        return typical.clone();
    }
    let demand: f64 = typical.shapes.iter().map(|w| w.weight * gpu_demand(&w.shape)).sum();
    if demand <= 0.0 {
        return typical.clone();
    }
    let shapes = typical
        .shapes
        .iter()
        .map(|w| WeightedShape {
            shape: w.shape.clone(),
            weight: (1.0 - demand_weight) * w.weight + demand_weight * w.weight * gpu_demand(&w.shape) / demand,
        })
        .collect();
    TypicalShapes { shapes }
}

fn cpu_per_gpu(typical: &TypicalShapes) -> f64 {
    let (mut cpu, mut gpu) = (0.0, 0.0);
    for w in &typical.shapes {
        let g = gpu_demand(&w.shape);
        if g > 0.0 {
            cpu += w.weight * w.shape.cpu_milli as f64;
            gpu += w.weight * g;
        }
    }
    if gpu > 0.0 { cpu / gpu } else { 0.0 }
}

/// Idle GPU milli the node's free CPU cannot feed, at `rho` CPU milli per GPU milli.
fn stranded(gpu_free: i64, cpu_free: i64, rho: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    (gpu_free as f64 - cpu_free.max(0) as f64 / rho).max(0.0)
}

/// `w[l]`: the GPU milli expected to stay idle on a GPU with `l` free if it is filled by pods drawn from
/// `typical` (those that fit, in proportion to their weight) until none fits.
fn waste_table(typical: &TypicalShapes, model: &str) -> Vec<f64> {
    let theta = env_f("MS_THETA", 0.0);
    let sizes: Vec<(usize, f64)> = typical
        .shapes
        .iter()
        .filter(|w| w.shape.milli_per_gpu > 0 && w.shape.allows_model(model))
        .map(|w| (w.shape.milli_per_gpu as usize, w.weight))
        .collect();
    let mut w = vec![0.0; GPU_MILLI as usize + 1];
    for l in 1..w.len() {
        let (mut num, mut den) = (0.0, 0.0);
        for &(m, p) in &sizes {
            if m <= l {
                num += p * w[l - m];
                den += p;
            }
        }
        let z = den.max(theta);
        w[l] = if z > 0.0 { num / z + (1.0 - den / z) * l as f64 } else { l as f64 };
    }
    w
}

fn gpu_demand(s: &Shape) -> f64 {
    (s.gpu_count as i64 * s.milli_per_gpu) as f64
}

impl MlschedScore {
    pub fn with_prior(typical: TypicalShapes) -> Self {
        let knobs = Knobs::from_env();
        let measure = reweight(&typical, knobs.demand_weight);
        let rho = cpu_per_gpu(&typical) * knobs.rho_mult;
        MlschedScore { typical, measure, online: None, next_refresh: u64::MAX, knobs, rho, waste: Mutex::new(FxHashMap::default()), memo: Mutex::new(FxHashMap::default()) }
    }

    pub fn online() -> Self {
        let knobs = Knobs::from_env();
        MlschedScore {
            typical: TypicalShapes::default(),
            measure: TypicalShapes::default(),
            online: Some(ShapeCounts::default()),
            next_refresh: 1,
            knobs,
            rho: 0.0,
            waste: Mutex::new(FxHashMap::default()),
            memo: Mutex::new(FxHashMap::default()),
        }
    }

    pub fn typical(&self) -> &TypicalShapes {
        &self.typical
    }

    fn evaluate(&self, node: &Node, pod: &Pod) -> (i64, Option<usize>) {
        let typical = &self.measure;
        if pod.gpu.is_none() && pod.requests.cpu_milli == 0 {
            return (i64::MAX / 4096, None);
        }
        let model = node.gpu_model().unwrap_or("");
        if !pod.gpu.is_none() && !pod.gpu.allows_model(model) {
            return (0, None);
        }
        let mut free: Vec<i64> = node.gpus.iter().map(|g| g.free_milli()).collect();
        let cpu_free = node.free_cpu_milli();
        let before = node_frag_milli(FreeView { cpu_free, gpu_free: &free, model }, typical);
        let cpu_after = cpu_free - pod.requests.cpu_milli;
        let milli = pod.gpu.milli_per_gpu;
        let idle: i64 = free.iter().sum();
        let k = self.knobs;
        let rho = self.rho;
        let strand_before = stranded(idle, cpu_free, rho);
        let table = if k.waste > 0.0 { Some(self.waste_table(model)) } else { None };
        let waste_of = |f: &[i64]| -> f64 { table.as_ref().map_or(0.0, |t| f.iter().map(|&x| t[x.clamp(0, GPU_MILLI) as usize]).sum()) };
        let waste_before = waste_of(&free);
        let score_of = |after: f64, idle_after: i64, waste_after: f64| -> i64 {
            let after = after + k.strand * (stranded(idle_after, cpu_after, rho) - strand_before) + k.waste * (waste_after - waste_before);
            let primary: i64 = if k.trunc {
                crate::plugins::fgd::fgd_score(before, after) * 1_000_000
            } else {
                ((before - after) * 1000.0).round() as i64 + 10_000_000
            };
            let secondary = if k.tie_full { 65535 - (idle_after * 8).min(65535) } else { 0 };
            primary * 65536 + secondary
        };
        if pod.gpu.is_shared() {
            let mut best: Option<(i64, usize)> = None;
            for i in 0..free.len() {
                if free[i] < milli || free[..i].contains(&free[i]) {
                    continue;
                }
                free[i] -= milli;
                let after = node_frag_milli(FreeView { cpu_free: cpu_after, gpu_free: &free, model }, typical);
                let waste_after = waste_of(&free);
                free[i] += milli;
                let score = score_of(after, idle - milli, waste_after);
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, i));
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
        let after = node_frag_milli(FreeView { cpu_free: cpu_after, gpu_free: &free, model }, typical);
        (score_of(after, idle - pod.gpu.total_milli(), waste_of(&free)), None)
    }

    fn waste_table(&self, model: &str) -> std::sync::Arc<Vec<f64>> {
        let mut cache = self.waste.lock().expect("waste lock");
        cache.entry(model.to_string()).or_insert_with(|| std::sync::Arc::new(waste_table(&self.measure, model))).clone()
    }

    fn memo_key(node: &Node, pod: &Pod) -> Option<MemoKey> {
        if node.gpus.len() > MEMO_MAX_GPUS {
            return None;
        }
        let mut gpu_free = [0i16; MEMO_MAX_GPUS];
        for (slot, g) in gpu_free.iter_mut().zip(&node.gpus) {
            *slot = g.free_milli() as i16;
        }
        Some(MemoKey {
            pod_cpu: pod.requests.cpu_milli,
            pod_count: pod.gpu.count,
            pod_milli: pod.gpu.milli_per_gpu,
            pod_models: pod.gpu.models.as_ref().map_or(0, hash_of),
            node_model: hash_of(node.gpu_model()),
            cpu_free: node.free_cpu_milli(),
            gpu_free,
            gpus: node.gpus.len() as u8,
        })
    }

    fn cached_evaluate(&self, node: &Node, pod: &Pod) -> (i64, Option<usize>) {
        let Some(key) = Self::memo_key(node, pod) else { return self.evaluate(node, pod) };
        if let Some(hit) = self.memo.lock().expect("memo lock").get(&key) {
            return *hit;
        }
        let result = self.evaluate(node, pod);
        self.memo.lock().expect("memo lock").insert(key, result);
        result
    }
}

impl ScorePlugin for MlschedScore {
    fn name(&self) -> &'static str {
        "MlschedScore"
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        self.cached_evaluate(&snapshot.nodes()[node], pod).0
    }

    fn pick_gpus(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Option<Vec<usize>> {
        self.cached_evaluate(&snapshot.nodes()[node], pod).1.map(|i| vec![i])
    }

    fn observe_arrival(&mut self, pod: &Pod) {
        let Some(counts) = self.online.as_mut() else { return };
        counts.add(pod);
        if counts.total() >= self.next_refresh {
            self.typical = counts.typical(TypicalShapes::DEFAULT_COVERAGE);
            self.measure = reweight(&self.typical, self.knobs.demand_weight);
            self.rho = cpu_per_gpu(&self.typical) * self.knobs.rho_mult;
            self.memo.get_mut().expect("memo lock").clear();
            self.waste.get_mut().expect("waste lock").clear();
            let n = counts.total();
            self.next_refresh = n + (n / 8).max(1);
        }
    }
}
