//! The usage history of one container: samples of the last `keep_s` seconds, and their 90th percentile
//! (VPA's recommender reads the p90 of a decaying histogram; a plain window is enough at a period's scale).

use std::collections::VecDeque;

use crate::decide::Res;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageWindow {
    samples: VecDeque<(f64, Res)>,
}

impl UsageWindow {
    /// Adds the sample of `now` (if any) and forgets samples older than `keep_s`.
    pub fn observe(&mut self, now: f64, sample: Option<Res>, keep_s: f64) {
        if let Some(u) = sample {
            self.samples.push_back((now, u));
        }
        while self.samples.front().is_some_and(|(t, _)| now - t > keep_s) {
            self.samples.pop_front();
        }
    }

    /// The 90th percentile of CPU and of memory, each on its own (nearest rank); `None` without samples.
    pub fn p90(&self) -> Option<Res> {
        if self.samples.is_empty() {
            return None;
        }
        let mut cpu: Vec<i64> = self.samples.iter().map(|(_, r)| r.cpu).collect();
        let mut mem: Vec<i64> = self.samples.iter().map(|(_, r)| r.mem).collect();
        cpu.sort_unstable();
        mem.sort_unstable();
        let rank = (((cpu.len() as f64) * 0.9).ceil() as usize).clamp(1, cpu.len()) - 1;
        Some(Res::new(cpu[rank], mem[rank]))
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_is_the_nearest_rank_of_each_resource_within_the_window() {
        let mut w = UsageWindow::default();
        assert_eq!(w.p90(), None);
        for i in 1..=10 {
            // CPU rises, memory falls: the percentiles are taken per resource.
            w.observe(f64::from(i), Some(Res::new(i64::from(i) * 100, i64::from(11 - i))), 100.0);
        }
        assert_eq!(w.p90(), Some(Res::new(900, 9)));
        // A missing sample adds nothing but still ages the window: at t=15 the samples of t<5 are gone.
        w.observe(15.0, None, 10.0);
        assert_eq!(w.len(), 6);
        assert_eq!(w.p90(), Some(Res::new(1000, 6)));
        w.observe(100.0, None, 10.0);
        assert!(w.is_empty());
        assert_eq!(w.p90(), None);
    }
}
