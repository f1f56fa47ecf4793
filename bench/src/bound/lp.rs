//! The linear relaxation behind `mlsim bound`, and the certificate that makes its value a proof.
//!
//! Pods are grouped into shapes (CPU, memory, GPU count, milli per GPU, allowed models) and nodes into
//! types (CPU, memory, GPU count, model). `x[s][t]` is how many pods of shape `s` go to nodes of type `t`,
//! fractional. Every row holds for every integral placement, so the LP optimum is at least the GPU any
//! placement allocates:
//! - per node type, CPU, memory and GPU milli summed over its nodes, and the same three dimensions per
//!   node through dual feasible functions (Fekete and Schepers' `f_k`, `k` = 1, 2: an item of size `u`, a
//!   fraction of its bin, counts `f_k(u)` and a bin holds at most 1 of them, so two pods of 60 % of a
//!   node's CPU never share it);
//! - per GPU, the configuration LP of bin packing (Gilmore and Gomory): `y[c][t]` GPUs of type `t` hold
//!   configuration `c`, a multiset of pieces (shares, or 1000 for a GPU a whole-GPU pod takes) that fits in
//!   1000 milli; the pieces placed of each size are covered by the configurations chosen. Configurations
//!   are generated as needed: the most valuable one at the current prices (`gpu_configs`) joins the LP
//!   until none is worth more than a GPU costs.
//!
//! The solver's value is a floating-point approximation. The bound reported is the dual objective of the
//! solver's row prices after repair (negatives to 0; each shape's price raised until its columns are dual
//! feasible; each GPU's price raised to the value of the best configuration over *all* configurations,
//! found exactly by the pricing), an upper bound on the LP optimum by weak duality whatever the solver's
//! accuracy, and valid at every round of the generation, not only the last.

use std::sync::Arc;

use anyhow::{Context, bail};
use good_lp::constraint::ConstraintReference;
use good_lp::solvers::clarabel::clarabel;
use good_lp::{DualValues, Expression, ProblemVariables, SolutionWithDual, SolverModel, Variable, variable};
use mlsched::core::{GPU_MILLI, Node, Pod};

use super::gpu_configs::best_configuration;

/// Dual feasible functions applied per node dimension: `f_1` and `f_2` (the identity is the capacity row).
/// Adding `f_3` and `f_4` changed no bound on the default workload and made each solve ~4x slower.
const DFF_ORDERS: [i64; 2] = [1, 2];

/// Rounds of configuration generation at most; each round's certificate is a valid bound and the lowest
/// is kept, so stopping early loosens the bound but never invalidates it.
const MAX_ROUNDS: usize = 60;

/// GPUs of objective lost per pod that must run but is left out. The relaxation with the pods that must
/// run as a hard constraint is infeasible until the configurations that let them fit are generated; with
/// the penalty it is feasible from the first round, and at this price (over 100 times the GPUs any one
/// pod asks on the traces) it places every such pod that can be placed. The certificate does not use it.
const MISSING_POD_PENALTY: f64 = 1000.0;

/// Pods that must run, left out in total, above which the converged relaxation says none can run them
/// all (interior-point solutions carry ~1e-8 of noise).
const LEFT_OUT_TOLERANCE: f64 = 1e-3;

/// A configuration is added only when it is worth this much more than a GPU's price (solver noise).
const PRICING_TOLERANCE: f64 = 1e-6;

/// Which of the pods that arrived the relaxation must place; the others it may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MustRun {
    /// None: the bound holds for every placement. CPU-only pods are left out, since they only take room
    /// from GPU pods.
    Nothing,
    /// Every CPU-only pod that fits an empty node: the bound holds for placements that run them all, as a
    /// scheduler must while they fit.
    CpuOnlyPods,
    /// Every one-GPU pod (a share or one whole GPU) among the first `k` that arrived and fits an empty
    /// node: the bound holds for placements that fail none of them. Left free, the relaxation reaches its
    /// bound by leaving out such pods (shares that pack badly) and giving their room to pods that arrive
    /// later; a scheduler places each pod where it fits, and fails a one-GPU pod only when no GPU it may
    /// use has the room. Pods of several GPUs are not required: they need one node's GPUs together and
    /// fail much earlier.
    OneGpuPodsAmongTheFirst(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    cpu_milli: i64,
    memory_bytes: i64,
    gpus: u32,
    milli_per_gpu: i64,
    models: Option<Vec<Arc<str>>>,
}

