//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use verdict_shared::redis_pool::Pool;
use verdict_shared::shutdown::Shutdown;

use crate::callbacks::CallbackConfig;
use crate::durability::Durability;
use crate::examples::Examples;
use crate::image_references::ImageReferences;
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
    /// Which callback URLs jobs may name, and how callbacks are signed.
    pub callbacks: CallbackConfig,
    /// The bounds of `POST /v1/batches`.
    pub batch: BatchLimits,
    /// Most jobs queued or running (0: no limit): backpressure.
    pub max_queue_depth: u64,
    /// How long a request waits for Redis before answering 503.
    pub redis_timeout: Duration,
    /// Which images jobs may name instead of carrying.
    pub images: ImageReferences,
    /// Whether a submission waits for a replica before it is accepted.
    pub durability: Durability,
    /// The web page's example photos (`--examples`), read at start.
    pub examples: Arc<Examples>,
}

/// How large a batch may be.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_bytes: usize,
    pub max_jobs: usize,
}
