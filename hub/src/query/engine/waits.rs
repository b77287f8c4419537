//! How long the writer waited for the rollups' lock before applying a committed group: what a
//! question running meanwhile cost the receipts directly (they go out once the group is
//! applied), apart from the CPU it took. Kept as counts by power of two of microseconds, so a
//! hub that runs for months holds 40 numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets: waits of less than 1 µs, then [2^(i-1), 2^i) µs; the last holds everything longer.
const BUCKETS: usize = 40;

/// The writer's waits so far.
#[derive(Debug)]
pub(super) struct LockWaits {
    counts: [AtomicU64; BUCKETS],
    longest_us: AtomicU64,
    total_us: AtomicU64,
}

impl Default for LockWaits {
    fn default() -> LockWaits {
        LockWaits {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            longest_us: AtomicU64::new(0),
            total_us: AtomicU64::new(0),
        }
    }
}

impl LockWaits {
    pub(super) fn record(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        self.counts[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.longest_us.fetch_max(us, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(super) fn seen(&self) -> WaitsSeen {
        WaitsSeen {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            longest_us: self.longest_us.load(Ordering::Relaxed),
            total_us: self.total_us.load(Ordering::Relaxed),
        }
    }
}

/// The writer's waits for the rollups' lock as counted at one moment ([`crate::query::Engine::lock_waits`]);
/// two of them give the waits between ([`WaitsSeen::since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitsSeen {
    counts: [u64; BUCKETS],
    /// The longest wait since the hub started, in µs.
    pub longest_us: u64,
    /// The waits added up, in µs: how long the receipts were held back by the lock in all.
    pub total_us: u64,
}

impl Default for WaitsSeen {
    /// Nothing counted.
    fn default() -> WaitsSeen {
        WaitsSeen {
            counts: [0; BUCKETS],
            longest_us: 0,
            total_us: 0,
        }
    }
}

impl WaitsSeen {
    /// The waits counted after `before` (`longest_us` stays the longest since the start).
    pub fn since(&self, before: &WaitsSeen) -> WaitsSeen {
        WaitsSeen {
            counts: std::array::from_fn(|i| self.counts[i].saturating_sub(before.counts[i])),
            longest_us: self.longest_us,
            total_us: self.total_us.saturating_sub(before.total_us),
        }
    }

    /// How many waits (one per committed group applied).
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The wait that a share `q` of the waits did not exceed, as its bucket's upper bound in µs
    /// (at most twice the true figure; 0 when nothing was counted).
    pub fn quantile_us(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let want = ((total as f64 * q).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return 1u64 << i;
            }
        }
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each wait counts in its power of two; quantiles are bucket bounds over the waits
    /// counted since an earlier reading, checked against the waits sorted.
    #[test]
    fn waits_are_counted_by_power_of_two_and_read_between_two_moments() {
        let w = LockWaits::default();
        w.record(Duration::from_micros(5_000));
        let before = w.seen();
        let waits = [0u64, 1, 3, 3, 7, 100, 900, 1_000, 40_000, 70_000];
        for us in waits {
            w.record(Duration::from_micros(us));
        }
        let between = w.seen().since(&before);
        assert_eq!(between.count(), waits.len() as u64);
        assert_eq!(between.longest_us, 70_000);
        assert_eq!(between.total_us, waits.iter().sum::<u64>());
        for q in [0.1, 0.5, 0.9, 0.99, 1.0] {
            let exact = waits[((waits.len() as f64 * q).ceil() as usize).max(1) - 1];
            let bound = between.quantile_us(q);
            assert!(
                exact < bound.max(1) && bound <= 2 * exact.max(1),
                "q {q}: {exact} µs within {bound}"
            );
        }
        assert_eq!(WaitsSeen::since(&before, &before).quantile_us(0.99), 0);
    }
}
