//! The network tree: cluster → one domain per label value at each level → nodes, held in a petgraph tree.
//!
//! A domain is keyed by its parent and its label value, so `rack=r1` under two spines is two racks (as
//! Kueue's topology does). A node missing a level's label goes into that parent's `unknown` domain, and
//! stays in unknown domains at every deeper level: without the upper switch we cannot trust a lower label
//! to name a real switch. Unknown domains are never offered as a tight placement.

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::core::{Node, NodeId, Snapshot};

/// The label that names a node; as the last level it is the node itself, not a switch.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The value shown for a domain whose nodes lack the level's label.
pub const UNKNOWN_DOMAIN: &str = "<unknown>";

pub type DomainId = usize;

/// One level of the tree: a node label, and optionally the bandwidth of the links that connect a domain
/// of this level to its parent (for the hostname level: the node's own uplink).
#[derive(Debug, Clone, PartialEq)]
pub struct TopologyLevel {
    pub label: String,
    pub bandwidth_gbps: Option<f64>,
}

impl TopologyLevel {
    pub fn new(label: impl Into<String>) -> Self {
        TopologyLevel { label: label.into(), bandwidth_gbps: None }
    }

    pub fn with_bandwidth(mut self, gbps: f64) -> Self {
        self.bandwidth_gbps = Some(gbps);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub level: usize,
    /// The label value, or [`UNKNOWN_DOMAIN`].
    pub value: String,
    /// False for an unknown domain (or any domain below one).
    pub known: bool,
    pub parent: Option<DomainId>,
    pub children: Vec<DomainId>,
    /// Every node below this domain, ascending.
    pub nodes: Vec<NodeId>,
    pub vertex: NodeIndex,
}

/// A vertex of the petgraph tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vertex {
    Cluster,
    Domain(DomainId),
    Node(NodeId),
}

#[derive(Debug, Clone, Error, PartialEq)]
pub enum TopologyError {
    #[error("a topology level has an empty label")]
    EmptyLabel,
    #[error("topology level {0} is listed twice")]
    DuplicateLevel(String),
    #[error("{HOSTNAME_LABEL} names single nodes and must be the last topology level")]
    HostnameNotLast,
    #[error("topology level {label}: bandwidth {gbps} Gbit/s must be positive and finite")]
    BadBandwidth { label: String, gbps: f64 },
    #[error("unknown topology level {level:?} (levels: {known})")]
    UnknownLevel { level: String, known: String },
}

/// The tree plus flat per-level indexes, because placement asks "which rack is node n in" millions of
/// times and a graph walk per question would dominate a 5000-node decision.
#[derive(Debug, Clone)]
pub struct Topology {
    pub(super) levels: Vec<TopologyLevel>,
    pub(super) graph: DiGraph<Vertex, f64>,
    pub(super) root: NodeIndex,
    pub(super) domains: Vec<Domain>,
    pub(super) by_level: Vec<Vec<DomainId>>,
    /// `domain_at[level][node]`.
    pub(super) domain_at: Vec<Vec<DomainId>>,
    pub(super) node_vertices: Vec<NodeIndex>,
    /// Cost of the uplink at each distance depth (see `distance.rs`).
    pub(super) link_costs: Vec<f64>,
}

impl Topology {
    /// Builds the tree over `nodes` (indexed as in the snapshot they come from).
    pub fn new(levels: Vec<TopologyLevel>, nodes: &[Node]) -> Result<Self, TopologyError> {
        validate_levels(&levels)?;
        let mut graph = DiGraph::new();
        let root = graph.add_node(Vertex::Cluster);
        let mut topology = Topology {
            by_level: vec![Vec::new(); levels.len()],
            domain_at: vec![Vec::with_capacity(nodes.len()); levels.len()],
            link_costs: link_costs(&levels),
            levels,
            graph,
            root,
            domains: Vec::new(),
            node_vertices: Vec::with_capacity(nodes.len()),
        };
        let mut index: FxHashMap<(Option<DomainId>, String), DomainId> = FxHashMap::default();
        for (node_id, node) in nodes.iter().enumerate() {
            let mut parent: Option<DomainId> = None;
            let mut parent_known = true;
            for level in 0..topology.levels.len() {
                let (value, known) = topology.domain_value(level, node, parent_known);
                let id = match index.get(&(parent, value.clone())) {
                    Some(&id) => id,
                    None => {
                        let id = topology.add_domain(level, value.clone(), known, parent);
                        index.insert((parent, value), id);
                        id
                    }
                };
                topology.domains[id].nodes.push(node_id);
                topology.domain_at[level].push(id);
                parent = Some(id);
                parent_known = known;
            }
            let vertex = topology.graph.add_node(Vertex::Node(node_id));
            let above = parent.map_or(topology.root, |p| topology.domains[p].vertex);
            // Under a hostname domain the node vertex is that same machine: no link to cross.
            let cost = if topology.last_level_is_node() { 0.0 } else { *topology.link_costs.last().unwrap_or(&1.0) };
            topology.graph.add_edge(above, vertex, cost);
            topology.node_vertices.push(vertex);
        }
        Ok(topology)
    }

    /// Levels given by label only, no bandwidths.
    pub fn from_labels(labels: &[&str], nodes: &[Node]) -> Result<Self, TopologyError> {
        Topology::new(labels.iter().map(|l| TopologyLevel::new(*l)).collect(), nodes)
    }

    pub fn from_snapshot(levels: Vec<TopologyLevel>, snapshot: &Snapshot) -> Result<Self, TopologyError> {
        Topology::new(levels, snapshot.nodes())
    }

