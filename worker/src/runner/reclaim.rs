//! Now and then, taking over the jobs of workers that went silent.
//!
//! Between reads the loop asks [`Reclaimer::due`]; when it is, it claims the
//! entries idle for longer than the reclaim time (XAUTOCLAIM, see
//! `verdict_shared::queue::reclaim`) and runs them like new ones. Live
//! workers renew their entries at every heartbeat, so what is claimed belongs
//! to a worker that died, hung or lost Redis and was not restarted under its
//! name (a restarted one re-reads its own entries at once).

use std::time::Duration;

use redis::aio::ConnectionLike;
use tokio::time::Instant;
use verdict_shared::queue::policy::reclaim_check_every;
use verdict_shared::queue::reclaim::reclaim;
use verdict_shared::queue::{QueueError, StreamEntry};

/// When to look next, and for how idle an entry.
#[derive(Debug)]
pub struct Reclaimer {
    reclaim_after: Duration,
    every: Duration,
    next: Instant,
}

impl Reclaimer {
    /// Looks for the first time one check interval after the worker starts
    /// (its own pending entries come first), then every interval.
    pub fn new(reclaim_after: Duration) -> Reclaimer {
        let every = reclaim_check_every(reclaim_after);
        Reclaimer {
            reclaim_after,
            every,
            next: Instant::now() + every,
        }
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Claims up to `count` abandoned entries for `consumer`.
    pub async fn claim<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, QueueError> {
        self.next = Instant::now() + self.every;
        let entries = reclaim(conn, consumer, self.reclaim_after, count).await?;
        if !entries.is_empty() {
            tracing::warn!(
                jobs = entries.len(),
                idle_over_ms = self.reclaim_after.as_millis() as u64,
                "reclaimed jobs from a worker that went silent"
            );
            // More may be waiting: look again at once.
            self.next = Instant::now();
        }
        Ok(entries)
    }
}
