//! Network topology from node labels: ordered levels such as
//! `["network.mlsched.io/spine", "network.mlsched.io/rack", "kubernetes.io/hostname"]` form a tree
//! (cluster → spines → racks → nodes) in which gangs are placed as tightly as they fit.
//!
//! - `tree`: the petgraph tree, domains per level, the domain of a node at each level.
//! - `distance`: hop distance, bandwidth-weighted distance, and the mean pairwise hops of a placement.
//! - `domain_fit`: how many members a node holds, and how members are split over domains.

pub mod distance;
pub mod domain_fit;
pub mod tree;

#[cfg(test)]
mod tests;

pub use domain_fit::{Occupancy, copies_that_fit, split_members};
pub use tree::{Domain, DomainId, HOSTNAME_LABEL, Topology, TopologyError, TopologyLevel, UNKNOWN_DOMAIN, Vertex};
