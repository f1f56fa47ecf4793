//! NodeResourcesFit: CPU, memory, pod slots and non-GPU extended resources.

use crate::core::{Node, Pod};
use crate::framework::{FilterPlugin, Reason};

pub struct ResourcesFit;

impl FilterPlugin for ResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), Reason> {
        // The three core resources are checked without building the free vector: this runs for every
        // node of every cycle.
        let r = &pod.requests;
        if r.cpu_milli > node.free_cpu_milli() {
            return Err("Insufficient cpu".into());
        }
        if r.memory_bytes > node.free_memory_bytes() {
            return Err("Insufficient memory".into());
        }
        if r.pods > node.allocatable.pods - node.requested.pods {
            return Err("Too many pods".into());
        }
        for (name, want) in &r.extended {
            if *want > node.allocatable.extended(name) - node.requested.extended(name) {
                return Err(format!("Insufficient {name}").into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, MIB, Resources};

    #[test]
    fn reasons_name_the_short_resource() {
        let mut node = Node::new("n", Resources::new(4000, 8 * MIB, 2).with_extended("example.com/fpga", 1));
        node.requested = Resources::new(1000, 0, 1);
        let pod = |r: Resources| Pod::new("p", r, GpuRequest::none());
        assert_eq!(ResourcesFit.filter(&pod(Resources::new(3000, MIB, 1)), &node), Ok(()));
        assert_eq!(ResourcesFit.filter(&pod(Resources::new(3001, MIB, 1)), &node), Err("Insufficient cpu".into()));
        assert_eq!(ResourcesFit.filter(&pod(Resources::new(1, 9 * MIB, 1)), &node), Err("Insufficient memory".into()));
        assert_eq!(ResourcesFit.filter(&pod(Resources::new(1, 1, 2)), &node), Err("Too many pods".into()));
        let fpga = Resources::new(1, 1, 1).with_extended("example.com/fpga", 2);
        assert_eq!(ResourcesFit.filter(&pod(fpga), &node), Err("Insufficient example.com/fpga".into()));
    }
}
