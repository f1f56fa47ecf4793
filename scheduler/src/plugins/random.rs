//! Random: every feasible node equally likely (the paper's baseline). Seeded and stateless: the score
//! of a node is a hash of (seed, pod, node), so a replay is reproducible and scoring needs no lock.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use crate::core::gpu::fitting_gpus;
use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::ScorePlugin;

pub struct RandomScore {
    pub seed: u64,
}

/// SplitMix64's finaliser: turns correlated inputs (consecutive node ids) into independent-looking bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RandomScore {
    fn draw(&self, pod: &Pod, salt: u64) -> u64 {
        let mut h = FxHasher::default();
        pod.key.hash(&mut h);
        mix(self.seed ^ mix(h.finish() ^ mix(salt)))
    }
}

impl ScorePlugin for RandomScore {
    fn name(&self) -> &'static str {
        "RandomScore"
    }

    fn score(&self, _snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        // Scores are weighted and summed; 2^40 keeps ties improbable and the weighted sum far from overflow.
        (self.draw(pod, node as u64) >> 24) as i64
    }

    /// A share goes to a uniformly drawn fitting GPU; whole GPUs to the lowest-index idle ones.
    fn pick_gpus(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Option<Vec<usize>> {
        if !pod.gpu.is_shared() {
            return None;
        }
        let gpus = &snapshot.node(node)?.gpus;
        fitting_gpus(gpus, &pod.gpu).max_by_key(|&i| self.draw(pod, (node as u64) << 8 | i as u64)).map(|i| vec![i])
    }
}
