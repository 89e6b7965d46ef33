//! What can go wrong when talking the queue protocol.

/// A queue operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached, timed out, or refused the command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No pooled connection could be had (Redis down, or the pool exhausted).
    #[error("redis pool: {0}")]
    Pool(#[from] crate::redis_pool::PoolError),
    /// Redis answered, but what it holds is not what the protocol says.
    /// Never caused by user input: the api validates before it writes.
    #[error("corrupt queue data: {0}")]
    Corrupt(String),
    /// The queue holds `depth` jobs, as many as its limit allows: the job was
    /// not accepted (backpressure). Try again once workers have caught up.
    #[error("the queue is full: {depth} jobs waiting or running, the limit is {limit}")]
    QueueFull { depth: u64, limit: u64 },
}

impl QueueError {
    pub(crate) fn corrupt(what: impl Into<String>) -> QueueError {
        QueueError::Corrupt(what.into())
    }

    /// The same error for another caller, where one call served several (a
    /// finish of several jobs): the same message, and as
    /// [`is_unavailable`](Self::is_unavailable) as this one.
    pub fn duplicate(&self) -> QueueError {
        match self {
            QueueError::Redis(err) => QueueError::Redis(err.clone()),
            QueueError::Pool(err) => QueueError::Redis(redis::RedisError::from(
                std::io::Error::other(format!("redis pool: {err}")),
            )),
            QueueError::Corrupt(what) => QueueError::Corrupt(what.clone()),
            QueueError::QueueFull { depth, limit } => QueueError::QueueFull {
                depth: *depth,
                limit: *limit,
            },
        }
    }

    /// Whether the error means Redis is unreachable or slow (worth retrying
    /// later) rather than a protocol violation: a failover in progress (no
    /// primary named yet, or a node that is no longer the primary answered)
    /// counts, it is over in seconds.
    pub fn is_unavailable(&self) -> bool {
        match self {
            QueueError::Redis(err) => {
                err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                    || err.code() == Some("LOADING")
                    || crate::redis_failover::error_is_wrong_node(err)
                    || crate::redis_failover::is_no_primary_yet(err)
            }
            QueueError::Pool(_) => true,
            QueueError::Corrupt(_) | QueueError::QueueFull { .. } => false,
        }
    }
}
