//! GPU fragmentation as defined by the FGD paper (Weng et al., USENIX ATC '23).
//!
//! Fragmentation is measured against the *typical* request shapes of a workload: for a shape that can
//! run on a node, the GPUs too small to hold one share of it are fragments; for a shape that cannot run
//! there at all (wrong model, not enough CPU or GPUs, or no GPU asked for), every idle GPU milli of the
//! node is. A node's fragmentation is the frequency-weighted sum over the shapes.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::core::{GpuRequest, Node, Pod};

/// A request shape: what decides whether a pod can use a node's free GPUs. Memory is not part of it, as in
/// the paper.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    pub cpu_milli: i64,
    pub gpu_count: u32,
    pub milli_per_gpu: i64,
    pub models: Option<Vec<Arc<str>>>,
}

impl Shape {
    pub fn of(pod: &Pod) -> Shape {
        let (gpu_count, milli_per_gpu, models) = if pod.gpu.is_none() {
            (0, 0, None)
        } else {
            (pod.gpu.count, pod.gpu.milli_per_gpu, pod.gpu.models.clone())
        };
        Shape { cpu_milli: pod.requests.cpu_milli, gpu_count, milli_per_gpu, models }
    }

    fn models_key(&self) -> String {
        self.models.as_ref().map(|m| m.iter().map(|s| &**s).collect::<Vec<_>>().join("|")).unwrap_or_default()
    }

    pub fn allows_model(&self, model: &str) -> bool {
        GpuRequest { count: self.gpu_count, milli_per_gpu: self.milli_per_gpu, models: self.models.clone() }
            .allows_model(model)
    }
}

/// A shape with its share of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedShape {
    pub shape: Shape,
    pub weight: f64,
}

/// The shapes that together make up `coverage` of a workload's pods, most frequent first, with weights
/// renormalised to sum to 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypicalShapes {
    pub shapes: Vec<WeightedShape>,
}

impl TypicalShapes {
    pub const DEFAULT_COVERAGE: f64 = 0.95;

    /// From pod counts per shape. Ties in count are broken by larger CPU, then larger per-GPU milli, then
    /// more GPUs, then the model list, so the result never depends on input order.
    pub fn from_counts(counts: impl IntoIterator<Item = (Shape, u64)>, coverage: f64) -> TypicalShapes {
        TypicalShapes::from_weights(counts.into_iter().map(|(s, n)| (s, n as f64)), coverage)
    }

    /// From nonnegative weights per shape (counts, or counts that fade with age), ordered and cut as
    /// [`TypicalShapes::from_counts`].
    pub fn from_weights(weights: impl IntoIterator<Item = (Shape, f64)>, coverage: f64) -> TypicalShapes {
        let mut counts: Vec<(Shape, f64)> = weights.into_iter().filter(|(_, n)| *n > 0.0).collect();
        let total: f64 = counts.iter().map(|(_, n)| n).sum();
        if total <= 0.0 {
            return TypicalShapes::default();
        }
        counts.sort_by(|(a, na), (b, nb)| {
            nb.total_cmp(na)
                .then(b.cpu_milli.cmp(&a.cpu_milli))
                .then(b.milli_per_gpu.cmp(&a.milli_per_gpu))
                .then(b.gpu_count.cmp(&a.gpu_count))
                .then(b.models_key().cmp(&a.models_key()))
        });
        let mut taken = 0.0;
        let mut prefix = 0;
        while prefix < counts.len() && taken < coverage * total {
            taken += counts[prefix].1;
            prefix += 1;
        }
        counts.truncate(prefix);
        let shapes = counts.into_iter().map(|(shape, n)| WeightedShape { shape, weight: n / taken }).collect();
        TypicalShapes { shapes }
    }

    pub fn from_pods<'a>(pods: impl IntoIterator<Item = &'a Pod>, coverage: f64) -> TypicalShapes {
        let mut counts: FxHashMap<Shape, u64> = FxHashMap::default();
        for pod in pods {
            *counts.entry(Shape::of(pod)).or_insert(0) += 1;
        }
        TypicalShapes::from_counts(counts, coverage)
    }

    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }
}

/// The free state of a node as fragmentation sees it.
#[derive(Debug, Clone, Copy)]
pub struct FreeView<'a> {
    pub cpu_free: i64,
    pub gpu_free: &'a [i64],
    pub model: &'a str,
}

/// Fragmented GPU milli of a node with `view` free, against `typical`.
pub fn node_frag_milli(view: FreeView<'_>, typical: &TypicalShapes) -> f64 {
    if view.gpu_free.is_empty() {
        return 0.0;
    }
    let idle: i64 = view.gpu_free.iter().sum();
    let mut frag = 0.0;
    for ws in &typical.shapes {
        frag += ws.weight * shape_frag_milli(view, idle, &ws.shape) as f64;
    }
    frag
}