/// A pod shape's size in one node dimension.
type SizeOf<'a> = &'a dyn Fn(&Shape) -> i64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeType {
    cpu_milli: i64,
    memory_bytes: i64,
    gpus: i64,
    model: Option<Arc<str>>,
}

/// One column: pods of a shape on one node type (`Some(shape)`, worth `gain` GPUs each), or GPUs of one
/// type holding one configuration (`None`, worth nothing by itself).
#[derive(Debug, Clone)]
struct Column {
    shape: Option<usize>,
    gain: f64,
}

/// `Σ coefficient · x ≤ rhs`.
#[derive(Debug, Clone)]
struct Row {
    terms: Vec<(usize, f64)>,
    rhs: f64,
}

/// One node type's GPUs: the row that counts them and, per piece size, the row that covers the pieces.
#[derive(Debug, Clone)]
struct GpuPool {
    count_row: usize,
    sizes: Vec<i64>,
    cover_rows: Vec<usize>,
}

/// The relaxation of placing `pods` (GPU pods only; others are dropped, which only loosens it) on `nodes`.
#[derive(Debug, Clone)]
pub struct Relaxation {
    shape_pods: Vec<f64>,
    /// Pods of each shape that must be placed (per [`MustRun`]).
    required: Vec<f64>,
    columns: Vec<Column>,
    rows: Vec<Row>,
    pools: Vec<GpuPool>,
    /// The GPUs all the pods ask: the bound never exceeds it.
    asked_gpus: f64,
}

/// What the relaxation proves: no placement allocates more than `upper_gpus` GPUs.
#[derive(Debug, Clone, Copy)]
pub struct Certified {
    pub upper_gpus: f64,
    /// The solver's primal value at the last round, for the record.
    pub solver_gpus: f64,
    /// Rounds of configuration generation run, and configurations generated.
    pub rounds: usize,
    pub configurations: usize,
}

/// Fekete–Schepers: `f_k(u) = u` where `(k+1)u` is an integer, else `⌊(k+1)u⌋ / k`; computed on integer
/// sizes so the integrality test is exact.
fn dff(k: i64, size: i64, capacity: i64) -> f64 {
    if capacity <= 0 {
        return 0.0;
    }
    let scaled = (k + 1) * size;
    if scaled % capacity == 0 { size as f64 / capacity as f64 } else { (scaled / capacity) as f64 / k as f64 }
}

fn shape_of(pod: &Pod) -> Shape {
    let mut models = pod.gpu.models.clone();
    if let Some(m) = &mut models {
        m.sort();
        m.dedup();
    }
    Shape {
        cpu_milli: pod.requests.cpu_milli,
        memory_bytes: pod.requests.memory_bytes,
        gpus: pod.gpu.count,
        milli_per_gpu: pod.gpu.milli_per_gpu,
        models,
    }
}

fn type_of(node: &Node) -> NodeType {
    let usable: Vec<_> = node.gpus.iter().filter(|g| g.mig.is_none()).collect();
    NodeType {
        cpu_milli: node.allocatable.cpu_milli - node.requested.cpu_milli,
        memory_bytes: node.allocatable.memory_bytes - node.requested.memory_bytes,
        gpus: usable.len() as i64,
        model: usable.first().map(|g| g.model.clone()),
    }
}

fn fits(shape: &Shape, node: &NodeType) -> bool {
    let model_ok = match (&shape.models, &node.model) {
        (None, Some(_)) => true,
        (Some(allowed), Some(model)) => allowed.contains(model),
        (_, None) => false,
    };
    model_ok
        && i64::from(shape.gpus) <= node.gpus
        && shape.cpu_milli <= node.cpu_milli
        && shape.memory_bytes <= node.memory_bytes
        && shape.milli_per_gpu <= GPU_MILLI
}

