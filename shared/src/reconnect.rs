//! Waiting before reconnecting to Redis: longer after each failure, from the
//! start again after a success, with jitter so that a fleet of processes
//! that lost the same Redis does not come back in lockstep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Exponential backoff from [`Backoff::FIRST`] to [`Backoff::MAX`], with up to
/// 25% jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay before the next try; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
        base + jitter
    }

    /// After a success: the next failure starts from the shortest delay.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first >= Backoff::FIRST && first <= Backoff::FIRST.mul_f64(1.25));
        for _ in 0..20 {
            let delay = backoff.next_delay();
            assert!(delay <= Backoff::MAX.mul_f64(1.25));
        }
        assert!(backoff.next_delay() >= Backoff::MAX);
        backoff.reset();
        assert!(backoff.next_delay() <= Backoff::FIRST.mul_f64(1.25));
    }
}
