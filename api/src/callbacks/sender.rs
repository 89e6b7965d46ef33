//! The task that sends callbacks: reads `verdict:callbacks` as a member of
//! the `senders` group, POSTs each job, acknowledges it.
//!
//! Each entry gets its own task (at most [`MAX_IN_FLIGHT`] at once), so a slow
//! receiver does not hold up the others. Between attempts a task waits 1, 2,
//! 4, ... seconds, at most [`MAX_DELAY`], and touches its entry before each
//! wait and each attempt so that no other sender claims it while it is alive
//! (claims happen after `CLAIM_IDLE`, 30 s, longer than any wait or request
//! timeout here). Redirects are not followed: they could lead off the
//! allow-list. A host listed by name is reached only at its public addresses
//! (`verdict_shared::public_resolver`): no private, loopback or link-local
//! address unless the list names that address.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use verdict_shared::job::JobId;
use verdict_shared::queue::callbacks::{self, Delivery};
use verdict_shared::queue::read::read_job;
use verdict_shared::queue::{QueueError, StreamEntry};
use verdict_shared::reconnect::Backoff;
use verdict_shared::redis_pool::Pool;
use verdict_shared::redis_url::RedisUrl;
use verdict_shared::shutdown::Shutdown;

use super::{CallbackConfig, signature};

/// Callbacks being sent at once by one api process.
const MAX_IN_FLIGHT: usize = 32;
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(20);
/// How long a receiver has to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read of the stream waits for new entries.
const BLOCK: Duration = Duration::from_secs(1);
/// How often the stream is searched for entries of dead senders.
const CLAIM_EVERY: Duration = Duration::from_secs(10);

/// What a sending task needs.
struct Sender {
    name: String,
    pool: Pool,
    config: CallbackConfig,
    http: reqwest::Client,
    slots: Arc<Semaphore>,
    shutdown: Shutdown,
}

