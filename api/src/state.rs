//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::Pool;
use verdict_shared::shutdown::Shutdown;

use crate::submission::Limits;
use crate::wait::Waiters;
use crate::wait::subscriber::Subscribed;

/// The api's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub waiters: Arc<Waiters>,
    pub subscribed: Arc<Subscribed>,
    pub limits: Limits,
    pub result_ttl: Duration,
    /// Fires when the process stops: long-polls answer at once.
    pub shutdown: Shutdown,
    /// Most jobs queued or running (0: no limit): backpressure.
    pub max_queue_depth: u64,
    /// How long a request waits for Redis before answering 503.
    pub redis_timeout: Duration,
}
