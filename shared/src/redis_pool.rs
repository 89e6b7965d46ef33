//! The pool of multiplexed Redis connections that the api's requests and a
//! worker's jobs take their short commands from.
//!
//! deadpool-redis makes and checks the connections; this module only decides
//! *when* a connection is checked. deadpool-redis's manager checks every
//! connection it hands out with an `UNWATCH` + `PING` round trip. On the queue
//! path that was a round trip, and two of the ~45 Redis commands, for every
//! checkout — several per job — while the connection had answered a moment
//! before. Here a connection is checked only when there is reason to doubt it:
//!
//! - a connection that failed a command with a connection-level error (I/O,
//!   dropped, timed out) is thrown away when it comes back, never handed out
//!   again;
//! - a connection that has not answered anything for [`CHECK_AFTER`] is
//!   checked (deadpool-redis's `UNWATCH` + `PING`) before it is handed out,
//!   so a Redis that restarted while the pool sat idle is noticed by the pool,
//!   not by a caller.
//!
//! A connection that broke in the last [`CHECK_AFTER`] without being used
//! reaches one caller, whose command fails with a Redis error: every caller
//! already treats that as "Redis unavailable" (retry, backoff, 503). verdict
//! never uses `WATCH`, so there is no transaction state to reset between
//! users.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// How long a connection may go without a successful reply before it is
/// checked again on its way out of the pool.
pub const CHECK_AFTER: Duration = Duration::from_secs(1);

/// The pool.
pub type Pool = managed::Pool<Manager, Connection>;

/// Why no connection could be had.
pub type PoolError = managed::PoolError<RedisError>;

/// Makes connections (through deadpool-redis) and decides when to check them.
pub struct Manager {
    inner: deadpool_redis::Manager,
}

impl Manager {
    pub fn new(inner: deadpool_redis::Manager) -> Manager {
        Manager { inner }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

/// A multiplexed connection and what its last replies said about it.
pub struct Tracked {
    conn: MultiplexedConnection,
    /// A command failed in a way that says the connection itself is gone.
    broken: bool,
    /// When a command (or a check) last got an answer.
    last_answer: Instant,
}

impl Tracked {
    fn note<T>(&mut self, result: &Result<T, RedisError>) {
        match result {
            Ok(_) => self.last_answer = Instant::now(),
            // A server error (a script's error reply, WRONGTYPE, NOSCRIPT...)
            // comes over a healthy connection; these do not.
            Err(err) if breaks_connection(err) => self.broken = true,
            // An error reply is still an answer.
            Err(_) => self.last_answer = Instant::now(),
        }
    }
}

/// Whether an error means the connection cannot be trusted any more.
fn breaks_connection(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_unrecoverable_error()
}

impl managed::Manager for Manager {
    type Type = Tracked;
    type Error = RedisError;

    async fn create(&self) -> Result<Tracked, RedisError> {
        let conn = managed::Manager::create(&self.inner).await?;
        Ok(Tracked {
            conn,
            broken: false,
            last_answer: Instant::now(),
        })
    }

    async fn recycle(&self, tracked: &mut Tracked, metrics: &Metrics) -> RecycleResult<RedisError> {
        if tracked.broken {
            return Err(RecycleError::message(
                "the connection failed a command: replaced",
            ));
        }
        if tracked.last_answer.elapsed() < CHECK_AFTER {
            return Ok(());
        }
        managed::Manager::recycle(&self.inner, &mut tracked.conn, metrics).await?;
        tracked.last_answer = Instant::now();
        Ok(())
    }
}

/// A connection out of the pool; it goes back when dropped.
pub struct Connection {
    object: managed::Object<Manager>,
}

impl From<managed::Object<Manager>> for Connection {
    fn from(object: managed::Object<Manager>) -> Connection {
        Connection { object }
    }
}

impl Deref for Connection {
    type Target = MultiplexedConnection;

    fn deref(&self) -> &MultiplexedConnection {
        &self.object.conn
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut MultiplexedConnection {
        &mut self.object.conn
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let tracked: &mut Tracked = &mut self.object;
            let result = tracked.conn.req_packed_command(cmd).await;
            tracked.note(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let tracked: &mut Tracked = &mut self.object;
            let result = tracked
                .conn
                .req_packed_commands(pipeline, offset, count)
                .await;
            tracked.note(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.object.conn.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connection_level_errors_break_a_connection() {
        let io: RedisError =
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe").into();
        assert!(breaks_connection(&io));
        let timeout: RedisError =
            std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out").into();
        assert!(breaks_connection(&timeout));
        let reply: RedisError = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "ERR finish: outcome must be done or failed",
        ));
        assert!(!breaks_connection(&reply));
    }
}
