//! NetworkProximity: the node with the shortest network path to the nodes that already run the pod's
//! workload (`Pod::near_nodes`), the placement rule of the hybrid autoscaling paper: a horizontal replica
//! lands next to the existing ones, so state synchronisation between them stays under one switch.
//!
//! Distances are those of [`Topology`] (`hops`, `weighted_distance`): `2 × (depths − shared depths)`,
//! each crossed link weighted by `fastest bandwidth / its bandwidth` when the levels give bandwidths.
//! They are computed from the node labels directly rather than from a `Topology` built once, because the
//! live scheduler's snapshot gains and loses nodes while the plugin lives for the whole process; the
//! results equal the `Topology`'s (see the tests).
//!
//! Score: `100 × (1 − mean distance / largest possible distance)`, so the anchors' own node scores 100,
//! a node under the same rack switch of a three-level tree 67, the same spine 33, elsewhere 0. Pods without
//! anchors (or whose anchors are all unknown to the snapshot) score 0 on every node: neutral. Raw scores are
//! absolute, not min-max normalized, so a small weight stays a small preference.

use crate::core::{Node, NodeId, Pod, Snapshot};
use crate::framework::ScorePlugin;
use crate::topology::{HOSTNAME_LABEL, Topology, TopologyError, TopologyLevel};

/// How far a node is from a set of anchor nodes, averaged over the anchors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proximity {
    /// Mean switch hops (0: the same node, 2: the same rack switch, ...).
    pub mean_hops: f64,
    /// Mean bandwidth-weighted distance; equal to `mean_hops` when no level has a bandwidth.
    pub mean_cost: f64,
}

pub struct NetworkProximityScore {
    levels: Vec<TopologyLevel>,
    /// Cost of the uplink at each depth, as `Topology` weighs it.
    link_costs: Vec<f64>,
}

impl NetworkProximityScore {
    /// Levels from the top of the tree down (as `Topology::new` takes them); checked the same way.
    pub fn new(levels: Vec<TopologyLevel>) -> Result<Self, TopologyError> {
        Topology::new(levels.clone(), &[])?;
        let fastest = levels.iter().filter_map(|l| l.bandwidth_gbps).fold(0.0_f64, f64::max);
        let mut link_costs: Vec<f64> = levels.iter().map(|l| l.bandwidth_gbps.map_or(1.0, |bw| fastest / bw)).collect();
        if levels.last().is_none_or(|l| l.label != HOSTNAME_LABEL) {
            // The node's own uplink: two distinct nodes are never 0 apart.
            link_costs.push(1.0);
        }
        Ok(NetworkProximityScore { levels, link_costs })
    }

    /// Levels given by label only, no bandwidths.
    pub fn from_labels(labels: &[&str]) -> Result<Self, TopologyError> {
        NetworkProximityScore::new(labels.iter().map(|l| TopologyLevel::new(*l)).collect())
    }

    pub fn levels(&self) -> &[TopologyLevel] {
        &self.levels
    }

    /// The largest distance two nodes can be apart (hops, weighted): every depth crossed up and down.
    pub fn max_distance(&self) -> (f64, f64) {
        (2.0 * self.link_costs.len() as f64, 2.0 * self.link_costs.iter().sum::<f64>())
    }

    /// The snapshot ids of the pod's anchor nodes; names the snapshot does not know are skipped.
    pub fn anchors(&self, snapshot: &Snapshot, pod: &Pod) -> Vec<NodeId> {
        pod.near_nodes.iter().filter_map(|name| snapshot.node_id(name)).collect()
    }

    /// The label value of `node` at each configured level, `None` where the domain is unknown (the label
    /// is missing, or a level above it is unknown), as `Topology` decides it.
    fn path<'a>(&self, node: &'a Node) -> Vec<Option<&'a str>> {
        let mut known = true;
        self.levels
            .iter()
            .map(|level| {
                if level.label == HOSTNAME_LABEL {
                    return known.then(|| node.labels.get(&level.label).unwrap_or(&node.name).as_str());
                }
                let value = node.labels.get(&level.label).filter(|_| known).map(String::as_str);
                known = value.is_some();
                value
            })
            .collect()
    }

    fn shared_depths(&self, a: (NodeId, &[Option<&str>]), b: (NodeId, &[Option<&str>])) -> usize {
        if a.0 == b.0 {
            return self.link_costs.len();
        }
        a.1.iter().zip(b.1).take_while(|(x, y)| x.is_some() && x == y).count()
    }

    /// Mean distance from `node` to `anchors` (an anchor listed twice counts twice); `None` without anchors
    /// or when a node id is outside the snapshot.
    pub fn proximity(&self, snapshot: &Snapshot, node: NodeId, anchors: &[NodeId]) -> Option<Proximity> {
        if anchors.is_empty() {
            return None;
        }
        let here = self.path(snapshot.node(node)?);
        let (mut hops, mut cost) = (0.0, 0.0);
        for &anchor in anchors {
            let there = self.path(snapshot.node(anchor)?);
            let shared = self.shared_depths((node, &here), (anchor, &there));
            hops += 2.0 * (self.link_costs.len() - shared) as f64;
            cost += 2.0 * self.link_costs[shared..].iter().sum::<f64>();
        }
        let n = anchors.len() as f64;
        Some(Proximity { mean_hops: hops / n, mean_cost: cost / n })
    }

    /// The score of a node at `proximity`: 100 next to every anchor, 0 as far as the tree allows.
    pub fn score_of(&self, proximity: Proximity) -> i64 {
        let (_, max_cost) = self.max_distance();
        if max_cost <= 0.0 {
            return 0;
        }
        (100.0 * (1.0 - proximity.mean_cost / max_cost)).round().clamp(0.0, 100.0) as i64
    }
}

