//! TaintToleration: a pod lands only on nodes whose blocking taints it tolerates.

use crate::core::selector::untolerated_taint;
use crate::core::{Node, Pod};
use crate::framework::{FilterPlugin, Reason};

pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), Reason> {
        match untolerated_taint(&node.taints, &pod.tolerations) {
            None => Ok(()),
            Some(t) => Err(format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, Resources, Taint, TaintEffect, Toleration};

    #[test]
    fn gpu_taint_blocks_pods_without_the_toleration() {
        let mut node = Node::new("g", Resources::new(1, 1, 1));
        node.taints.push(Taint { key: "nvidia.com/gpu".into(), value: "true".into(), effect: TaintEffect::NoSchedule });
        let mut pod = Pod::new("p", Resources::default(), GpuRequest::none());
        assert_eq!(
            TaintToleration.filter(&pod, &node),
            Err("node(s) had untolerated taint {nvidia.com/gpu: true}".into())
        );
        pod.tolerations.push(Toleration {
            key: "nvidia.com/gpu".into(),
            exists: true,
            value: String::new(),
            effect: None,
        });
        assert_eq!(TaintToleration.filter(&pod, &node), Ok(()));
    }
}
