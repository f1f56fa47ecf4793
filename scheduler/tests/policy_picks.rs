//! Each paper policy's pick on small hand-built clusters where the right answer is known, and the cycle's
//! own rules (tie-break, explained failure).

use mlsched::core::{GpuRequest, MIB, Node, Pod, Resources, Snapshot};
use mlsched::frag::{Shape, TypicalShapes, WeightedShape};
use mlsched::framework::{Profile, schedule_one};
use mlsched::plugins::policy::{Policy, PolicyInputs, default_filters, profile_for};
use mlsched::plugins::*;

fn node(name: &str, cpu: i64, gpus: usize) -> Node {
    Node::new(name, Resources::new(cpu, 512 * 1024 * MIB, 110)).with_gpus(gpus, "G2")
}

fn pod(name: &str, cpu: i64, gpu: GpuRequest) -> Pod {
    Pod::new(name, Resources::new(cpu, MIB, 1), gpu)
}

fn use_gpu(s: &mut Snapshot, node: &str, gpu: usize, milli: i64) {
    let id = s.node_id(node).unwrap();
    let filler = pod(&format!("filler-{node}-{gpu}-{milli}"), 0, GpuRequest::shared(milli));
    s.assume(&filler, id, &[gpu]).unwrap();
}

fn pick(profile: &Profile, s: &Snapshot, p: &Pod) -> (String, Vec<usize>) {
    let d = schedule_one(profile, s, p).unwrap();
    (s.nodes()[d.node].name.clone(), d.gpus)
}

fn paper(policy: Policy) -> Profile {
    profile_for(policy, PolicyInputs { seed: 7, typical: TypicalShapes::default() })
}

#[test]
fn dotprod_prefers_the_node_least_aligned_with_the_request() {
    // Free vectors: big = (64 CPUs, 8 GPUs), small = (8 CPUs, 1 GPU). The request (4 CPUs, 1 GPU) has a
    // smaller dot product with the small node's free vector.
    let s = Snapshot::new(vec![node("big", 64000, 8), node("small", 8000, 1)]).unwrap();
    assert_eq!(pick(&paper(Policy::DotProd), &s, &pod("p", 4000, GpuRequest::whole(1))).0, "small");
}

#[test]
fn bestfit_prefers_the_node_with_least_left_after_placement() {
    let mut s = Snapshot::new(vec![node("a", 32000, 4), node("b", 32000, 4)]).unwrap();
    use_gpu(&mut s, "b", 0, 1000);
    use_gpu(&mut s, "b", 1, 1000);
    assert_eq!(pick(&paper(Policy::BestFit), &s, &pod("p", 1000, GpuRequest::whole(1))), ("b".into(), vec![2]));
}

#[test]
fn gpupacking_fills_partly_used_gpus_before_breaking_an_idle_node() {
    let mut s = Snapshot::new(vec![node("a-idle", 32000, 8), node("b-used", 32000, 8)]).unwrap();
    use_gpu(&mut s, "b-used", 3, 400);
    use_gpu(&mut s, "b-used", 5, 700);
    // The 300 share fits both used GPUs; the fuller one (GPU 5, 300 free) is taken.
    assert_eq!(
        pick(&paper(Policy::GpuPacking), &s, &pod("p", 1000, GpuRequest::shared(300))),
        ("b-used".into(), vec![5])
    );
    // A whole GPU must come from an idle device; a used node still beats an idle one.
    assert_eq!(pick(&paper(Policy::GpuPacking), &s, &pod("q", 1000, GpuRequest::whole(1))).0, "b-used");
}

#[test]
fn gpuclustering_puts_shares_with_shares() {
    let mut s = Snapshot::new(vec![node("a-whole", 32000, 8), node("b-shared", 32000, 8)]).unwrap();
    let whole = pod("w", 0, GpuRequest::whole(1));
    s.assume(&whole, 0, &[0]).unwrap();
    use_gpu(&mut s, "b-shared", 0, 200);
    assert_eq!(pick(&paper(Policy::GpuClustering), &s, &pod("p", 1000, GpuRequest::shared(300))).0, "b-shared");
    assert_eq!(pick(&paper(Policy::GpuClustering), &s, &pod("q", 1000, GpuRequest::whole(1))).0, "a-whole");
}

