use super::*;
use crate::core::{MIB, Node, Resources};

const SPINE: &str = "network.mlsched.io/spine";
const RACK: &str = "network.mlsched.io/rack";

fn node(name: &str, spine: Option<&str>, rack: Option<&str>) -> Node {
    let mut node = Node::new(name, Resources::new(64_000, 256 * MIB, 110)).with_gpus(8, "A100");
    if let Some(s) = spine {
        node = node.with_label(SPINE, s);
    }
    if let Some(r) = rack {
        node = node.with_label(RACK, r);
    }
    node.with_label(HOSTNAME_LABEL, name)
}

/// s1: r1 {a, b}, r2 {c}; s2: r1 {d} (a different rack r1); e has no labels; f has a rack but no spine.
fn nodes() -> Vec<Node> {
    vec![
        node("a", Some("s1"), Some("r1")),
        node("b", Some("s1"), Some("r1")),
        node("c", Some("s1"), Some("r2")),
        node("d", Some("s2"), Some("r1")),
        node("e", None, None),
        node("f", None, Some("r9")),
    ]
}

fn topology() -> Topology {
    Topology::from_labels(&[SPINE, RACK, HOSTNAME_LABEL], &nodes()).unwrap()
}

#[test]
fn domains_are_keyed_by_parent_and_value() {
    let t = topology();
    let rack_of = |n| t.domain_of(n, 1).unwrap();
    assert_eq!(rack_of(0), rack_of(1));
    assert_ne!(rack_of(0), rack_of(3), "r1 under s2 is another rack than r1 under s1");
    assert_eq!(t.domain(rack_of(0)).nodes, vec![0, 1]);
    assert_eq!(t.describe(rack_of(3)), format!("{RACK}=r1 in {SPINE}=s2"));
    assert_eq!(t.group_levels(), 2);
    assert_eq!(t.domain_of(99, 0), None);
    assert_eq!(t.domain_of(0, 7), None);
}

#[test]
fn nodes_without_labels_fall_into_unknown_domains() {
    let t = topology();
    let spine_e = t.domain(t.domain_of(4, 0).unwrap());
    assert_eq!(spine_e.value, UNKNOWN_DOMAIN);
    assert!(!spine_e.known);
    // f names a rack, but without a spine the rack label cannot be trusted to be a real switch.
    assert_eq!(t.domain_of(4, 1), t.domain_of(5, 1));
    assert!(!t.domain(t.domain_of(5, 1).unwrap()).known);
    assert_eq!(t.domains_at(0).len(), 3, "s1, s2 and unknown");
}

#[test]
fn hops_count_switch_levels_up_to_the_common_ancestor() {
    let t = topology();
    assert_eq!(t.hops(0, 0), Some(0));
    assert_eq!(t.hops(0, 1), Some(2), "same rack");
    assert_eq!(t.hops(0, 2), Some(4), "same spine, other rack");
    assert_eq!(t.hops(0, 3), Some(6), "other spine");
    assert_eq!(t.hops(4, 5), Some(6), "two unknown nodes are assumed far apart");
    assert_eq!(t.hops(0, 42), None);
}

#[test]
fn without_a_hostname_level_distinct_nodes_are_still_apart() {
    let t = Topology::from_labels(&[SPINE, RACK], &nodes()).unwrap();
    assert_eq!(t.group_levels(), 2);
    assert_eq!(t.hops(0, 1), Some(2));
    assert_eq!(t.hops(0, 2), Some(4));
    assert_eq!(t.hops(1, 1), Some(0));
}

#[test]
fn weighted_distance_charges_slow_uplinks_more() {
    let levels = vec![
        TopologyLevel::new(SPINE).with_bandwidth(100.0),
        TopologyLevel::new(RACK).with_bandwidth(200.0),
        TopologyLevel::new(HOSTNAME_LABEL).with_bandwidth(400.0),
    ];
    let t = Topology::new(levels, &nodes()).unwrap();
    assert_eq!(t.weighted_distance(0, 1), Some(2.0));
    assert_eq!(t.weighted_distance(0, 2), Some(2.0 * (1.0 + 2.0)));
    assert_eq!(t.weighted_distance(0, 3), Some(2.0 * (1.0 + 2.0 + 4.0)));
    assert_eq!(topology().weighted_distance(0, 3), Some(6.0), "no bandwidths: equals hops");
}

#[test]
fn placement_cost_is_the_mean_pairwise_hops_of_members() {
    let t = topology();
    assert_eq!(t.placement_cost(&[]), 0.0);
    assert_eq!(t.placement_cost(&[2]), 0.0);
    assert_eq!(t.placement_cost(&[0, 0, 0]), 0.0);
    assert_eq!(t.placement_cost(&[0, 1]), 2.0);
    // pairs: (0,0)=0 (0,1)=2 (0,1)=2 -> mean 4/3
    assert!((t.placement_cost(&[0, 0, 1]) - 4.0 / 3.0).abs() < 1e-9);
    // pairs: (0,1)=2 (0,3)=6 (1,3)=6 -> mean 14/3; the same as the pairwise definition
    let members = [0, 1, 3];
    let pairwise: u32 = [(0, 1), (0, 3), (1, 3)].iter().map(|&(a, b)| t.hops(a, b).unwrap()).sum();
    assert!((t.placement_cost(&members) - f64::from(pairwise) / 3.0).abs() < 1e-9);
    assert!((t.placement_cost(&[4, 4, 5]) - 4.0).abs() < 1e-9, "two members on e are 0 apart");
}

#[test]
fn the_graph_is_a_tree_from_cluster_to_nodes() {
    let t = topology();
    let path = t.path_to_root(0);
    assert_eq!(path.first(), Some(&Vertex::Node(0)));
    assert_eq!(path.last(), Some(&Vertex::Cluster));
    assert_eq!(path.len(), 5, "node, host, rack, spine, cluster");
    assert_eq!(t.graph().node_count(), 1 + t.domains().len() + 6);
    assert_eq!(t.graph().edge_count(), t.graph().node_count() - 1);
}

#[test]
fn bad_levels_are_refused_with_a_reason() {
    let n = nodes();
    assert_eq!(Topology::from_labels(&[HOSTNAME_LABEL, RACK], &n).unwrap_err(), TopologyError::HostnameNotLast);
    assert_eq!(Topology::from_labels(&[RACK, RACK], &n).unwrap_err(), TopologyError::DuplicateLevel(RACK.into()));
    assert_eq!(Topology::from_labels(&[""], &n).unwrap_err(), TopologyError::EmptyLabel);
    let zero = vec![TopologyLevel::new(RACK).with_bandwidth(0.0)];
    assert!(matches!(Topology::new(zero, &n), Err(TopologyError::BadBandwidth { .. })));
    let err = topology().level_index("zone").unwrap_err();
    assert!(err.to_string().contains("unknown topology level \"zone\""), "{err}");
    let flat = Topology::from_labels(&[], &n).unwrap();
    assert_eq!(flat.hops(0, 1), Some(2));
    assert_eq!(flat.group_levels(), 0);
}
