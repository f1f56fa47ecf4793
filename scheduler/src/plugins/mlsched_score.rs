//! mlsched's GPU packing policy (draft).

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use rustc_hash::{FxHashMap, FxHasher};

use crate::core::{Node, NodeId, Pod, Snapshot};
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
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            demand_weight: env_f("MS_DEMAND", 0.0),
            trunc: env_f("MS_TRUNC", 0.0) > 0.5,
            tie_full: env_f("MS_TIEFULL", 1.0) > 0.5,
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

fn gpu_demand(s: &Shape) -> f64 {
    (s.gpu_count as i64 * s.milli_per_gpu) as f64
}

impl MlschedScore {
    pub fn with_prior(typical: TypicalShapes) -> Self {
        let knobs = Knobs::from_env();
        let measure = reweight(&typical, knobs.demand_weight);
        MlschedScore { typical, measure, online: None, next_refresh: u64::MAX, knobs, memo: Mutex::new(FxHashMap::default()) }
    }

    pub fn online() -> Self {
        let knobs = Knobs::from_env();
        MlschedScore {
            typical: TypicalShapes::default(),
            measure: TypicalShapes::default(),
            online: Some(ShapeCounts::default()),
            next_refresh: 1,
            knobs,
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
        let score_of = |after: f64, idle_after: i64| -> i64 {
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
                free[i] += milli;
                let score = score_of(after, idle - milli);
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
        (score_of(after, idle - pod.gpu.total_milli()), None)
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
            self.memo.get_mut().expect("memo lock").clear();
            let n = counts.total();
            self.next_refresh = n + (n / 8).max(1);
        }
    }
}
