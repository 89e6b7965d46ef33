//! Redis as the supervisor last saw it: whether an exit happened during an
//! outage, and whether Redis has been up long enough to judge heartbeats.

use std::time::{Duration, Instant};

/// Redis as the watchdog last saw it.
#[derive(Debug, Clone, Default)]
pub(super) struct RedisHealth {
    pub(super) healthy: bool,
    /// Whether it has ever answered since the watchdog started: only then is
    /// "unreachable" an outage. A Redis that never answered is a
    /// misconfiguration, and exits under it count as crashes.
    pub(super) ever_healthy: bool,
    /// Since when it has been healthy without interruption.
    pub(super) since: Option<Instant>,
    pub(super) error: Option<String>,
}

impl RedisHealth {
    pub(super) fn outage(&self) -> bool {
        self.ever_healthy && !self.healthy
    }

    /// Whether Redis has answered for at least `span` without a break.
    pub(super) fn steady_for(&self, span: Duration, now: Instant) -> bool {
        self.since
            .is_some_and(|since| now.duration_since(since) >= span)
    }
}
