//! MigFit: the node's MIG-enabled GPUs can carve every instance the pod asks for, at positions NVIDIA's
//! placement rules allow.

use crate::core::mig::can_hold;
use crate::core::{Node, Pod};
use crate::framework::{FilterPlugin, Reason};

pub struct MigFit;

impl FilterPlugin for MigFit {
    fn name(&self) -> &'static str {
        "MigFit"
    }

    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), Reason> {
        match &pod.mig {
            None => Ok(()),
            Some(request) if can_hold(&node.gpus, request) => Ok(()),
            Some(request) => Err(format!("Insufficient {}", request.resource_name()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, MIB, MigInstance, MigRequest, Resources, Snapshot};

    #[test]
    fn placement_rules_not_just_counts_decide() {
        let node = Node::new("m", Resources::new(8000, 64 * MIB, 110)).with_mig_gpus(1, "A100-80GB").unwrap();
        let mut s =
            Snapshot::new(vec![node, Node::new("plain", Resources::new(8000, 64 * MIB, 110)).with_gpus(1, "T4")])
                .unwrap();
        let mut small = Pod::new("small", Resources::new(1, 1, 1), GpuRequest::none());
        small.mig = Some(MigRequest { profile: "1g.10gb".into(), count: 1 });
        s.assume_with_mig(&small, 0, &[], &[(0, MigInstance { profile: 0, start: 4 })]).unwrap();
        let mut big = Pod::new("big", Resources::new(1, 1, 1), GpuRequest::none());
        big.mig = Some(MigRequest { profile: "3g.40gb".into(), count: 2 });
        // 7 slices are free, but the second 3g.40gb would have to start at slice 4.
        assert_eq!(MigFit.filter(&big, &s.nodes()[0]), Err("Insufficient nvidia.com/mig-3g.40gb".into()));
        big.mig = Some(MigRequest { profile: "3g.40gb".into(), count: 1 });
        assert_eq!(MigFit.filter(&big, &s.nodes()[0]), Ok(()));
        assert!(MigFit.filter(&big, &s.nodes()[1]).is_err(), "a GPU without MIG serves no instance");
        assert_eq!(MigFit.filter(&Pod::new("p", Resources::default(), GpuRequest::none()), &s.nodes()[1]), Ok(()));
    }
}
