//! GpuFit: the node has enough GPUs of an allowed model, each with the per-GPU share free.

use crate::core::gpu::fitting_gpus;
use crate::core::{Node, Pod};
use crate::framework::{FilterPlugin, Reason};

pub struct GpuFit;

pub const MODEL_NOT_ALLOWED: &str = "GPU model not allowed";
pub const INSUFFICIENT_GPU: &str = "Insufficient nvidia.com/gpu";

impl FilterPlugin for GpuFit {
    fn name(&self) -> &'static str {
        "GpuFit"
    }

    fn filter(&self, pod: &Pod, node: &Node) -> Result<(), Reason> {
        let req = &pod.gpu;
        if req.is_none() {
            return Ok(());
        }
        if node.gpus.is_empty() || (node.gpus.len() as u32) < req.count {
            return Err(INSUFFICIENT_GPU.into());
        }
        if !node.gpus.iter().any(|g| req.allows_model(&g.model)) {
            return Err(MODEL_NOT_ALLOWED.into());
        }
        if fitting_gpus(&node.gpus, req).take(req.count as usize).count() < req.count as usize {
            return Err(INSUFFICIENT_GPU.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, Resources};

    fn node() -> Node {
        let mut n = Node::new("n", Resources::new(64000, 1 << 40, 110)).with_gpus(2, "T4");
        n.gpus[0].used_milli = 700;
        n
    }

    #[test]
    fn per_gpu_share_must_fit_on_one_device() {
        let pod = |g: GpuRequest| Pod::new("p", Resources::new(1, 1, 1), g);
        assert_eq!(GpuFit.filter(&pod(GpuRequest::none()), &node()), Ok(()));
        assert_eq!(GpuFit.filter(&pod(GpuRequest::shared(1000)), &node()), Ok(()));
        assert_eq!(GpuFit.filter(&pod(GpuRequest::whole(2)), &node()), Err(INSUFFICIENT_GPU.into()));
        assert_eq!(GpuFit.filter(&pod(GpuRequest::whole(4)), &node()), Err(INSUFFICIENT_GPU.into()));
        let v100 = GpuRequest::shared(100).with_models(vec!["V100M16".into(), "V100M32".into()]);
        assert_eq!(GpuFit.filter(&pod(v100), &node()), Err(MODEL_NOT_ALLOWED.into()));
        let cpu_node = Node::new("c", Resources::new(1, 1, 1));
        assert_eq!(GpuFit.filter(&pod(GpuRequest::shared(10)), &cpu_node), Err(INSUFFICIENT_GPU.into()));
    }
}
