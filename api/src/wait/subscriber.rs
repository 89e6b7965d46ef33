//! The api's one subscription to `verdict:events`.
//!
//! Finish scripts publish a job's id when it ends; this task wakes the
//! requests waiting for it. When the connection drops (Redis restarted, the
//! network cut), it reconnects with backoff and, once subscribed again, wakes
//! every waiter so each reads its job afresh: an event published while no one
//! listened is never waited for in vain.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use verdict_shared::queue::keys;
use verdict_shared::reconnect::Backoff;
use verdict_shared::redis_url::{COMMAND_TIMEOUT, RedisUrl};
use verdict_shared::shutdown::Shutdown;

use super::Waiters;

/// How often an idle subscription checks that its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Whether the subscription is live (for `/readyz`).
#[derive(Debug, Default)]
pub struct Subscribed(AtomicBool);

impl Subscribed {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs until `shutdown` fires.
pub async fn run(
    url: RedisUrl,
    waiters: Arc<Waiters>,
    subscribed: Arc<Subscribed>,
    mut shutdown: Shutdown,
) {
    let mut backoff = Backoff::new();
    loop {
        let ended = tokio::select! {
            ended = session(&url, &waiters, &subscribed) => ended,
            _ = shutdown.recv() => return,
        };
        let was_subscribed = subscribed.0.swap(false, Ordering::Relaxed);
        if was_subscribed {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(
            error = %ended.err().map_or_else(|| "connection closed".to_owned(), |e| e.to_string()),
            retry_in_ms = delay.as_millis() as u64,
            "job events subscription lost; long-polls fall back to their deadline until it is back"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// One subscription, until its connection fails.
async fn session(
    url: &RedisUrl,
    waiters: &Waiters,
    subscribed: &Subscribed,
) -> Result<(), redis::RedisError> {
    let client = url.client().await?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(keys::EVENTS).await?;
    subscribed.0.store(true, Ordering::Relaxed);
    tracing::info!(channel = keys::EVENTS, "subscribed to job events");
    waiters.wake_all();
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return Ok(()) };
                match message.get_payload::<String>().ok().and_then(|p| p.parse().ok()) {
                    Some(job) => waiters.notify(&job),
                    None => tracing::warn!("ignoring an event that names no job"),
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(err),
                    Err(_) => return Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "ping timed out",
                    ))),
                }
            }
        }
    }
}
