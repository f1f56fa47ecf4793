//! Log lines about failures that repeat (binds, watches, the Lease while the API server is away): one line
//! per cause per interval, carrying how many failures it stands for, instead of one line per failure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct LogThrottle {
    interval: Duration,
    causes: HashMap<String, Cause>,
}

struct Cause {
    /// When the last line about this cause was written.
    logged_at: Instant,
    /// Failures since then, not yet in a line.
    unlogged: u64,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> LogThrottle {
        LogThrottle { interval, causes: HashMap::new() }
    }

    /// Counts one failure of `cause` at `now`. `Some(n)` when a line is due: the first failure of a cause,
    /// or the first one `interval` after the last line; `n` is the failures since that line, this one
    /// included.
    pub fn note(&mut self, cause: &str, now: Instant) -> Option<u64> {
        match self.causes.get_mut(cause) {
            Some(c) if now.saturating_duration_since(c.logged_at) < self.interval => {
                c.unlogged += 1;
                None
            }
            Some(c) => {
                let n = c.unlogged + 1;
                *c = Cause { logged_at: now, unlogged: 0 };
                Some(n)
            }
            None => {
                self.causes.insert(cause.to_string(), Cause { logged_at: now, unlogged: 0 });
                Some(1)
            }
        }
    }
}

/// What a failure is counted under: its HTTP code or client error kind (see [`crate::error`]).
pub use crate::error::{cause_of, watch_cause};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_cause_per_interval_with_the_count_it_stands_for() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = LogThrottle::new(s(10));
        assert_eq!(t.note("HTTP 500", t0), Some(1));
        assert_eq!(t.note("HTTP 500", t0 + s(1)), None);
        assert_eq!(t.note("HyperError", t0 + s(1)), Some(1), "another cause has its own line");
        assert_eq!(t.note("HTTP 500", t0 + s(9)), None);
        assert_eq!(t.note("HTTP 500", t0 + s(10)), Some(3));
        assert_eq!(t.note("HTTP 500", t0 + s(30)), Some(1));
    }
}
