//! End-to-end tests of the queue: real redis-server, verdict-api and
//! verdict-worker processes (no-op judge), talking HTTP and Redis.
//!
//! The real-model tests (verdicts on photos) are in `queue_model.rs`.

mod bad_requests;
mod callback_announced;
mod fifty_jobs;
mod finish_is_final;
mod graceful_exit;
mod long_poll;
mod read_ahead;
mod redis_restart;
mod submit_together;
mod tcp_url;
mod together;
mod undecodable_image;
mod worker_names;

use std::time::Duration;

use tempfile::TempDir;
use verdict_e2e::RedisServer;
use verdict_shared::job::{ImageInfo, JobId};
use verdict_shared::queue::claim::ensure_group;
use verdict_shared::queue::submit::{NewJob, submit};

/// Generous bound for anything that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A private redis-server on a unix socket in a temporary directory, with
/// the jobs' consumer group made: for the tests that speak the queue
/// protocol straight to Redis. Redis stops, then the directory goes, when it
/// is dropped.
pub struct QueueRedis {
    pub server: RedisServer,
    _dir: TempDir,
}

impl QueueRedis {
    /// Starts it; with a connection to it.
    pub async fn start() -> (QueueRedis, redis::aio::MultiplexedConnection) {
        let dir = tempfile::tempdir().unwrap();
        let server = RedisServer::start_unix(dir.path());
        let mut conn = server.connection().await;
        ensure_group(&mut conn).await.unwrap();
        (QueueRedis { server, _dir: dir }, conn)
    }
}

/// The 3-byte "image" of the tiny jobs: a PNG's first bytes.
pub const TINY_IMAGE: &[u8] = b"\x89PN";

/// What the queue stores of [`TINY_IMAGE`].
pub fn tiny_image_info() -> ImageInfo {
    ImageInfo {
        bytes: TINY_IMAGE.len() as u64,
        sha256: "00".repeat(32),
        format: "png".into(),
        reference: None,
    }
}

/// A tiny job: `texts` on [`TINY_IMAGE`] (whose info is `info`), its
/// result kept 600 s, no queue limit.
pub fn tiny_job<'a>(id: JobId, texts: &'a [String], info: &'a ImageInfo) -> NewJob<'a> {
    NewJob {
        id,
        texts,
        premise: None,
        image_info: info,
        image: TINY_IMAGE,
        result_ttl: Duration::from_secs(600),
        max_queue_depth: 0,
    }
}

/// Submits, straight through the queue protocol (no api), a job with one
/// sentence and a 3-byte "image"; its id.
pub async fn submit_tiny_job(conn: &mut redis::aio::MultiplexedConnection) -> JobId {
    let id = JobId::new();
    let texts = vec!["A cup.".to_string()];
    let info = tiny_image_info();
    submit(conn, tiny_job(id, &texts, &info)).await.unwrap();
    id
}