impl Relaxation {
    /// Nodes must be empty of GPU work and hold one GPU model each (the trace's node lists do).
    pub fn build<'a>(nodes: &[Node], pods: impl IntoIterator<Item = &'a Pod>, must_run: MustRun) -> Self {
        let mut shapes: Vec<Shape> = Vec::new();
        let mut shape_pods: Vec<f64> = Vec::new();
        let mut required: Vec<f64> = Vec::new();
        for (i, pod) in pods.into_iter().enumerate() {
            let must = match must_run {
                MustRun::Nothing => false,
                MustRun::CpuOnlyPods => pod.gpu.is_none(),
                MustRun::OneGpuPodsAmongTheFirst(k) => i < k && pod.gpu.count == 1,
            };
            if pod.gpu.is_none() && must_run != MustRun::CpuOnlyPods {
                continue;
            }
            let mut shape = shape_of(pod);
            if pod.gpu.is_none() {
                shape.gpus = 0;
                shape.milli_per_gpu = 0;
                shape.models = None;
            }
            let s = shapes.iter().position(|s| *s == shape).unwrap_or_else(|| {
                shapes.push(shape);
                shape_pods.push(0.0);
                required.push(0.0);
                shapes.len() - 1
            });
            shape_pods[s] += 1.0;
            if must {
                required[s] += 1.0;
            }
        }
        let mut types: Vec<(NodeType, f64)> = Vec::new();
        for node in nodes {
            let t = type_of(node);
            match types.iter_mut().find(|(u, _)| *u == t) {
                Some((_, n)) => *n += 1.0,
                None => types.push((t, 1.0)),
            }
        }
        let asked_gpus = shapes
            .iter()
            .zip(&shape_pods)
            .map(|(s, n)| n * f64::from(s.gpus) * s.milli_per_gpu as f64 / GPU_MILLI as f64)
            .sum();
        let mut relax =
            Relaxation { shape_pods, required, columns: Vec::new(), rows: Vec::new(), pools: Vec::new(), asked_gpus };
        for (t, count) in &types {
            relax.add_node_type(&shapes, t, *count);
        }
        // A shape no node can hold is one no placement runs: it is not required.
        for (s, required) in relax.required.iter_mut().enumerate() {
            if !relax.columns.iter().any(|c| c.shape == Some(s)) {
                *required = 0.0;
            }
        }
        relax
    }

    fn add_node_type(&mut self, shapes: &[Shape], t: &NodeType, count: f64) {
        let on_type: Vec<(usize, usize)> = shapes
            .iter()
            .enumerate()
            .filter(|(_, s)| fits(s, t))
            .map(|(i, s)| {
                let gain = f64::from(s.gpus) * s.milli_per_gpu as f64 / GPU_MILLI as f64;
                self.columns.push(Column { shape: Some(i), gain });
                (i, self.columns.len() - 1)
            })
            .collect();
        if on_type.is_empty() {
            return;
        }
        // Per node: each dimension's sum, and one row per dual feasible function.
        let node_dimensions: [(SizeOf, i64); 3] = [
            (&|s| s.cpu_milli, t.cpu_milli),
            (&|s| s.memory_bytes, t.memory_bytes),
            (&|s| i64::from(s.gpus) * s.milli_per_gpu, t.gpus * GPU_MILLI),
        ];
        for (size, bin) in node_dimensions {
            let bin = bin.max(1);
            let plain = on_type.iter().map(|&(s, c)| (c, size(&shapes[s]) as f64 / bin as f64)).collect();
            self.rows.push(Row { terms: plain, rhs: count });
            for k in DFF_ORDERS {
                let terms = on_type.iter().map(|&(s, c)| (c, dff(k, size(&shapes[s]), bin))).collect();
                self.rows.push(Row { terms, rhs: count });
            }
        }
        // Per GPU: a pod of `n` GPUs of `m` milli puts `n` pieces of size `m`; configurations cover them.
        let mut sizes: Vec<i64> =
            on_type.iter().filter(|&&(s, _)| shapes[s].gpus > 0).map(|&(s, _)| shapes[s].milli_per_gpu).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let cover_rows: Vec<usize> = sizes
            .iter()
            .map(|&m| {
                let terms = on_type
                    .iter()
                    .filter(|&&(s, _)| shapes[s].gpus > 0 && shapes[s].milli_per_gpu == m)
                    .map(|&(s, c)| (c, f64::from(shapes[s].gpus)))
                    .collect();
                self.rows.push(Row { terms, rhs: 0.0 });
                self.rows.len() - 1
            })
            .collect();
        self.rows.push(Row { terms: Vec::new(), rhs: count * t.gpus as f64 });
        let pool = GpuPool { count_row: self.rows.len() - 1, sizes, cover_rows };
        // Start with each size alone, as many as fit: the relaxation is feasible and every piece coverable.
        for (i, &m) in pool.sizes.iter().enumerate() {
            let mut counts = vec![0; pool.sizes.len()];
            counts[i] = (GPU_MILLI / m.max(1)) as u32;
            self.add_configuration(&pool, &counts);
        }
        self.pools.push(pool);
    }

    fn add_configuration(&mut self, pool: &GpuPool, counts: &[u32]) {
        let column = self.columns.len();
        self.columns.push(Column { shape: None, gain: 0.0 });
        for (&row, &n) in pool.cover_rows.iter().zip(counts) {
            if n > 0 {
                self.rows[row].terms.push((column, -f64::from(n)));
            }
        }
        self.rows[pool.count_row].terms.push((column, 1.0));
    }

    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    pub fn rows(&self) -> usize {
        self.rows.len() + self.shape_pods.len()
    }

    /// One LP solve: the primal value, the pods that must run but were left out (penalised, see
    /// [`MISSING_POD_PENALTY`]) and the row prices (shadow prices, nonnegative for these rows).
    fn solve_once(&self) -> anyhow::Result<(f64, f64, Vec<f64>)> {
        let mut vars = ProblemVariables::new();
        let x: Vec<Variable> = self.columns.iter().map(|_| vars.add(variable().min(0.0))).collect();
        let missing: Vec<Option<Variable>> =
            self.required.iter().map(|&r| (r > 0.0).then(|| vars.add(variable().min(0.0).max(r)))).collect();
        let gained: Expression =
            self.columns.iter().zip(&x).filter(|(c, _)| c.gain != 0.0).map(|(c, &v)| c.gain * v).sum();
        let penalty: Expression = missing.iter().flatten().map(|&v| MISSING_POD_PENALTY * v).sum();
        let mut model = vars.maximise(gained - penalty).using(clarabel);
        let lhs = |terms: &mut dyn Iterator<Item = (usize, f64)>| -> Expression { terms.map(|(j, a)| a * x[j]).sum() };
        let refs: Vec<ConstraintReference> =
            self.rows.iter().map(|r| model.add_constraint(lhs(&mut r.terms.iter().copied()).leq(r.rhs))).collect();
        for (s, &n) in self.shape_pods.iter().enumerate() {
            let mut terms = self.columns.iter().enumerate().filter(|(_, c)| c.shape == Some(s)).map(|(j, _)| (j, 1.0));
            let placed = lhs(&mut terms);
            if let Some(m) = missing[s] {
                model.add_constraint((placed.clone() + m).geq(self.required[s]));
            }
            model.add_constraint(placed.leq(n));
        }
        let mut solution = model.solve().context("solving the packing relaxation")?;
        let value = self.columns.iter().zip(&x).map(|(c, &v)| c.gain * good_lp::Solution::value(&solution, v)).sum();
        let left_out = missing.iter().flatten().map(|&v| good_lp::Solution::value(&solution, v)).sum();
        let duals = solution.compute_dual();
        Ok((value, left_out, refs.iter().map(|r| duals.dual(r.clone())).collect()))
    }

    /// Generates configurations until none is worth adding (or [`MAX_ROUNDS`]), and certifies an upper
    /// bound on the GPUs any placement allocates: the lowest certificate of any round. `None`: no
    /// placement runs every required pod.
    pub fn solve(&mut self) -> anyhow::Result<Option<Certified>> {
        let mut certified = Certified { upper_gpus: self.asked_gpus, solver_gpus: 0.0, rounds: 0, configurations: 0 };
        if self.columns.is_empty() {
            return Ok(Some(Certified { upper_gpus: 0.0, ..certified }));
        }
        let mut left_out = 0.0;
        let mut converged = false;
        for round in 1..=MAX_ROUNDS {
            let (value, missing, prices) = self.solve_once()?;
            left_out = missing;
            let prices: Vec<f64> = prices.iter().map(|p| p.max(0.0)).collect();
            certified.upper_gpus = certified.upper_gpus.min(self.certify(&prices));
            certified.solver_gpus = value;
            certified.rounds = round;
            let mut added = false;
            for pool in self.pools.clone() {
                let values: Vec<f64> = pool.cover_rows.iter().map(|&r| prices[r]).collect();
                let (worth, counts) = best_configuration(&pool.sizes, &values);
                if worth > prices[pool.count_row] + PRICING_TOLERANCE {
                    self.add_configuration(&pool, &counts);
                    certified.configurations += 1;
                    added = true;
                }
            }
            if !added {
                converged = true;
                break;
            }
        }
        // Over every configuration, the relaxation still leaves out pods that must run: none can run them
        // all. Before the generation converges the configurations generated may be what lacks.
        if converged && left_out > LEFT_OUT_TOLERANCE {
            return Ok(None);
        }
        if !certified.upper_gpus.is_finite() {
            bail!("the relaxation's certificate is not finite");
        }
        Ok(Some(certified))
    }

    /// Weak duality: for row prices `y ≥ 0`, each shape's best reduced gain `d_s = max over s's columns
    /// of gain − Σ a·y` and each pool's GPU price raised to the best configuration's value (over all
    /// configurations, generated or not), `Σ rhs·y + Σ_s (d_s ≥ 0 ? pods_s : required_s) · d_s` bounds
    /// every feasible placement: the shape's rows `placed ≤ pods` and `placed ≥ required` get the prices
    /// `max(d_s, 0)` and `max(−d_s, 0)`.
    pub fn certify(&self, y: &[f64]) -> f64 {
        let mut y: Vec<f64> = y.iter().map(|p| p.max(0.0)).collect();
        for pool in &self.pools {
            let values: Vec<f64> = pool.cover_rows.iter().map(|&r| y[r]).collect();
            let (worth, _) = best_configuration(&pool.sizes, &values);
            y[pool.count_row] = y[pool.count_row].max(worth);
        }
        let mut charged = vec![0.0; self.columns.len()];
        let mut bound = 0.0;
        for (r, &price) in self.rows.iter().zip(&y) {
            if price == 0.0 {
                continue;
            }
            bound += r.rhs * price;
            for &(j, a) in &r.terms {
                charged[j] += a * price;
            }
        }
        let mut reduced_gain = vec![f64::NEG_INFINITY; self.shape_pods.len()];
        for (c, charge) in self.columns.iter().zip(&charged) {
            if let Some(s) = c.shape {
                reduced_gain[s] = reduced_gain[s].max(c.gain - charge);
            }
        }
        // A shape without columns has no pods that must run (`build`): it adds nothing.
        for ((&d, &pods), &required) in reduced_gain.iter().zip(&self.shape_pods).zip(&self.required) {
            if d >= 0.0 {
                bound += pods * d;
            } else if d.is_finite() {
                // Pods that must run are placed even at a loss, which may lower the bound.
                bound += required * d;
            }
        }
        bound.min(self.asked_gpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlsched::core::{GpuRequest, MIB, Resources};
    use proptest::prelude::*;

    fn node(name: &str, cores: i64, gpus: usize, model: &str) -> Node {
        Node::new(name, Resources::new(cores * 1000, 64 * 1024 * MIB, 110)).with_gpus(gpus, model)
    }

    fn pod(i: usize, cores: i64, gpu: GpuRequest) -> Pod {
        Pod::new(format!("p{i}"), Resources::new(cores * 1000, MIB, 1), gpu)
    }

    fn bound(nodes: &[Node], pods: &[Pod]) -> f64 {
        let c = Relaxation::build(nodes, pods, MustRun::Nothing).solve().unwrap().expect("feasible");
        // The repaired certificate stays within the solver's tolerance of its primal value.
        assert!((c.upper_gpus - c.solver_gpus).abs() <= 1e-3 * c.solver_gpus.max(1.0), "{c:?}");
        c.upper_gpus
    }

    #[test]
    fn dual_feasible_functions_match_their_definition() {
        assert_eq!(dff(1, 600, 1000), 1.0);
        assert_eq!(dff(1, 500, 1000), 0.5);
        assert_eq!(dff(1, 400, 1000), 0.0);
        assert_eq!(dff(2, 400, 1000), 0.5);
        assert_eq!(dff(2, 300, 1000), 0.0);
        assert_eq!(dff(3, 300, 1000), 1.0 / 3.0);
        assert_eq!(dff(3, 250, 1000), 0.25);
    }

    #[test]
    fn three_shares_of_400_never_fit_one_gpu() {
        let pods: Vec<Pod> = (0..3).map(|i| pod(i, 1, GpuRequest::shared(400))).collect();
        let b = bound(&[node("n", 8, 1, "T4")], &pods);
        assert!((b - 0.8).abs() < 1e-6, "{b}");
    }

    #[test]
    fn cpu_that_one_node_cannot_feed_twice_caps_the_bound() {
        let pods: Vec<Pod> = (0..2).map(|i| pod(i, 6, GpuRequest::whole(1))).collect();
        let b = bound(&[node("n", 8, 2, "T4")], &pods);
        assert!((b - 1.0).abs() < 1e-6, "{b}");
    }

    #[test]
    fn a_model_the_cluster_lacks_allocates_nothing() {
        let pods = vec![pod(0, 1, GpuRequest::whole(1).with_models(vec!["V100".into()]))];
        assert_eq!(bound(&[node("n", 8, 2, "T4")], &pods), 0.0);
    }

    #[test]
    fn cpu_only_pods_that_must_run_take_the_cpu_gpu_pods_need() {
        let nodes = [node("n", 8, 2, "T4")];
        let pods = vec![pod(0, 8, GpuRequest::none()), pod(1, 1, GpuRequest::whole(1))];
        assert!((bound(&nodes, &pods) - 1.0).abs() < 1e-6);
        let all_placed = Relaxation::build(&nodes, &pods, MustRun::CpuOnlyPods).solve().unwrap().expect("feasible");
        assert!(all_placed.upper_gpus < 1e-6, "{all_placed:?}");
        // Two CPU-only pods of 6 cores never run together on one 8-core node.
        let pods = vec![pod(0, 6, GpuRequest::none()), pod(1, 6, GpuRequest::none())];
        assert!(Relaxation::build(&nodes, &pods, MustRun::CpuOnlyPods).solve().unwrap().is_none());
    }

    #[test]
    fn the_certificate_is_valid_for_any_prices() {
        let pods: Vec<Pod> = (0..4).map(|i| pod(i, 2, GpuRequest::shared(300))).collect();
        let relax = Relaxation::build(&[node("n", 8, 1, "T4")], &pods, MustRun::Nothing);
        // Any nonnegative prices bound the optimum (0.9 GPU: three shares of 300); none goes below it.
        for scale in [0.0, 0.1, 1.0, 7.0] {
            let y = vec![scale; relax.rows.len()];
            assert!(relax.certify(&y) >= 0.9 - 1e-9, "prices {scale}: {}", relax.certify(&y));
        }
    }

    /// The best allocation of tiny instances by exhaustive search: each pod on a node (and on which GPUs)
    /// or, unless `must_run` says it must run, left out. `None`: no placement runs every such pod.
    fn optimum(nodes: &[Node], pods: &[Pod], must_run: &dyn Fn(usize, &Pod) -> bool) -> Option<f64> {
        type NodeRoom = (i64, Vec<i64>, String);
        fn place(
            i: usize,
            pods: &[Pod],
            must_run: &dyn Fn(usize, &Pod) -> bool,
            nodes: &mut [NodeRoom],
            gained: i64,
            best: &mut Option<i64>,
        ) {
            if i == pods.len() {
                *best = Some(best.map_or(gained, |b| b.max(gained)));
                return;
            }
            let p = &pods[i];
            if !must_run(i, p) {
                place(i + 1, pods, must_run, nodes, gained, best);
            }
            for n in 0..nodes.len() {
                if nodes[n].0 < p.requests.cpu_milli || !p.gpu.allows_model(&nodes[n].2) {
                    continue;
                }
                // Each subset of GPUs of the right size with room (a tiny search).
                let gpus = nodes[n].1.len();
                for mask in 0u32..(1 << gpus) {
                    if mask.count_ones() != p.gpu.count
                        || (0..gpus).any(|g| mask & (1 << g) != 0 && nodes[n].1[g] < p.gpu.milli_per_gpu)
                    {
                        continue;
                    }
                    nodes[n].0 -= p.requests.cpu_milli;
                    (0..gpus).filter(|g| mask & (1 << g) != 0).for_each(|g| nodes[n].1[g] -= p.gpu.milli_per_gpu);
                    place(i + 1, pods, must_run, nodes, gained + p.gpu.total_milli(), best);
                    nodes[n].0 += p.requests.cpu_milli;
                    (0..gpus).filter(|g| mask & (1 << g) != 0).for_each(|g| nodes[n].1[g] += p.gpu.milli_per_gpu);
                }
            }
        }
        let mut state: Vec<NodeRoom> = nodes
            .iter()
            .map(|n| (n.allocatable.cpu_milli, vec![GPU_MILLI; n.gpus.len()], n.gpus[0].model.to_string()))
            .collect();
        let mut best = None;
        place(0, pods, must_run, &mut state, 0, &mut best);
        best.map(|b| b as f64 / GPU_MILLI as f64)
    }

    #[test]
    fn gpu_pods_that_must_run_keep_their_room_from_later_ones() {
        // One GPU: a 600-milli share, then a whole-GPU pod. Left free, the best is the whole GPU; a
        // placement that runs the first pod allocates 0.6.
        let nodes = [node("n", 8, 1, "T4")];
        let pods = vec![pod(0, 1, GpuRequest::shared(600)), pod(1, 1, GpuRequest::whole(1))];
        assert!((bound(&nodes, &pods) - 1.0).abs() < 1e-6);
        let first_runs =
            Relaxation::build(&nodes, &pods, MustRun::OneGpuPodsAmongTheFirst(1)).solve().unwrap().expect("feasible");
        assert!((first_runs.upper_gpus - 0.6).abs() < 1e-6, "{first_runs:?}");
        // Two shares of 600 never share the GPU: no placement runs both.
        let pods = vec![pod(0, 1, GpuRequest::shared(600)), pod(1, 1, GpuRequest::shared(600))];
        assert!(Relaxation::build(&nodes, &pods, MustRun::OneGpuPodsAmongTheFirst(2)).solve().unwrap().is_none());
        // Shares of 300 and 700 fit one GPU only together: a configuration the generation has to find.
        let pods = vec![pod(0, 1, GpuRequest::shared(300)), pod(1, 1, GpuRequest::shared(700))];
        let both = Relaxation::build(&nodes, &pods, MustRun::OneGpuPodsAmongTheFirst(2)).solve().unwrap();
        assert!((both.expect("300 + 700 fit one GPU").upper_gpus - 1.0).abs() < 1e-6);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn the_bound_is_never_below_the_exhaustive_optimum(
            specs in proptest::collection::vec((1i64..6, 0usize..4, 1u32..3, 0usize..2), 1..6),
            first in 0usize..6,
        ) {
            let nodes = vec![node("a", 8, 2, "T4"), node("b", 6, 2, "V100")];
            let shares = [250, 400, 600, 1000];
            let pods: Vec<Pod> = specs.iter().enumerate().map(|(i, &(cores, share, count, model))| {
                let gpu = if shares[share] == 1000 { GpuRequest::whole(count) } else { GpuRequest::shared(shares[share]) };
                let gpu = if model == 1 { gpu.with_models(vec!["V100".into()]) } else { gpu };
                pod(i, cores, gpu)
            }).collect();
            let best = optimum(&nodes, &pods, &|_, _| false).expect("leaving every pod out is a placement");
            let b = bound(&nodes, &pods);
            prop_assert!(b + 1e-6 >= best, "bound {b} below optimum {best}");
            let first = first % (pods.len() + 1);
            if let Some(best) = optimum(&nodes, &pods, &|i, p| i < first && p.gpu.count == 1) {
                let relax = Relaxation::build(&nodes, &pods, MustRun::OneGpuPodsAmongTheFirst(first)).solve().unwrap();
                let b = relax.expect("a placement runs the first pods, so the relaxation is feasible").upper_gpus;
                prop_assert!(b + 1e-6 >= best, "bound {b} below the optimum {best} that runs the first {first}");
            }
        }
    }
}