/// Fragmented GPU milli of one node for one shape.
pub fn shape_frag_milli(view: FreeView<'_>, idle: i64, shape: &Shape) -> i64 {
    // A shape without GPUs can never use idle GPUs, so to it they are all fragments.
    if shape.milli_per_gpu == 0 || !shape.allows_model(view.model) || view.cpu_free < shape.cpu_milli {
        return idle;
    }
    let mut fitting = 0u32;
    let mut too_small = 0i64;
    for &free in view.gpu_free {
        if free >= shape.milli_per_gpu {
            fitting += 1;
        } else {
            too_small += free;
        }
    }
    if fitting >= shape.gpu_count { too_small } else { idle }
}

/// The free view of a live node.
pub fn free_gpu_milli(node: &Node) -> Vec<i64> {
    node.gpus.iter().map(|g| g.free_milli()).collect()
}

/// Fragmented GPU milli of `node` as it is now.
pub fn current_node_frag_milli(node: &Node, typical: &TypicalShapes) -> f64 {
    let gpu_free = free_gpu_milli(node);
    let view = FreeView { cpu_free: node.free_cpu_milli(), gpu_free: &gpu_free, model: node.gpu_model().unwrap_or("") };
    node_frag_milli(view, typical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, Resources};

    fn shape(cpu: i64, count: u32, milli: i64) -> Shape {
        Shape { cpu_milli: cpu, gpu_count: count, milli_per_gpu: milli, models: None }
    }

    #[test]
    fn typical_shapes_cover_95_percent_most_frequent_first() {
        let counts =
            vec![(shape(1000, 1, 500), 60), (shape(2000, 1, 1000), 36), (shape(4000, 8, 1000), 3), (shape(0, 0, 0), 1)];
        let t = TypicalShapes::from_counts(counts, 0.95);
        // 60 + 36 = 96 >= 95: two shapes, renormalised over 96 pods.
        assert_eq!(t.len(), 2);
        assert_eq!(t.shapes[0].shape, shape(1000, 1, 500));
        assert!((t.shapes[0].weight - 60.0 / 96.0).abs() < 1e-12);
        assert!((t.shapes[1].weight - 36.0 / 96.0).abs() < 1e-12);
    }

    #[test]
    fn ties_in_count_prefer_larger_cpu_then_larger_share() {
        let counts = vec![(shape(1000, 1, 500), 10), (shape(1000, 1, 700), 10), (shape(2000, 1, 100), 10)];
        let t = TypicalShapes::from_counts(counts, 1.0);
        let order: Vec<_> = t.shapes.iter().map(|w| (w.shape.cpu_milli, w.shape.milli_per_gpu)).collect();
        assert_eq!(order, vec![(2000, 100), (1000, 700), (1000, 500)]);
    }

    /// A hand-computed example. Node: 4 GPUs free [1000, 600, 300, 0] (idle 1900), 8 CPUs free, model V100.
    /// Shapes (weights): A = 1×500 milli, 2 CPUs (0.5); B = 2 whole GPUs, 4 CPUs (0.25);
    /// C = CPU-only (0.125); D = 1×200 milli on T4 only (0.125).
    /// A fits: fragments are GPUs with < 500 free: 300 + 0 = 300.
    /// B needs 2 GPUs with 1000 free, only one has: all idle, 1900.
    /// C uses no GPU: all idle, 1900. D wrong model: all idle, 1900.
    /// F = 0.5·300 + 0.25·1900 + 0.125·1900 + 0.125·1900 = 150 + 475 + 237.5 + 237.5 = 1100.
    #[test]
    fn node_fragmentation_matches_a_hand_computed_example() {
        let t4 = Shape { models: Some(vec!["T4".into()]), ..shape(1000, 1, 200) };
        let typical = TypicalShapes {
            shapes: vec![
                WeightedShape { shape: shape(2000, 1, 500), weight: 0.5 },
                WeightedShape { shape: shape(4000, 2, 1000), weight: 0.25 },
                WeightedShape { shape: shape(1000, 0, 0), weight: 0.125 },
                WeightedShape { shape: t4, weight: 0.125 },
            ],
        };
        let view = FreeView { cpu_free: 8000, gpu_free: &[1000, 600, 300, 0], model: "V100" };
        assert!((node_frag_milli(view, &typical) - 1100.0).abs() < 1e-9);
        // With too little CPU for A, A's fragment becomes the whole idle 1900: F = 950 + 475 + 475 = 1900.
        let starved = FreeView { cpu_free: 1000, ..view };
        assert!((node_frag_milli(starved, &typical) - 1900.0).abs() < 1e-9);
        // A node without GPUs has no GPU fragments at all.
        assert_eq!(node_frag_milli(FreeView { cpu_free: 8000, gpu_free: &[], model: "" }, &typical), 0.0);
    }

    #[test]
    fn current_frag_reads_the_node() {
        let mut node = Node::new("n", Resources::new(8000, 1, 10)).with_gpus(2, "G2");
        node.gpus[0].used_milli = 800;
        let typical = TypicalShapes { shapes: vec![WeightedShape { shape: shape(0, 1, 500), weight: 1.0 }] };
        assert_eq!(current_node_frag_milli(&node, &typical), 200.0);
        let pods = [Pod::new("a", Resources::new(1, 1, 1), GpuRequest::shared(500))];
        assert_eq!(TypicalShapes::from_pods(pods.iter(), 0.95).shapes[0].shape, shape(1, 1, 500));
    }
}
