//! Scores memoised by (node state, pod shape), for the fragmentation-aware policies.
//!
//! Many nodes share a state (all idle nodes of a model, say), and a replay sees the same shapes again and
//! again: this is what makes FGD and mlsched fast enough for 10k nodes. The key holds everything the
//! score reads of a node (model, free CPU, each GPU's free milli) and of a pod (CPU, GPU request, models).

use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::{FxHashMap, FxHasher};

use crate::core::{Node, Pod};

/// Nodes with more GPUs than this are scored without the memo.
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

impl MemoKey {
    fn of(node: &Node, pod: &Pod) -> Option<MemoKey> {
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
}

/// A score and the GPU a share should take, by (node state, pod shape).
#[derive(Default)]
pub struct ScoreMemo {
    map: Mutex<FxHashMap<MemoKey, (i64, Option<usize>)>>,
    /// How many times the memo was cleared.
    generation: AtomicU64,
}

impl ScoreMemo {
    /// The memoised result for `pod` on a node in `node`'s state, computing it with `compute` once.
    pub fn get_or_compute(
        &self,
        node: &Node,
        pod: &Pod,
        compute: impl FnOnce() -> (i64, Option<usize>),
    ) -> (i64, Option<usize>) {
        let Some(key) = MemoKey::of(node, pod) else { return compute() };
        if let Some(hit) = self.map.lock().expect("memo lock").get(&key) {
            return *hit;
        }
        let result = compute();
        self.map.lock().expect("memo lock").insert(key, result);
        result
    }

    /// Forgets every score, for when what the scores depend on beyond the key changed.
    pub fn clear(&self) {
        self.map.lock().expect("memo lock").clear();
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever the memo is cleared, so that caches of its scores can tell.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}
