//! How many gang members a node or domain can hold, and how to split members over several domains.
//!
//! These are estimates for choosing domains; the members themselves are then placed through the normal
//! filters and `Snapshot::assume`, which have the last word.

use crate::core::{GPU_MILLI, Node, Pod};

/// What a node holds per copy of a pod is capped at this, for pods that request nothing countable.
pub const UNBOUNDED_COPIES: u64 = 1 << 32;

/// Whether to count against what is free now, or against the node as if it were empty (the capacity a
/// reservation could eventually obtain there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    Current,
    Empty,
}

/// How many copies of `pod` fit on `node` by CPU, memory, pod slots, extended resources and GPUs.
pub fn copies_that_fit(node: &Node, pod: &Pod, occupancy: Occupancy) -> u64 {
    let used = |value: i64| {
        if occupancy == Occupancy::Current { value } else { 0 }
    };
    let mut copies = UNBOUNDED_COPIES;
    let mut limit = |free: i64, want: i64| {
        if want > 0 {
            copies = copies.min((free.max(0) / want) as u64);
        }
    };
    let (alloc, req, want) = (&node.allocatable, &node.requested, &pod.requests);
    limit(alloc.cpu_milli - used(req.cpu_milli), want.cpu_milli);
    limit(alloc.memory_bytes - used(req.memory_bytes), want.memory_bytes);
    limit(alloc.pods - used(req.pods), want.pods);
    for (name, amount) in &want.extended {
        limit(alloc.extended(name) - used(req.extended(name)), *amount);
    }
    copies.min(gpu_copies(node, pod, occupancy))
}

fn gpu_copies(node: &Node, pod: &Pod, occupancy: Occupancy) -> u64 {
    let request = &pod.gpu;
    if request.is_none() {
        return UNBOUNDED_COPIES;
    }
    let free_per_gpu = node.gpus.iter().filter(|g| request.allows_model(&g.model)).map(|g| match occupancy {
        Occupancy::Current => g.free_milli(),
        Occupancy::Empty => GPU_MILLI,
    });
    if request.is_shared() {
        // Shares never span devices, so each GPU holds whole shares only.
        free_per_gpu.map(|free| (free / request.milli_per_gpu) as u64).sum()
    } else {
        let idle = free_per_gpu.filter(|&free| free >= request.milli_per_gpu).count() as u64;
        idle / u64::from(request.count)
    }
}

/// How `members` are split over candidate domains given as `(key, capacity)`: the fewest domains that
/// can hold them; among splits over that many domains an even one (8+8 beats 1+15), on the smallest
/// domains that take an even share (best fit, so big domains stay whole); when no even split exists, the
/// largest domains, filled as evenly as their capacities allow. `None` when all together are too small.
pub fn split_members<K: Copy + Ord>(candidates: &[(K, u64)], members: u64) -> Option<Vec<(K, u64)>> {
    if members == 0 {
        return Some(Vec::new());
    }
    let mut by_capacity: Vec<(K, u64)> = candidates.iter().copied().filter(|(_, cap)| *cap > 0).collect();
    by_capacity.sort_by_key(|&(key, cap)| (cap, key));
    let total: u64 = by_capacity.iter().map(|(_, cap)| *cap).fold(0, u64::saturating_add);
    if total < members {
        return None;
    }
    for used in 1..=by_capacity.len() as u64 {
        let even_share = members.div_ceil(used);
        let fitting: Vec<(K, u64)> = by_capacity.iter().copied().filter(|(_, cap)| *cap >= even_share).collect();
        if fitting.len() as u64 >= used {
            let chosen = &fitting[..used as usize];
            return Some(even_shares(chosen, members));
        }
        let largest = &by_capacity[by_capacity.len() - used as usize..];
        if largest.iter().map(|(_, cap)| *cap).fold(0, u64::saturating_add) >= members {
            return Some(water_fill(largest, members));
        }
    }
    None
}

