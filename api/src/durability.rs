//! When a submission counts as accepted (`--durability`, issue 19).
//!
//! - `async` (the default): once the primary has stored the job. Redis
//!   replicates asynchronously, so a failover right after the 202 can lose
//!   the job: the replica that is promoted may not have it yet.
//! - `replicated`: once at least one replica has it too. Right after the
//!   submission's transaction, on the same connection, the api sends `WAIT 1
//!   TIMEOUT` (`verdict_shared::queue::replicate`); a 202 (or a 200 for an
//!   `Idempotency-Key` seen before) means a replica acknowledged the job.
//!   When none does within the timeout, the answer is `503 not_replicated`:
//!   the job is on the primary and will probably run, but it could be lost
//!   in a failover; resending with the same `Idempotency-Key` is safe and
//!   waits again.
//!
//! The timeout comes out of the request's Redis deadline
//! (`--redis-timeout-ms`), so that WAIT's own answer arrives before the
//! deadline would turn the submission into `503 outcome_unknown`
//! ([`wait_timeout`]).

use std::time::Duration;

/// How many replicas must hold a job before it is accepted, as the flag
/// names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// 202 once the primary has the job (replication follows).
    #[default]
    Async,
    /// 202 once a replica has the job too (`WAIT 1`).
    Replicated,
}

impl Durability {
    /// How many replicas must acknowledge a submission.
    pub fn replicas(self) -> u32 {
        match self {
            Durability::Async => 0,
            Durability::Replicated => 1,
        }
    }
}

/// The longest WAIT, whatever the deadline: a replica that has not
/// acknowledged within it is not keeping up, and the pool's connections
/// give up on a reply after two seconds.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// How long WAIT may block, given the request's Redis `deadline` and the time
/// already `spent` of it: three quarters of what is left (the rest for WAIT's
/// answer to come back), at most [`MAX_WAIT`], at least a millisecond.
pub fn wait_timeout(deadline: Duration, spent: Duration) -> Duration {
    (deadline.saturating_sub(spent) * 3 / 4).clamp(Duration::from_millis(1), MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_fits_in_what_is_left_of_the_deadline() {
        let ms = Duration::from_millis;
        assert_eq!(wait_timeout(ms(800), ms(0)), ms(600));
        assert_eq!(wait_timeout(ms(800), ms(400)), ms(300));
        // Never 0 (WAIT 1 0 blocks for ever), even with the deadline spent.
        assert_eq!(wait_timeout(ms(800), ms(800)), ms(1));
        assert_eq!(wait_timeout(ms(800), ms(2000)), ms(1));
        // A long deadline does not make a long WAIT.
        assert_eq!(wait_timeout(ms(60_000), ms(5)), MAX_WAIT);
        assert_eq!(Durability::default(), Durability::Async);
        assert_eq!(Durability::Async.replicas(), 0);
        assert_eq!(Durability::Replicated.replicas(), 1);
    }
}
