//! A gang's `minResources` (the coscheduling PodGroup field): what the whole gang needs free in the
//! cluster before its placement is tried. It is checked first, against a sum over the schedulable nodes, so
//! a gang the cluster cannot hold is told so without planning it (scheduler-plugins checks it in PreFilter).
//!
//! The sum is an upper bound of what the gang could use (free CPU on one node and free GPUs on another
//! count alike; a MIG GPU's free slices count as many instances of a profile as they could hold if they
//! were contiguous), so the check refuses only gangs that cannot fit; the planner still decides the rest.

use crate::core::mig::{MIG_COMPUTE, MIG_RESOURCE_PREFIX};
use crate::core::{Pod, Resources, Snapshot};
use crate::quantity::{format_cpu, format_memory};

/// What a gang needs free at once: CPU, memory, pod slots and extended resources (MIG instances by their
/// `nvidia.com/mig-<profile>` names among them) in `resources`, whole and shared GPUs in milli-GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinResources {
    pub resources: Resources,
    pub gpu_milli: i64,
}

impl MinResources {
    /// What is still needed once `held` (the members already running, which count towards the minimum)
    /// are subtracted; never below zero.
    pub fn less_held<'a>(&self, held: impl IntoIterator<Item = &'a Pod>) -> MinResources {
        let mut out = self.clone();
        for pod in held {
            let r = &pod.requests;
            out.resources.cpu_milli = (out.resources.cpu_milli - r.cpu_milli).max(0);
            out.resources.memory_bytes = (out.resources.memory_bytes - r.memory_bytes).max(0);
            out.resources.pods = (out.resources.pods - r.pods).max(0);
            for (name, value) in &r.extended {
                let left = (out.resources.extended(name) - value).max(0);
                out.resources.set_extended(name.clone(), left);
            }
            if let Some(mig) = &pod.mig {
                let name = mig.resource_name();
                let left = (out.resources.extended(&name) - i64::from(mig.count)).max(0);
                out.resources.set_extended(name, left);
            }
            out.gpu_milli = (out.gpu_milli - pod.gpu.total_milli()).max(0);
        }
        out
    }

    /// Each resource the schedulable nodes of `snapshot` do not have free in the amount asked, as
    /// `nvidia.com/gpu: 64 asked, 40 free`. Empty when the gang may be planned.
    pub fn shortfall(&self, snapshot: &Snapshot) -> Vec<String> {
        let nodes = || snapshot.nodes().iter().filter(|n| !n.unschedulable);
        let free = |name: &str| -> i64 {
            nodes()
                .map(|n| match name {
                    "cpu" => n.free_cpu_milli().max(0),
                    "memory" => n.free_memory_bytes().max(0),
                    "pods" => (n.allocatable.pods - n.requested.pods).max(0),
                    _ => (n.allocatable.extended(name) - n.requested.extended(name)).max(0) + mig_instances(n, name),
                })
                .fold(0i64, i64::saturating_add)
        };
        let mut short = Vec::new();
        for (name, asked) in self.resources.entries().filter(|(_, v)| *v > 0) {
            let have = free(name);
            if have < asked {
                short.push(format!("{name}: {} asked, {} free", show(name, asked), show(name, have)));
            }
        }
        if self.gpu_milli > 0 {
            let have = nodes().map(|n| n.gpu_free_milli()).fold(0i64, i64::saturating_add);
            if have < self.gpu_milli {
                short.push(format!(
                    "{}: {} asked, {} free",
                    crate::core::GPU_RESOURCE,
                    show_gpus(self.gpu_milli),
                    show_gpus(have)
                ));
            }
        }
        short
    }
}

