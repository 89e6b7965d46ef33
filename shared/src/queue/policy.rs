//! How hard the queue tries before it gives up on a job, and when a job held
//! by a silent worker is taken over. The numbers are defaults: the worker's
//! flags (`--max-attempts`, `--reclaim-after`) and `fleet up`'s change them.
//!
//! They are chosen against the watchdog's crash limit (5 crashes within 60 s
//! mark a process failed): a job that kills every worker that runs it (a
//! poison job) is started at most [`DEFAULT_MAX_ATTEMPTS`] times in all, so it
//! costs at most 3 crashes and can never, alone, take a worker to `failed`.
//! `docs/reliability.md` has the arithmetic.

use std::time::Duration;

use super::heartbeat::HEARTBEAT_INTERVAL;

/// How many times a job may be started. The start after the last one does
/// not run it: the job goes to the dead-letter stream and ends `failed`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How long a stream entry may sit in a worker's hands without a sign of life
/// before another worker claims it (XAUTOCLAIM).
pub const DEFAULT_RECLAIM_AFTER: Duration = Duration::from_secs(30);

/// The shortest reclaim time allowed. A live worker renews the entries it
/// holds at every heartbeat; three heartbeats of silence leave no doubt that
/// nothing is renewing them.
pub const MIN_RECLAIM_AFTER: Duration = Duration::from_secs(3 * HEARTBEAT_INTERVAL.as_secs());

/// The dead-letter stream keeps about this many entries (XADD MAXLEN ~).
pub const DEAD_LETTER_MAXLEN: u64 = 10_000;

/// The wait before the start after attempt `attempt` (1-based) failed
/// transiently: 1 s, 2 s, 4 s, ... capped at 30 s.
pub fn retry_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << doublings).min(Duration::from_secs(30))
}

/// How often a worker looks for entries to reclaim: often enough that an
/// abandoned job waits little more than the reclaim time, rarely enough to
/// cost nothing (XAUTOCLAIM scans only the pending list).
pub fn reclaim_check_every(reclaim_after: Duration) -> Duration {
    (reclaim_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_a_cap() {
        let delays: Vec<u64> = (1..=8).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn the_reclaim_time_outlasts_several_renewals() {
        assert!(MIN_RECLAIM_AFTER >= HEARTBEAT_INTERVAL * 3);
        assert!(DEFAULT_RECLAIM_AFTER >= MIN_RECLAIM_AFTER);
        assert_eq!(
            reclaim_check_every(Duration::from_secs(6)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            reclaim_check_every(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            reclaim_check_every(DEFAULT_RECLAIM_AFTER),
            Duration::from_millis(7500)
        );
    }
}