    fn domain_value(&self, level: usize, node: &Node, parent_known: bool) -> (String, bool) {
        let label = &self.levels[level].label;
        if label == HOSTNAME_LABEL {
            // A node is always known to itself, even without the label.
            let host = node.labels.get(label).unwrap_or(&node.name);
            return (host.clone(), parent_known);
        }
        match node.labels.get(label) {
            Some(value) if parent_known => (value.clone(), true),
            _ => (UNKNOWN_DOMAIN.to_string(), false),
        }
    }

    fn add_domain(&mut self, level: usize, value: String, known: bool, parent: Option<DomainId>) -> DomainId {
        let id = self.domains.len();
        let vertex = self.graph.add_node(Vertex::Domain(id));
        let above = parent.map_or(self.root, |p| self.domains[p].vertex);
        self.graph.add_edge(above, vertex, self.link_costs[level]);
        if let Some(p) = parent {
            self.domains[p].children.push(id);
        }
        self.domains.push(Domain { level, value, known, parent, children: Vec::new(), nodes: Vec::new(), vertex });
        self.by_level[level].push(id);
        id
    }

    pub fn levels(&self) -> &[TopologyLevel] {
        &self.levels
    }

    pub fn node_count(&self) -> usize {
        self.node_vertices.len()
    }

    pub fn level_index(&self, label: &str) -> Result<usize, TopologyError> {
        self.levels.iter().position(|l| l.label == label).ok_or_else(|| TopologyError::UnknownLevel {
            level: label.to_string(),
            known: self.levels.iter().map(|l| l.label.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// True when the last level names nodes (so it is not a group of nodes a gang can be spread over).
    pub fn last_level_is_node(&self) -> bool {
        self.levels.last().is_some_and(|l| l.label == HOSTNAME_LABEL)
    }

    /// Levels that group several nodes behind one switch: all but a trailing hostname level.
    pub fn group_levels(&self) -> usize {
        self.levels.len() - usize::from(self.last_level_is_node())
    }

    /// The domain `node` belongs to at `level`; `None` for an out-of-range node or level.
    pub fn domain_of(&self, node: NodeId, level: usize) -> Option<DomainId> {
        self.domain_at.get(level)?.get(node).copied()
    }

    pub fn domain(&self, id: DomainId) -> &Domain {
        &self.domains[id]
    }

    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    pub fn domains_at(&self, level: usize) -> &[DomainId] {
        self.by_level.get(level).map_or(&[], Vec::as_slice)
    }

    /// Whether `domain` is `ancestor` or lies below it.
    pub fn is_within(&self, domain: DomainId, ancestor: DomainId) -> bool {
        let mut current = Some(domain);
        while let Some(d) = current {
            if d == ancestor {
                return true;
            }
            current = self.domains[d].parent;
        }
        false
    }

    /// The tree itself: edges point from a parent to a child and weigh the child's uplink cost.
    pub fn graph(&self) -> &DiGraph<Vertex, f64> {
        &self.graph
    }

    /// The chain of vertices from `node` up to the cluster, read from the graph.
    pub fn path_to_root(&self, node: NodeId) -> Vec<Vertex> {
        let mut path = Vec::new();
        let mut current = self.node_vertices.get(node).copied();
        while let Some(v) = current {
            path.push(self.graph[v]);
            current = self.graph.neighbors_directed(v, Direction::Incoming).next();
        }
        path
    }

    /// Sums a per-node quantity over every domain.
    pub fn sum_by_domain(&self, per_node: &[u64]) -> Vec<u64> {
        let mut sums = vec![0u64; self.domains.len()];
        for level_map in &self.domain_at {
            for (node, &domain) in level_map.iter().enumerate() {
                let value = per_node.get(node).copied().unwrap_or(0);
                sums[domain] = sums[domain].saturating_add(value);
            }
        }
        sums
    }

    /// A short, stable name for a domain: `rack=r3 (spine=s1)`.
    pub fn describe(&self, id: DomainId) -> String {
        let d = &self.domains[id];
        let label = &self.levels[d.level].label;
        match d.parent {
            Some(p) => format!("{label}={} in {}", d.value, self.describe(p)),
            None => format!("{label}={}", d.value),
        }
    }
}

fn validate_levels(levels: &[TopologyLevel]) -> Result<(), TopologyError> {
    for (i, level) in levels.iter().enumerate() {
        if level.label.is_empty() {
            return Err(TopologyError::EmptyLabel);
        }
        if levels[..i].iter().any(|l| l.label == level.label) {
            return Err(TopologyError::DuplicateLevel(level.label.clone()));
        }
        if level.label == HOSTNAME_LABEL && i + 1 != levels.len() {
            return Err(TopologyError::HostnameNotLast);
        }
        if let Some(gbps) = level.bandwidth_gbps
            && !(gbps.is_finite() && gbps > 0.0)
        {
            return Err(TopologyError::BadBandwidth { label: level.label.clone(), gbps });
        }
    }
    Ok(())
}

/// Link cost per distance depth: the fastest link given costs 1, a link half as fast costs 2, a link
/// with no bandwidth given costs 1. When the last level is not the hostname, one more depth stands for
/// the node's own uplink (cost 1).
fn link_costs(levels: &[TopologyLevel]) -> Vec<f64> {
    let fastest = levels.iter().filter_map(|l| l.bandwidth_gbps).fold(0.0_f64, f64::max);
    let mut costs: Vec<f64> = levels.iter().map(|l| l.bandwidth_gbps.map_or(1.0, |bw| fastest / bw)).collect();
    if levels.last().is_none_or(|l| l.label != HOSTNAME_LABEL) {
        costs.push(1.0);
    }
    costs
}
