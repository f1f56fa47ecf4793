//! When room frees up: what the caller knows about run times, and the earliest time a set of nodes will
//! hold a gang if the pods on them end when expected.
//!
//! The queue uses it in two places, and only where every time it needs is known:
//! - **Backfill into a reservation** (EASY backfill, as Slurm and Maui do it): the reserved gang's start
//!   is estimated from the end times of the pods holding its room (its *shadow time*); a later gang may use
//!   the reserved room when it is expected to be gone by then, so the room does not sit idle.
//! - **Waiting for a tighter domain** (`locality`): a gang that prefers a level starts spread now, or waits
//!   for a domain of that level when the wait is shorter than what the spread would add to its run.
//!
//! Where a time is unknown (no hint for a pod or a gang), the queue falls back to what needs no guess: the
//! reservation holds its room, and a gang starts as tightly as it fits now.

use std::time::Duration;

use rustc_hash::FxHashMap;

use super::Gang;
use crate::core::{Node, NodeId, Pod, Snapshot};
use crate::topology::{Occupancy, copies_that_fit};

/// What the caller knows about time, on the queue's clock.
pub trait RuntimeHints {
    /// When the placed pod `pod_key` is expected to end.
    fn expected_end(&self, pod_key: &str) -> Option<Duration>;
    /// How long `gang` runs once started at its tightest (the run time a spread placement stretches).
    fn expected_runtime(&self, gang: &Gang) -> Option<Duration>;
}

/// Knows nothing: the queue reserves without backfill and never waits for locality.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHints;

impl RuntimeHints for NoHints {
    fn expected_end(&self, _pod_key: &str) -> Option<Duration> {
        None
    }

    fn expected_runtime(&self, _gang: &Gang) -> Option<Duration> {
        None
    }
}