/// `members` over `chosen` (ascending capacity), the larger shares on the larger domains.
fn even_shares<K: Copy>(chosen: &[(K, u64)], members: u64) -> Vec<(K, u64)> {
    let count = chosen.len() as u64;
    let (base, extra) = (members / count, members % count);
    chosen.iter().enumerate().map(|(i, &(key, _))| (key, base + u64::from((i as u64) >= count - extra))).collect()
}

/// Shares as equal as the capacities allow: every domain gets `min(capacity, level)` for the lowest
/// level that places everyone, the remainder one by one to the domains that can take it.
fn water_fill<K: Copy>(chosen: &[(K, u64)], members: u64) -> Vec<(K, u64)> {
    let holds = |level: u64| chosen.iter().map(|(_, cap)| (*cap).min(level)).fold(0, u64::saturating_add);
    let (mut low, mut high) = (0, members);
    while low < high {
        let mid = low + (high - low) / 2;
        if holds(mid) >= members { high = mid } else { low = mid + 1 }
    }
    let below = low.saturating_sub(1);
    let mut remainder = members - holds(below);
    chosen
        .iter()
        .rev()
        .map(|&(key, cap)| {
            let mut share = cap.min(below);
            if remainder > 0 && cap > below {
                share += 1;
                remainder -= 1;
            }
            (key, share)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{GpuRequest, Resources};

    fn node_with_gpus(gpus: usize) -> Node {
        Node::new("n", Resources::new(64_000, 1 << 40, 110)).with_gpus(gpus, "A100")
    }

    #[test]
    fn copies_count_whole_and_shared_gpus() {
        let mut node = node_with_gpus(8);
        node.gpus[0].used_milli = 500;
        let whole = |n| Pod::new("p", Resources::new(1000, 1, 1), GpuRequest::whole(n));
        assert_eq!(copies_that_fit(&node, &whole(1), Occupancy::Current), 7);
        assert_eq!(copies_that_fit(&node, &whole(2), Occupancy::Current), 3);
        assert_eq!(copies_that_fit(&node, &whole(2), Occupancy::Empty), 4);
        let share = Pod::new("s", Resources::new(1000, 1, 1), GpuRequest::shared(300));
        assert_eq!(copies_that_fit(&node, &share, Occupancy::Current), 7 * 3 + 1);
        let cpu_bound = Pod::new("c", Resources::new(30_000, 1, 1), GpuRequest::whole(1));
        assert_eq!(copies_that_fit(&node, &cpu_bound, Occupancy::Current), 2);
        let other_model = Pod::new("m", Resources::new(1, 1, 1), GpuRequest::whole(1).with_models(vec!["T4".into()]));
        assert_eq!(copies_that_fit(&node, &other_model, Occupancy::Current), 0);
    }

    #[test]
    fn even_split_on_the_smallest_domains_that_take_it() {
        let split = split_members(&[("big", 15), ("a", 8), ("b", 8), ("tiny", 1)], 16).unwrap();
        assert_eq!(split, vec![("a", 8), ("b", 8)]);
    }

    #[test]
    fn single_domain_when_one_suffices_best_fit() {
        assert_eq!(split_members(&[("big", 40), ("small", 20)], 16).unwrap(), vec![("small", 16)]);
    }

    #[test]
    fn uneven_only_when_capacities_force_it() {
        assert_eq!(split_members(&[("a", 15), ("b", 1)], 16).unwrap(), vec![("a", 15), ("b", 1)]);
        assert_eq!(split_members(&[("a", 15), ("b", 4), ("c", 4)], 16).unwrap(), vec![("a", 12), ("c", 4)]);
        assert_eq!(split_members(&[("a", 3), ("b", 3)], 7), None);
    }

    #[test]
    fn odd_counts_put_the_extra_member_on_the_larger_domain() {
        assert_eq!(split_members(&[("a", 9), ("b", 5)], 9).unwrap(), vec![("a", 9)]);
        assert_eq!(split_members(&[("a", 6), ("b", 5), ("c", 5)], 9).unwrap(), vec![("b", 4), ("c", 5)]);
    }
}
