//! The pool of multiplexed Redis connections that the api's requests and a
//! worker's jobs take their short commands from.
//!
//! deadpool makes the pool; this module makes the connections (through
//! [`RedisUrl::connect`], so that a `redis+sentinel://` URL asks the
//! sentinels for the primary at each new connection) and decides *when* a
//! connection is checked. deadpool-redis's manager checks every connection
//! it hands out with an `UNWATCH` + `PING` round trip. On the queue path that
//! was a round trip, and two of the ~45 Redis commands, for every checkout —
//! several per job — while the connection had answered a moment before. Here
//! a connection is checked only when there is reason to doubt it:
//!
//! - a connection that failed a command with a connection-level error (I/O,
//!   dropped, timed out), or that was answered `READONLY` or `MASTERDOWN`
//!   (it reaches a node that is no longer the primary: a failover,
//!   [`crate::redis_failover`]), is thrown away when it comes back, never
//!   handed out again;
//! - a connection that has not answered anything for [`CHECK_AFTER`] is
//!   checked (`UNWATCH` + `PING`, as deadpool-redis does) before it is
//!   handed out, so a Redis that restarted while the pool sat idle is
//!   noticed by the pool, not by a caller.
//!
//! A connection that broke in the last [`CHECK_AFTER`] without being used
//! reaches one caller, whose command fails with a Redis error: every caller
//! already treats that as "Redis unavailable" (retry, backoff, 503). verdict
//! never uses `WATCH`, so there is no transaction state to reset between
//! users.
//!
//! (deadpool-redis's own sentinel manager is not used: it opens connections
//! with redis-rs's default half-second reply timeout, too short for an 8 MiB
//! image on a loaded machine, and without the TLS files of
//! [`crate::redis_tls`].)

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, Value};

use crate::redis_failover;
use crate::redis_url::RedisUrl;

/// How long a connection may go without a successful reply before it is
/// checked again on its way out of the pool.
pub const CHECK_AFTER: Duration = Duration::from_secs(1);

/// The pool.
pub type Pool = managed::Pool<Manager, Connection>;

/// Why no connection could be had.
pub type PoolError = managed::PoolError<RedisError>;

/// Makes connections and decides when to check them.
pub struct Manager {
    url: RedisUrl,
    config: AsyncConnectionConfig,
    /// Makes each check's `PING` argument unique, so a stale reply cannot
    /// pass for the answer.
    ping_number: AtomicUsize,
}

impl Manager {
    /// Connections to `url` with `config`'s timeouts.
    pub fn new(url: RedisUrl, config: AsyncConnectionConfig) -> Manager {
        Manager {
            url,
            config,
            ping_number: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.url)
            .finish_non_exhaustive()
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
    /// Takes note of what a command got: `wrong_node` says whether a reply
    /// holds an error reply of a node that is not the primary.
    fn note<T>(&mut self, result: &Result<T, RedisError>, wrong_node: impl Fn(&T) -> bool) {
        match result {
            Ok(reply) if wrong_node(reply) => self.broken = true,
            Ok(_) => self.last_answer = Instant::now(),
            // A server error (a script's error reply, WRONGTYPE, NOSCRIPT...)
            // comes over a healthy connection; these do not.
            Err(err) if breaks_connection(err) => self.broken = true,
            // An error reply is still an answer.
            Err(_) => self.last_answer = Instant::now(),
        }
    }
}

/// Whether an error means the connection cannot be trusted any more: it is
/// broken, or it reaches a node that is no longer the primary.
fn breaks_connection(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_unrecoverable_error()
        || redis_failover::error_is_wrong_node(err)
}

impl managed::Manager for Manager {
    type Type = Tracked;
    type Error = RedisError;

    async fn create(&self) -> Result<Tracked, RedisError> {
        let conn = self.url.connect(&self.config).await?;
        Ok(Tracked {
            conn,
            broken: false,
            last_answer: Instant::now(),
        })
    }

    async fn recycle(&self, tracked: &mut Tracked, _: &Metrics) -> RecycleResult<RedisError> {
        if tracked.broken {
            return Err(RecycleError::message(
                "the connection failed a command: replaced",
            ));
        }
        if tracked.last_answer.elapsed() < CHECK_AFTER {
            return Ok(());
        }
        let ping_number = self.ping_number.fetch_add(1, Ordering::Relaxed).to_string();
        // One round trip: UNWATCH pipelined before the PING.
        let (echoed,): (String,) = redis::pipe()
            .cmd("UNWATCH")
            .ignore()
            .cmd("PING")
            .arg(&ping_number)
            .query_async(&mut tracked.conn)
            .await?;
        if echoed != ping_number {
            return Err(RecycleError::message("the check's PING got another answer"));
        }
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
            tracked.note(&result, redis_failover::answer_is_wrong_node);
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
            tracked.note(&result, |replies| {
                replies.iter().any(redis_failover::answer_is_wrong_node)
            });
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
        let readonly: RedisError = match redis::parse_redis_value(
            b"-READONLY You can't write against a read only replica.\r\n",
        ) {
            Ok(Value::ServerError(err)) => err.into(),
            other => panic!("not an error reply: {other:?}"),
        };
        assert!(breaks_connection(&readonly), "a demoted primary's answer");
    }
}
