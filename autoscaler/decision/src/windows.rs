//! The replica histories the decision's windows read, kept between periods the same way by every caller
//! (the sidecar and the simulator).

use crate::decide::{Decision, Policy, record};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaHistory {
    /// Raw replica recommendations, for the stabilization windows ([`crate::Input::history`]).
    pub recommendations: Vec<(f64, u32)>,
    /// Replica counts seen, for the base of the scale-up rate limit.
    replicas_seen: Vec<(f64, u32)>,
}

impl ReplicaHistory {
    /// Records `replicas` as seen at `now` and returns the base of the scale-up limit
    /// ([`crate::Input::limit_base`]): the lowest count of the last `limit_period_s`.
    pub fn limit_base(&mut self, now: f64, replicas: u32, limit_period_s: f64) -> u32 {
        record(&mut self.replicas_seen, now, replicas, limit_period_s);
        self.replicas_seen.iter().map(|&(_, r)| r).min().unwrap_or(replicas)
    }

    /// Records the decision's raw recommendation for the windows of later periods, keeping the longest
    /// window's worth.
    pub fn remember(&mut self, now: f64, policy: &Policy, d: &Decision) {
        if let Some(r) = d.recommended_replicas {
            let keep_s = policy.scale_down_window_s.max(policy.scale_up_window_s) + 1.0;
            record(&mut self.recommendations, now, r, keep_s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_base_is_the_lowest_count_of_the_limit_period() {
        let mut h = ReplicaHistory::default();
        assert_eq!(h.limit_base(0.0, 2, 60.0), 2);
        assert_eq!(h.limit_base(30.0, 4, 60.0), 2);
        // At t=70 the count of t=0 has left the 60-s period.
        assert_eq!(h.limit_base(70.0, 8, 60.0), 4);
    }
}