/// The earliest time, at or after `now`, at which the nodes in `scope` hold `need` copies of `sizing`
/// (counting only nodes marked in `eligible`), if every pod on them ends at its expected time, the pods
/// in `absent` are gone already (a placement being weighed), and nothing new arrives. `None` when some
/// other pod on them has no expected end, or even all of them ending does not make room.
#[allow(clippy::too_many_arguments)]
pub fn earliest_fit(
    snapshot: &Snapshot,
    scope: &[NodeId],
    eligible: &[bool],
    sizing: &Pod,
    need: u64,
    absent: &[&str],
    hints: &dyn RuntimeHints,
    now: Duration,
) -> Option<Duration> {
    let copies = |id: NodeId, node: &Node| {
        if eligible.get(id).copied().unwrap_or(false) { copies_that_fit(node, sizing, Occupancy::Current) } else { 0 }
    };
    // Only nodes whose pods end (or are absent) are copied, each when its first pod leaves.
    let mut freed: FxHashMap<NodeId, Node> = FxHashMap::default();
    for key in absent {
        let placement = snapshot.placement(key)?;
        let node = freed.entry(placement.node).or_insert_with(|| snapshot.nodes()[placement.node].clone());
        placement.release_from(node).ok()?;
    }
    let mut held: u64 =
        scope.iter().map(|&n| copies(n, freed.get(&n).unwrap_or(&snapshot.nodes()[n]))).fold(0, u64::saturating_add);
    if held >= need {
        return Some(now);
    }
    let mut ends: Vec<(Duration, &str, NodeId)> = Vec::new();
    for &node in scope {
        for (key, _) in snapshot.pods_on(node).filter(|(key, _)| !absent.contains(key)) {
            ends.push((hints.expected_end(key)?.max(now), key, node));
        }
    }
    ends.sort_unstable();
    for (end, key, id) in ends {
        let node = freed.entry(id).or_insert_with(|| snapshot.nodes()[id].clone());
        let before = copies(id, node);
        let placement = snapshot.placement(key).expect("a pod listed on a node of the snapshot is placed");
        placement.release_from(node).expect("a placed pod's requests are booked on its node");
        held = held - before + copies(id, node);
        if held >= need {
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::core::{GpuRequest, MIB, Node, Resources};

    struct Ends(HashMap<&'static str, u64>);

    impl RuntimeHints for Ends {
        fn expected_end(&self, pod_key: &str) -> Option<Duration> {
            self.0.get(pod_key).map(|&s| Duration::from_secs(s))
        }
        fn expected_runtime(&self, _gang: &Gang) -> Option<Duration> {
            None
        }
    }

    fn pod(key: &str, gpus: u32) -> Pod {
        Pod::new(key, Resources::new(1000, MIB, 1), GpuRequest::whole(gpus))
    }

    /// Three 8-GPU nodes: node 0 holds a (6 GPUs, ends at 100) and b (2, ends at 300); node 1 holds c
    /// (8, ends at 200); node 2 is free.
    fn busy() -> Snapshot {
        let nodes =
            (0..3).map(|i| Node::new(format!("n{i}"), Resources::new(64_000, 512 * MIB, 110)).with_gpus(8, "A100"));
        let mut s = Snapshot::new(nodes.collect()).unwrap();
        s.assume(&pod("a", 6), 0, &[0, 1, 2, 3, 4, 5]).unwrap();
        s.assume(&pod("b", 2), 0, &[6, 7]).unwrap();
        s.assume(&pod("c", 8), 1, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        s
    }

    #[test]
    fn room_frees_when_the_pods_holding_it_end() {
        let s = busy();
        let hints = Ends(HashMap::from([("a", 100), ("b", 300), ("c", 200)]));
        let all = [true; 3];
        let now = Duration::from_secs(10);
        let whole = pod("w", 8);
        let at = |scope: &[NodeId], need| earliest_fit(&s, scope, &all, &whole, need, &[], &hints, now);
        assert_eq!(at(&[0, 1, 2], 1), Some(now), "node 2 is free now");
        // Two whole nodes: node 1 frees at 200, node 0 only when b ends at 300.
        assert_eq!(at(&[0, 1, 2], 2), Some(Duration::from_secs(200)));
        assert_eq!(at(&[0, 1, 2], 3), Some(Duration::from_secs(300)));
        assert_eq!(at(&[0, 1], 2), Some(Duration::from_secs(300)));
        assert_eq!(at(&[0, 1, 2], 4), None, "three nodes never hold four");
        // Six GPUs on node 0 free at 100.
        assert_eq!(earliest_fit(&s, &[0], &all, &pod("six", 6), 1, &[], &hints, now), Some(Duration::from_secs(100)));
        // A node that filters reject never counts.
        assert_eq!(
            earliest_fit(&s, &[0, 1, 2], &[true, true, false], &whole, 2, &[], &hints, now),
            Some(Duration::from_secs(300))
        );
        assert_eq!(s.placed_pods(), 3, "the snapshot is left as it was");
        // c counted as gone already (a placement being weighed): node 1 is free now, and c's end unneeded.
        let no_c = Ends(HashMap::from([("a", 100), ("b", 300)]));
        assert_eq!(earliest_fit(&s, &[1, 2], &all, &whole, 2, &["c"], &no_c, now), Some(now));
        assert_eq!(earliest_fit(&s, &[0, 1, 2], &all, &whole, 3, &["c"], &no_c, now), Some(Duration::from_secs(300)));
    }

    #[test]
    fn an_unknown_end_in_scope_means_no_estimate() {
        let s = busy();
        let hints = Ends(HashMap::from([("a", 100), ("c", 200)]));
        let all = [true; 3];
        let whole = pod("w", 8);
        assert_eq!(
            earliest_fit(&s, &[1, 2], &all, &whole, 2, &[], &hints, Duration::ZERO),
            Some(Duration::from_secs(200))
        );
        assert_eq!(earliest_fit(&s, &[0, 1, 2], &all, &whole, 3, &[], &hints, Duration::ZERO), None);
        assert_eq!(earliest_fit(&s, &[0, 1, 2], &all, &whole, 2, &[], &NoHints, Duration::ZERO), None);
    }
}
