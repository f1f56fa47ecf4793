//! Client-side QPS/burst limit on the scheduler's own API writes (binds, status, Events), like client-go's
//! token bucket. The bucket is pure; `Limiter` wraps it for async callers.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    pub fn new(qps: f64, burst: u32) -> Self {
        TokenBucket { qps, burst: f64::from(burst), tokens: f64::from(burst), last: Duration::ZERO }
    }

    /// Takes a token at `now`; returns how long the caller must wait before its request may go.
    pub fn take(&mut self, now: Duration) -> Duration {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.qps) }
    }
}

pub struct Limiter {
    start: Instant,
    bucket: Mutex<TokenBucket>,
}

impl Limiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        Limiter { start: Instant::now(), bucket: Mutex::new(TokenBucket::new(qps, burst)) }
    }

    pub async fn acquire(&self) {
        let wait = self.bucket.lock().await.take(self.start.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_qps() {
        let mut b = TokenBucket::new(10.0, 3);
        let t = Duration::ZERO;
        assert_eq!(b.take(t), Duration::ZERO);
        assert_eq!(b.take(t), Duration::ZERO);
        assert_eq!(b.take(t), Duration::ZERO);
        assert_eq!(b.take(t), Duration::from_millis(100));
        assert_eq!(b.take(t), Duration::from_millis(200));
        // After a second the bucket is full again (capped at burst).
        let mut b = TokenBucket::new(10.0, 3);
        b.take(t);
        assert_eq!(b.take(Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(b.take(Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(b.take(Duration::from_secs(10)), Duration::ZERO);
        assert!(b.take(Duration::from_secs(10)) > Duration::ZERO);
    }
}