/// Instances of MIG profile `name` the node's MIG GPUs could still carve, slices taken as contiguous.
fn mig_instances(node: &crate::core::Node, name: &str) -> i64 {
    let Some(profile) = name.strip_prefix(MIG_RESOURCE_PREFIX) else { return 0 };
    node.gpus
        .iter()
        .filter_map(|g| g.mig.as_ref())
        .filter_map(|m| {
            let p = &m.geometry.profiles[m.geometry.profile(profile)?];
            let by_slices = m.free_slices() / p.slices;
            let by_compute = MIG_COMPUTE.saturating_sub(m.used_compute) / p.compute;
            Some(i64::from(by_slices.min(by_compute)))
        })
        .sum()
}

fn show(name: &str, value: i64) -> String {
    match name {
        "cpu" => format_cpu(value),
        "memory" => format_memory(value),
        _ => value.to_string(),
    }
}

fn show_gpus(milli: i64) -> String {
    if milli % crate::core::GPU_MILLI == 0 {
        (milli / crate::core::GPU_MILLI).to_string()
    } else {
        format!("{:.3}", milli as f64 / crate::core::GPU_MILLI as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, Node};

    fn cluster() -> Snapshot {
        let node = |name: &str| Node::new(name, Resources::new(8000, 64 << 30, 110)).with_gpus(4, "A100-80GB");
        let mut cordoned = node("cordoned");
        cordoned.unschedulable = true;
        Snapshot::new(vec![node("n0"), node("n1"), cordoned]).unwrap()
    }

    fn needs(cpu_milli: i64, gpus: i64) -> MinResources {
        MinResources { resources: Resources::new(cpu_milli, 0, 0), gpu_milli: gpus * 1000 }
    }

    #[test]
    fn free_capacity_of_the_schedulable_nodes_is_summed() {
        let mut s = cluster();
        assert!(needs(16_000, 8).shortfall(&s).is_empty());
        // The cordoned node's GPUs do not count.
        assert_eq!(needs(0, 9).shortfall(&s), ["nvidia.com/gpu: 9 asked, 8 free"]);
        s.assume(&Pod::new("ns/p", Resources::new(2500, 0, 1), GpuRequest::whole(3)), 0, &[0, 1, 2]).unwrap();
        assert_eq!(needs(16_000, 8).shortfall(&s), ["cpu: 16 asked, 13500m free", "nvidia.com/gpu: 8 asked, 5 free"]);
    }

    #[test]
    fn running_members_count_towards_the_minimum() {
        let running = Pod::new("ns/w-0", Resources::new(1000, 0, 1), GpuRequest::whole(4));
        let left = needs(4000, 8).less_held([&running]);
        assert_eq!(left, needs(3000, 4));
        assert_eq!(needs(500, 2).less_held([&running]), needs(0, 0));
    }

    #[test]
    fn extended_resources_and_mig_instances_are_counted() {
        let fpga = Node::new("f", Resources::new(8000, 0, 110).with_extended("example.com/fpga", 2));
        let mut mig = Node::new("m", Resources::new(8000, 0, 110)).with_gpus(1, "A100-SXM4-80GB");
        mig.gpus[0].mig = Some(crate::core::mig::MigState::new(&crate::core::mig::GPU_80GB));
        let s = Snapshot::new(vec![fpga, mig]).unwrap();
        let ask = |name: &str, n: i64| MinResources {
            resources: Resources::new(0, 0, 0).with_extended(name, n),
            gpu_milli: 0,
        };
        assert!(ask("example.com/fpga", 2).shortfall(&s).is_empty());
        assert_eq!(ask("example.com/fpga", 3).shortfall(&s), ["example.com/fpga: 3 asked, 2 free"]);
        // 8 memory slices but 7 compute slices: seven 1g.10gb, two 3g.40gb.
        assert!(ask("nvidia.com/mig-1g.10gb", 7).shortfall(&s).is_empty());
        assert_eq!(ask("nvidia.com/mig-1g.10gb", 8).shortfall(&s), ["nvidia.com/mig-1g.10gb: 8 asked, 7 free"]);
        assert_eq!(ask("nvidia.com/mig-3g.40gb", 3).shortfall(&s), ["nvidia.com/mig-3g.40gb: 3 asked, 2 free"]);
    }
}