#[test]
fn fgd_picks_the_gpu_that_leaves_no_fragment_where_best_fit_would() {
    // Typical workload: 600-milli shares. GPU 0 has 700 free, GPU 1 is idle. A 300 share on GPU 0 leaves
    // 400 free there, too small for a 600 share (fragmentation +400, score 40); on GPU 1 it leaves
    // 700 and 700, both still usable (fragmentation unchanged, score 50).
    let typical = TypicalShapes {
        shapes: vec![WeightedShape {
            shape: Shape { cpu_milli: 0, gpu_count: 1, milli_per_gpu: 600, models: None },
            weight: 1.0,
        }],
    };
    let mut s = Snapshot::new(vec![node("n", 32000, 2)]).unwrap();
    use_gpu(&mut s, "n", 0, 300);
    let p = pod("p", 1000, GpuRequest::shared(300));
    let fgd = profile_for(Policy::Fgd, PolicyInputs { seed: 0, typical });
    assert_eq!(pick(&fgd, &s, &p), ("n".into(), vec![1]));
    assert_eq!(pick(&paper(Policy::BestFit), &s, &p), ("n".into(), vec![0]));
    assert_eq!(mlsched::plugins::fgd::fgd_score(0.0, 400.0), 40);
}

#[test]
fn random_is_seeded_and_spreads_over_feasible_nodes() {
    let s =
        Snapshot::new(vec![node("a", 32000, 8), node("b", 32000, 8), node("c", 32000, 8), node("d", 10, 8)]).unwrap();
    let profile = paper(Policy::Random);
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..3000 {
        *counts.entry(pick(&profile, &s, &pod(&format!("p{i}"), 1000, GpuRequest::shared(100))).0).or_insert(0) += 1;
    }
    assert!(!counts.contains_key("d"), "d lacks CPU");
    for n in ["a", "b", "c"] {
        assert!((850..=1150).contains(&counts[n]), "{counts:?}");
    }
    let again = pick(&paper(Policy::Random), &s, &pod("p1", 1000, GpuRequest::shared(100)));
    assert_eq!(again, pick(&profile, &s, &pod("p1", 1000, GpuRequest::shared(100))));
}

#[test]
fn ties_go_to_the_smallest_node_name() {
    let s = Snapshot::new(vec![node("c", 8000, 1), node("a", 8000, 1), node("b", 8000, 1)]).unwrap();
    assert_eq!(pick(&paper(Policy::GpuPacking), &s, &pod("p", 1000, GpuRequest::none())).0, "a");
}

#[test]
fn an_unschedulable_pod_gets_the_aggregated_reasons() {
    let mut s = Snapshot::new(vec![
        node("a", 8000, 2),
        node("b", 1000, 8),
        Node::new("cpu-only", Resources::new(64000, 1 << 40, 110)),
    ])
    .unwrap();
    use_gpu(&mut s, "a", 0, 1000);
    let mut t4 = Node::new("t4", Resources::new(64000, 1 << 40, 110)).with_gpus(4, "T4");
    t4.name = "t4".into();
    s.add_node(t4).unwrap();
    let p = pod("p", 2000, GpuRequest::whole(2).with_models(vec!["G2".into()]));
    let err = schedule_one(&paper(Policy::Fgd), &s, &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 1 GPU model not allowed, 1 Insufficient cpu."
    );
}

#[test]
fn weighted_scores_add_up_across_plugins() {
    // GpuPacking alone prefers the used node; with BestFit weighted far higher, BestFit's choice wins.
    let mut s = Snapshot::new(vec![node("a", 4000, 1), node("b", 64000, 8)]).unwrap();
    use_gpu(&mut s, "b", 0, 500);
    let p = pod("p", 1000, GpuRequest::shared(100));
    let packing = default_filters(Profile::new("t")).score(GpuPackingScore, 1);
    assert_eq!(pick(&packing, &s, &p).0, "b");
    let both = default_filters(Profile::new("t")).score(GpuPackingScore, 1).score(BestFitScore, 10);
    assert_eq!(pick(&both, &s, &p).0, "a");
}
