//! Per-event metrics bucketed by arrived workload, as the FGD artifact's analysis scripts bucket them:
//! an event belongs to bucket k when its arrived GPU request, as a % of capacity, rounds (half to even)
//! to k; a bucket is the plain mean of its events; an empty bucket borrows the events of k−1..=k+1.

pub const MAX_ARRIVED_PCT: usize = 130;

/// The bucket of an arrived GPU request: its % of capacity, rounded half to even.
pub fn arrived_bucket(arrived_milli: i64, capacity_milli: i64) -> f64 {
    (100.0 * arrived_milli as f64 / capacity_milli as f64).round_ties_even()
}

#[derive(Debug, Clone)]
pub struct ArrivalBuckets {
    capacity_milli: i64,
    /// Per bucket: events, sum of allocation % (each rounded to 2 decimals), sum of fragmented milli.
    sums: Vec<(u64, f64, f64)>,
}

impl ArrivalBuckets {
    pub fn new(capacity_milli: i64) -> Self {
        ArrivalBuckets { capacity_milli, sums: vec![(0, 0.0, 0.0); MAX_ARRIVED_PCT + 1] }
    }

    pub fn record(&mut self, arrived_milli: i64, used_milli: i64, frag_milli: f64) {
        let k = self.bucket(arrived_milli);
        if !(0.0..=MAX_ARRIVED_PCT as f64).contains(&k) {
            return;
        }
        let alloc = crate::replay::round2(100.0 * used_milli as f64 / self.capacity_milli as f64);
        let bucket = &mut self.sums[k as usize];
        bucket.0 += 1;
        bucket.1 += alloc;
        bucket.2 += frag_milli;
    }

    /// An arrived GPU request as a % of this cluster's capacity.
    pub fn arrived_pct(&self, arrived_milli: i64) -> f64 {
        100.0 * arrived_milli as f64 / self.capacity_milli as f64
    }

    /// [`arrived_bucket`] on this cluster's capacity.
    pub fn bucket(&self, arrived_milli: i64) -> f64 {
        arrived_bucket(arrived_milli, self.capacity_milli)
    }

    fn mean(&self, k: usize, pick: impl Fn(&(u64, f64, f64)) -> f64) -> Option<f64> {
        let window = |range: std::ops::RangeInclusive<usize>| {
            let (n, sum) = range.filter_map(|i| self.sums.get(i)).fold((0u64, 0.0), |(n, s), b| (n + b.0, s + pick(b)));
            (n > 0).then(|| sum / n as f64)
        };
        window(k..=k).or_else(|| window(k.saturating_sub(1)..=k + 1))
    }

    /// Mean allocated GPU (% of capacity) per arrived %, 0..=130.
    pub fn alloc_pct(&self) -> Vec<Option<f64>> {
        (0..=MAX_ARRIVED_PCT).map(|k| self.mean(k, |b| b.1).map(crate::replay::round2)).collect()
    }

    /// Mean fragmented GPU (% of capacity) per arrived %, 0..=130.
    pub fn frag_pct(&self) -> Vec<Option<f64>> {
        let capacity = self.capacity_milli as f64;
        (0..=MAX_ARRIVED_PCT)
            .map(|k| self.mean(k, |b| b.2).map(|f| crate::replay::round2(100.0 * f / capacity)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_averaged_per_rounded_arrival_with_a_fallback_window() {
        let mut b = ArrivalBuckets::new(1000);
        b.record(0, 0, 0.0); // bucket 0
        b.record(10, 10, 5.0); // 1% -> bucket 1
        b.record(14, 10, 7.0); // 1.4% -> bucket 1
        b.record(25, 20, 0.0); // 2.5% -> ties to even: bucket 2
        b.record(35, 20, 0.0); // 3.5% -> bucket 4
        let alloc = b.alloc_pct();
        assert_eq!(alloc[0], Some(0.0));
        assert_eq!(alloc[1], Some(1.0));
        assert_eq!(alloc[2], Some(2.0));
        assert_eq!(alloc[3], Some(2.0), "empty bucket 3 borrows buckets 2 and 4");
        assert_eq!(alloc[4], Some(2.0));
        assert_eq!(alloc[6], None);
        assert_eq!(b.frag_pct()[1], Some(0.6)); // mean 6 milli of 1000
    }
}
