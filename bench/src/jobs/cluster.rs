//! The generated fat-tree cluster: `NODES x GPUS x NODES_PER_RACK x RACKS_PER_SPINE`.
//!
//! Nodes carry `network.mlsched.io/spine`, `network.mlsched.io/rack` and `kubernetes.io/hostname`, and
//! ample CPU, memory and pod slots (the job traces record none, so only GPUs and topology decide). Node
//! names are a fixed pseudo-random permutation (`n<hash>`), so the framework's tie-break by smallest name
//! does not secretly follow rack order: a policy that ignores topology gets no locality by accident.

use std::fmt;
use std::str::FromStr;

use mlsched::core::{Node, Resources};
use mlsched::topology::HOSTNAME_LABEL;

use super::trace::Job;

pub const SPINE_LABEL: &str = "network.mlsched.io/spine";
pub const RACK_LABEL: &str = "network.mlsched.io/rack";
pub const GPU_MODEL: &str = "GPU";
/// 1000 cores, 4 TiB and 1000 pod slots per node: never the binding constraint.
pub const NODE_CPU_MILLI: i64 = 1_000_000;
pub const NODE_MEMORY_BYTES: i64 = 4 << 40;
pub const NODE_PODS: i64 = 1000;

/// The target mean load of the default cluster: offered GPU demand / GPU capacity.
pub const DEFAULT_TARGET_LOAD: f64 = 0.7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSpec {
    pub nodes: usize,
    pub gpus_per_node: u32,
    pub nodes_per_rack: usize,
    pub racks_per_spine: usize,
}

impl ClusterSpec {
    pub fn gpus(&self) -> u64 {
        self.nodes as u64 * u64::from(self.gpus_per_node)
    }

    pub fn racks(&self) -> usize {
        self.nodes.div_ceil(self.nodes_per_rack)
    }

    pub fn spines(&self) -> usize {
        self.racks().div_ceil(self.racks_per_spine)
    }

    /// Node `i` sits in rack `i / nodes_per_rack`, spine `rack / racks_per_spine` (the last rack or
    /// spine may be partly filled).
    pub fn build(&self) -> Vec<Node> {
        (0..self.nodes)
            .map(|i| {
                let rack = i / self.nodes_per_rack;
                let spine = rack / self.racks_per_spine;
                let name = format!("n{:016x}", splitmix64(i as u64));
                Node::new(name.clone(), Resources::new(NODE_CPU_MILLI, NODE_MEMORY_BYTES, NODE_PODS))
                    .with_gpus(self.gpus_per_node as usize, GPU_MODEL)
                    .with_label(SPINE_LABEL, format!("s{spine}"))
                    .with_label(RACK_LABEL, format!("s{spine}-r{rack}"))
                    .with_label(HOSTNAME_LABEL, name)
            })
            .collect()
    }

    /// The default cluster for a trace: [`ClusterSpec::sized_for`] at [`DEFAULT_TARGET_LOAD`].
    pub fn default_for(jobs: &[Job]) -> ClusterSpec {
        Self::sized_for(jobs, DEFAULT_TARGET_LOAD)
    }

    /// The cluster for a trace at a target load, 8-GPU nodes, 8 nodes per rack, 4 racks per spine:
    /// GPUs = offered demand / `load`, where offered demand = Σ gpus × duration over
    /// the span from first to last submission (the mean number of busy GPUs if nothing ever waited);
    /// at least twice the largest gang; rounded up to whole racks.
    pub fn sized_for(jobs: &[Job], load: f64) -> ClusterSpec {
        let (gpus_per_node, nodes_per_rack, racks_per_spine) = (8u32, 8usize, 4usize);
        let gpu_seconds: f64 = jobs.iter().map(|j| j.duration * f64::from(j.gpus)).sum();
        let span = jobs.last().map_or(0.0, |j| j.submit) - jobs.first().map_or(0.0, |j| j.submit);
        let span = if span > 0.0 { span } else { jobs.iter().map(|j| j.duration).fold(1.0, f64::max) };
        let demand = gpu_seconds / span;
        let by_load = (demand / load / f64::from(gpus_per_node)).ceil() as usize;
        let largest = jobs.iter().map(|j| j.gpus).max().unwrap_or(1);
        let by_gang = 2 * largest.div_ceil(gpus_per_node) as usize;
        let nodes = by_load.max(by_gang).max(1).div_ceil(nodes_per_rack) * nodes_per_rack;
        ClusterSpec { nodes, gpus_per_node, nodes_per_rack, racks_per_spine }
    }
}

impl fmt::Display for ClusterSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}x{}", self.nodes, self.gpus_per_node, self.nodes_per_rack, self.racks_per_spine)
    }
}

impl FromStr for ClusterSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(['x', 'X', '×']).map(str::trim).collect();
        let usage =
            || format!("cluster {s:?}: expected NODES x GPUS x NODES_PER_RACK x RACKS_PER_SPINE, e.g. 64x8x8x4");
        if parts.len() != 4 {
            return Err(usage());
        }
        let mut n = [0usize; 4];
        for (slot, part) in n.iter_mut().zip(&parts) {
            *slot = part.parse().map_err(|_| usage())?;
            if *slot == 0 {
                return Err(format!("cluster {s:?}: every count must be at least 1"));
            }
        }
        let gpus_per_node = u32::try_from(n[1]).map_err(|_| usage())?;
        Ok(ClusterSpec { nodes: n[0], gpus_per_node, nodes_per_rack: n[2], racks_per_spine: n[3] })
    }
}

/// A bijection on u64 (SplitMix64's finalizer): distinct node indexes get distinct, unordered names.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_and_builds_a_fat_tree() {
        let spec: ClusterSpec = "20x8x8x2".parse().unwrap();
        assert_eq!((spec.racks(), spec.spines(), spec.gpus()), (3, 2, 160));
        let nodes = spec.build();
        assert_eq!(nodes.len(), 20);
        assert_eq!(nodes[0].labels[RACK_LABEL], "s0-r0");
        assert_eq!(nodes[19].labels[RACK_LABEL], "s1-r2");
        assert_eq!(nodes[19].labels[SPINE_LABEL], "s1");
        assert_eq!(nodes[5].gpus.len(), 8);
        assert_eq!("4×8×2×2".parse::<ClusterSpec>().unwrap().nodes, 4);
        assert!("64x8x8".parse::<ClusterSpec>().is_err());
        assert!("64x0x8x4".parse::<ClusterSpec>().is_err());
        assert_eq!(spec.to_string(), "20x8x8x2");
    }

    #[test]
    fn default_size_follows_load_and_largest_gang() {
        let job = |submit: f64, duration: f64, gpus: u32| Job { id: String::new(), submit, duration, gpus, vc: None };
        // 100 GPU-days over 1 day of submissions: 100 GPUs busy on average, / 0.7 = 143 → 18 nodes → 3 racks.
        let jobs = vec![job(0.0, 86_400.0, 50), job(86_400.0, 86_400.0, 50)];
        assert_eq!(ClusterSpec::default_for(&jobs).nodes, 24);
        // At load 1.0: 100 GPUs → 13 nodes → 2 racks.
        assert_eq!(ClusterSpec::sized_for(&jobs, 1.0).nodes, 16);
        // A 128-GPU gang needs 2 × 16 nodes.
        let jobs = vec![job(0.0, 10.0, 128), job(86_400.0, 10.0, 1)];
        assert_eq!(ClusterSpec::default_for(&jobs).nodes, 32);
    }
}
