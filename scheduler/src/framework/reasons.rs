//! Aggregation of per-node filter reasons into kube-scheduler's one-line message.

use std::fmt;

use super::Reason;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureReasons {
    pub total_nodes: usize,
    /// Few distinct reasons occur in one cycle, so a list beats a map on the hot path of rejecting
    /// thousands of nodes.
    pub counts: Vec<(Reason, usize)>,
}

impl FailureReasons {
    pub fn new(total_nodes: usize) -> Self {
        FailureReasons { total_nodes, counts: Vec::new() }
    }

    pub fn add(&mut self, reason: Reason) {
        match self.counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((reason, 1)),
        }
    }

    pub fn count(&self, reason: &str) -> usize {
        self.counts.iter().find(|(r, _)| r == reason).map_or(0, |(_, n)| *n)
    }
}

impl fmt::Display for FailureReasons {
    /// `0/1213 nodes are available: 800 Insufficient nvidia.com/gpu, 413 GPU model not allowed.`
    /// Reasons are listed most frequent first, then by name, so the message is stable across cycles
    /// (an Event de-duplicated on its message must not flap).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available", self.total_nodes)?;
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (i, (reason, n)) in counts.iter().enumerate() {
            write!(f, "{} {n} {reason}", if i == 0 { ":" } else { "," })?;
        }
        write!(f, ".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lists_reasons_most_frequent_first() {
        let mut r = FailureReasons::new(1213);
        for _ in 0..413 {
            r.add("GPU model not allowed".into());
        }
        for _ in 0..800 {
            r.add("Insufficient nvidia.com/gpu".into());
        }
        assert_eq!(
            r.to_string(),
            "0/1213 nodes are available: 800 Insufficient nvidia.com/gpu, 413 GPU model not allowed."
        );
        assert_eq!(r.count("GPU model not allowed"), 413);
    }

    #[test]
    fn empty_cluster_message() {
        assert_eq!(FailureReasons::new(0).to_string(), "0/0 nodes are available.");
    }
}
