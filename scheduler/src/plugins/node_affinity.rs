//! NodeAffinity: `nodeSelector` and required node affinity, plus cordoned nodes.

use crate::core::{Node, Pod};
use crate::framework::{FilterPlugin, Reason};

pub struct NodeAffinityFilter;

impl FilterPlugin for NodeAffinityFilter {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), Reason> {
        let selector_ok = pod.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v));
        if selector_ok && pod.affinity.matches(&node.labels) {
            Ok(())
        } else {
            Err("node(s) didn't match Pod's node affinity/selector".into())
        }
    }
}

pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, _pod: &Pod, node: &Node) -> Result<(), Reason> {
        if node.unschedulable { Err("node(s) were unschedulable".into()) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, NodeAffinity, Requirement, Resources, SelectorOp};

    #[test]
    fn selector_and_affinity_both_apply() {
        let node = Node::new("n", Resources::default()).with_label("rack", "r1").with_label("gpu", "a100");
        let mut pod = Pod::new("p", Resources::default(), GpuRequest::none());
        assert!(NodeAffinityFilter.filter(&pod, &node).is_ok());
        pod.node_selector.insert("rack".into(), "r2".into());
        assert!(NodeAffinityFilter.filter(&pod, &node).is_err());
        pod.node_selector.insert("rack".into(), "r1".into());
        pod.affinity = NodeAffinity {
            terms: vec![vec![Requirement { key: "gpu".into(), op: SelectorOp::NotIn, values: vec!["a100".into()] }]],
        };
        assert_eq!(
            NodeAffinityFilter.filter(&pod, &node),
            Err("node(s) didn't match Pod's node affinity/selector".into())
        );
    }

    #[test]
    fn cordoned_nodes_are_rejected() {
        let mut node = Node::new("n", Resources::default());
        let pod = Pod::new("p", Resources::default(), GpuRequest::none());
        assert!(NodeUnschedulable.filter(&pod, &node).is_ok());
        node.unschedulable = true;
        assert_eq!(NodeUnschedulable.filter(&pod, &node), Err("node(s) were unschedulable".into()));
    }
}
