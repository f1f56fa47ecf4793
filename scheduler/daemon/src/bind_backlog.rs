//! The binds decided and not sent yet, in the order they go out: higher priority first, then in the order
//! they were decided. A throttled scheduler decides faster than its client budget lets it bind (at the
//! default 50 binds/s, a pass that places 5,000 pods leaves 100 s of binds behind it); a pod of higher
//! priority decided meanwhile goes out with the next token instead of waiting behind that backlog.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::kube_io::BindJob;

#[derive(Default)]
pub struct Backlog {
    heap: BinaryHeap<Queued>,
    /// Counts the jobs pushed, so that equal priorities leave in the order they came.
    pushed: u64,
}

struct Queued {
    priority: i32,
    seq: u64,
    job: BindJob,
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl Backlog {
    pub fn push(&mut self, job: BindJob) {
        self.pushed += 1;
        self.heap.push(Queued { priority: job.priority, seq: self.pushed, job });
    }

    /// The job that goes out next.
    pub fn pop(&mut self) -> Option<BindJob> {
        self.heap.pop().map(|q| q.job)
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemberBind;
    use crate::translate::PodRef;
    use crate::unit::UnitKey;

    fn job(name: &str, priority: i32) -> BindJob {
        let pod = PodRef { namespace: "ns".into(), name: name.into(), uid: String::new() };
        BindJob { unit: UnitKey::Pod(pod.key()), priority, member: MemberBind { pod, node: "n".into(), gpus: vec![] } }
    }

    #[test]
    fn higher_priority_first_and_equal_priorities_in_the_order_they_came() {
        let mut backlog = Backlog::default();
        for (name, priority) in [("a", 0), ("b", 0), ("urgent", 1000), ("c", 0), ("low", -5), ("mid", 10)] {
            backlog.push(job(name, priority));
        }
        backlog.push(job("urgent-2", 1000));
        let mut order = Vec::new();
        while let Some(j) = backlog.pop() {
            order.push(j.member.pod.name);
        }
        assert_eq!(order, ["urgent", "urgent-2", "mid", "a", "b", "c", "low"]);
        assert!(backlog.is_empty());
    }
}