impl ScorePlugin for NetworkProximityScore {
    fn name(&self) -> &'static str {
        "NetworkProximityScore"
    }

    fn cache_generation(&self) -> Option<u64> {
        Some(0)
    }

    fn score(&self, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> i64 {
        if pod.near_nodes.is_empty() {
            return 0;
        }
        let anchors = self.anchors(snapshot, pod);
        self.proximity(snapshot, node, &anchors).map_or(0, |p| self.score_of(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, MIB, Resources};
    use crate::framework::{Profile, schedule_one};
    use crate::plugins::policy::default_filters;

    const SPINE: &str = "network.mlsched.io/spine";
    const RACK: &str = "network.mlsched.io/rack";

    /// A fat tree: spines s0, s1; racks r0, r1 under each; nodes n0, n1 in each rack (8 nodes). Node
    /// `s{i}-r{j}-n{k}`. Plus `loose`, with no labels at all.
    fn fat_tree() -> Snapshot {
        let mut nodes = Vec::new();
        for s in 0..2 {
            for r in 0..2 {
                for n in 0..2 {
                    let name = format!("s{s}-r{r}-n{n}");
                    nodes.push(
                        Node::new(name.clone(), Resources::new(8000, 64 * 1024 * MIB, 110))
                            .with_label(SPINE, format!("s{s}"))
                            // Racks are named per spine only ("r0" twice): domains are keyed by parent.
                            .with_label(RACK, format!("r{r}"))
                            .with_label(HOSTNAME_LABEL, name),
                    );
                }
            }
        }
        nodes.push(Node::new("loose", Resources::new(8000, 64 * 1024 * MIB, 110)));
        Snapshot::new(nodes).unwrap()
    }

    fn plugin() -> NetworkProximityScore {
        NetworkProximityScore::from_labels(&[SPINE, RACK, HOSTNAME_LABEL]).unwrap()
    }

    fn pod_near(anchors: &[&str]) -> Pod {
        let mut pod = Pod::new("ns/replica", Resources::new(1000, MIB, 1), GpuRequest::none());
        pod.near_nodes = anchors.iter().map(|s| s.to_string()).collect();
        pod
    }

    fn score(snapshot: &Snapshot, pod: &Pod, node: &str) -> i64 {
        plugin().score(snapshot, pod, snapshot.node_id(node).unwrap())
    }

    #[test]
    fn same_node_beats_same_rack_beats_same_spine_beats_elsewhere() {
        let s = fat_tree();
        let pod = pod_near(&["s0-r0-n0"]);
        let same_node = score(&s, &pod, "s0-r0-n0");
        let same_rack = score(&s, &pod, "s0-r0-n1");
        let same_spine = score(&s, &pod, "s0-r1-n0");
        let other_spine = score(&s, &pod, "s1-r0-n0");
        let unknown = score(&s, &pod, "loose");
        assert_eq!((same_node, same_rack, same_spine, other_spine, unknown), (100, 67, 33, 0, 0));
    }

    #[test]
    fn no_anchors_or_unknown_anchors_are_neutral() {
        let s = fat_tree();
        for pod in [pod_near(&[]), pod_near(&["gone", "also-gone"])] {
            for node in s.nodes() {
                assert_eq!(score(&s, &pod, &node.name), 0, "{}", node.name);
            }
        }
        // Unknown names are skipped, the known anchors still count.
        let pod = pod_near(&["gone", "s1-r1-n1"]);
        assert_eq!(score(&s, &pod, "s1-r1-n1"), 100);
    }

    #[test]
    fn several_anchors_are_averaged() {
        let s = fat_tree();
        let p = plugin();
        let anchors = p.anchors(&s, &pod_near(&["s0-r0-n0", "s0-r0-n1"]));
        let at = |n: &str| p.proximity(&s, s.node_id(n).unwrap(), &anchors).unwrap();
        assert_eq!(at("s0-r0-n0").mean_hops, 1.0, "0 to itself, 2 to its rack mate");
        assert_eq!(at("s0-r1-n1").mean_hops, 4.0);
        assert_eq!(at("s1-r0-n0").mean_hops, 6.0);
        // A node holding two of the workload's pods pulls twice as hard.
        let anchors = p.anchors(&s, &pod_near(&["s0-r0-n0", "s0-r0-n0", "s1-r0-n0"]));
        let near_two = p.proximity(&s, s.node_id("s0-r0-n1").unwrap(), &anchors).unwrap().mean_hops;
        let near_one = p.proximity(&s, s.node_id("s1-r0-n1").unwrap(), &anchors).unwrap().mean_hops;
        assert!(near_two < near_one, "{near_two} vs {near_one}");
    }

    #[test]
    fn distances_equal_the_topology_s_with_and_without_bandwidths() {
        let s = fat_tree();
        let variants = [
            vec![TopologyLevel::new(SPINE), TopologyLevel::new(RACK), TopologyLevel::new(HOSTNAME_LABEL)],
            vec![
                TopologyLevel::new(SPINE).with_bandwidth(100.0),
                TopologyLevel::new(RACK).with_bandwidth(400.0),
                TopologyLevel::new(HOSTNAME_LABEL).with_bandwidth(200.0),
            ],
            vec![TopologyLevel::new(SPINE).with_bandwidth(50.0), TopologyLevel::new(RACK)],
            vec![],
        ];
        for levels in variants {
            let p = NetworkProximityScore::new(levels.clone()).unwrap();
            let t = Topology::new(levels, s.nodes()).unwrap();
            for a in 0..s.nodes().len() {
                for b in 0..s.nodes().len() {
                    let got = p.proximity(&s, a, &[b]).unwrap();
                    assert_eq!(got.mean_hops, f64::from(t.hops(a, b).unwrap()), "{a} {b}");
                    assert!((got.mean_cost - t.weighted_distance(a, b).unwrap()).abs() < 1e-9, "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn slow_uplinks_weigh_more_than_fast_ones() {
        let s = fat_tree();
        let levels = vec![
            TopologyLevel::new(SPINE).with_bandwidth(100.0),
            TopologyLevel::new(RACK).with_bandwidth(400.0),
            TopologyLevel::new(HOSTNAME_LABEL).with_bandwidth(400.0),
        ];
        let p = NetworkProximityScore::new(levels).unwrap();
        let anchors = [s.node_id("s0-r0-n0").unwrap()];
        let other_spine = p.proximity(&s, s.node_id("s1-r0-n0").unwrap(), &anchors).unwrap();
        assert_eq!(other_spine.mean_hops, 6.0);
        assert_eq!(other_spine.mean_cost, 2.0 * (4.0 + 1.0 + 1.0), "the spine uplink is 4x slower");
        assert_eq!(p.score_of(other_spine), 0);
        let same_spine = p.proximity(&s, s.node_id("s0-r1-n0").unwrap(), &anchors).unwrap();
        assert_eq!(
            p.score_of(same_spine),
            67,
            "100 × (1 − 4/12): staying under the slow spine uplink is most of the gain"
        );
    }

    #[test]
    fn bad_levels_are_refused() {
        assert!(NetworkProximityScore::from_labels(&[HOSTNAME_LABEL, RACK]).is_err());
        assert!(NetworkProximityScore::new(vec![TopologyLevel::new(RACK).with_bandwidth(0.0)]).is_err());
    }

    #[test]
    fn a_profile_with_the_plugin_places_next_to_the_workload_when_it_fits() {
        let mut s = fat_tree();
        let profile = || default_filters(Profile::new("near")).score(plugin(), 1);
        // The workload runs on s1-r1-n0; that node is full, so its rack mate wins.
        let filler = Pod::new("ns/filler", Resources::new(8000, MIB, 1), GpuRequest::none());
        s.assume(&filler, s.node_id("s1-r1-n0").unwrap(), &[]).unwrap();
        let decision = schedule_one(&profile(), &s, &pod_near(&["s1-r1-n0"])).unwrap();
        assert_eq!(s.nodes()[decision.node].name, "s1-r1-n1");
        // Without anchors every node ties and the smallest name wins.
        let decision = schedule_one(&profile(), &s, &pod_near(&[])).unwrap();
        assert_eq!(s.nodes()[decision.node].name, "loose");
    }
}