/// Sends callbacks until `shutdown` fires. `name` is this process's consumer
/// name in the group (unique per process).
pub async fn run(
    url: RedisUrl,
    pool: Pool,
    config: CallbackConfig,
    name: String,
    mut shutdown: Shutdown,
) {
    // Names lead only to public addresses (an address listed as such is
    // used as is), and no proxy from the environment stands in between.
    let http = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(verdict_shared::public_resolver::PublicResolver))
        .no_proxy()
        .user_agent(concat!("verdict/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the callback HTTP client: no callbacks will be sent");
            return;
        }
    };
    let sender = Arc::new(Sender {
        name,
        pool,
        config,
        http,
        slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        shutdown: shutdown.clone(),
    });
    let mut backoff = Backoff::new();
    loop {
        let ended = tokio::select! {
            ended = session(&url, &sender) => ended,
            _ = shutdown.recv() => return,
        };
        let delay = backoff.next_delay();
        tracing::warn!(error = %ended, retry_in_ms = delay.as_millis() as u64, "callback sender lost Redis");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Reads entries until the connection fails.
async fn session(url: &RedisUrl, sender: &Arc<Sender>) -> QueueError {
    let mut reader = match url.dedicated(BLOCK).await {
        Ok(reader) => reader,
        Err(err) => return err.into(),
    };
    if let Err(err) = callbacks::ensure_group(&mut reader).await {
        return err;
    }
    tracing::info!(sender = %sender.name, "sending callbacks");
    let mut last_claim = tokio::time::Instant::now() - CLAIM_EVERY;
    loop {
        let mut entries = Vec::new();
        if last_claim.elapsed() >= CLAIM_EVERY {
            last_claim = tokio::time::Instant::now();
            match callbacks::claim_stale(&mut reader, &sender.name, 16).await {
                Ok(claimed) => {
                    if !claimed.is_empty() {
                        tracing::info!(
                            callbacks = claimed.len(),
                            "claimed callbacks of a sender that stopped"
                        );
                    }
                    entries.extend(claimed);
                }
                Err(err) => return err,
            }
        }
        match callbacks::read_new(&mut reader, &sender.name, 16, BLOCK).await {
            Ok(new) => entries.extend(new),
            Err(err) => return err,
        }
        for entry in entries {
            let Ok(slot) = sender.slots.clone().acquire_owned().await else {
                return QueueError::Corrupt("callback slots closed".into());
            };
            let sender = sender.clone();
            tokio::spawn(async move {
                sender.deliver(entry).await;
                drop(slot);
            });
        }
    }
}

impl Sender {
    /// Sends one callback with retries; acknowledges it unless this process
    /// is stopping (then it stays pending for another sender).
    async fn deliver(&self, entry: StreamEntry) {
        let outcome = match entry.job {
            Some(job) => self.try_deliver(&entry.entry_id, job).await,
            None => Some(Delivery::GaveUp),
        };
        let Some(outcome) = outcome else { return };
        let settled = async {
            let mut conn = self.pool.get().await?;
            callbacks::settle(&mut conn, &entry.entry_id, outcome).await
        }
        .await;
        if let Err(err) = settled {
            tracing::warn!(entry = %entry.entry_id, error = %err, "callback not acknowledged; it may be sent again");
        }
    }

    /// `None` when stopped before the end (the entry stays pending).
    async fn try_deliver(&self, entry_id: &str, id: JobId) -> Option<Delivery> {
        let job = match self.read(id).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tracing::warn!(job_id = %id, "callback dropped: the job is gone");
                return Some(Delivery::GaveUp);
            }
            Err(err) => {
                tracing::warn!(job_id = %id, error = %err, "callback postponed: cannot read the job");
                return None;
            }
        };
        let Some(raw_url) = job.callback_url.as_deref() else {
            return Some(Delivery::GaveUp);
        };
        let url = match self.config.allow.check(raw_url) {
            Ok(url) => url,
            Err(err) => {
                tracing::warn!(job_id = %id, url = raw_url, reason = %err.message, "callback dropped: its URL is no longer allowed");
                return Some(Delivery::GaveUp);
            }
        };
        let body = match serde_json::to_vec(&job) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(job_id = %id, error = %err, "callback dropped: the job does not serialise");
                return Some(Delivery::GaveUp);
            }
        };
        let job_id = id.to_string();
        let mut delay = Duration::from_secs(1);
        let mut shutdown = self.shutdown.clone();
        for attempt in 1..=self.config.attempts {
            self.touch(entry_id).await;
            // Signed at each attempt: its own time, so a receiver can refuse
            // a replay (see signature.rs).
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let signature = signature::sign(&self.config.secret, now, &job_id, &body);
            let sent = self
                .http
                .post(url.clone())
                .header("content-type", "application/json")
                .header(signature::HEADER, &signature)
                .header("x-verdict-job", &job_id)
                .header("x-verdict-attempt", attempt.to_string())
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(job_id = %id, attempt, status = response.status().as_u16(), "callback delivered");
                    return Some(Delivery::Delivered);
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(err) => err.to_string(),
            };
            if attempt == self.config.attempts {
                tracing::warn!(job_id = %id, attempt, failure = %failure, "callback given up after its last attempt");
                break;
            }
            tracing::info!(job_id = %id, attempt, failure = %failure, retry_in_s = delay.as_secs(), "callback failed; retrying");
            self.touch(entry_id).await;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.recv() => return None,
            }
            delay = (delay * 2).min(MAX_DELAY);
        }
        Some(Delivery::GaveUp)
    }

    async fn read(&self, id: JobId) -> Result<Option<verdict_shared::job::Job>, QueueError> {
        let mut conn = self.pool.get().await?;
        read_job(&mut conn, id).await
    }

    /// Keeps the entry ours (resets its idle time); failures only log.
    async fn touch(&self, entry_id: &str) {
        let touched = async {
            let mut conn = self.pool.get().await?;
            callbacks::touch(&mut conn, &self.name, entry_id).await
        }
        .await;
        if let Err(err) = touched {
            tracing::debug!(entry = entry_id, error = %err, "cannot touch a callback entry");
        }
    }
}
