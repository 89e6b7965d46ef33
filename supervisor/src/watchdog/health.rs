//! The health probe: is Redis answering, is the api ready, what do the
//! workers' heartbeat records say.
//!
//! It runs as its own task on a short interval and sends each report to the
//! event loop, so a slow Redis or api never delays the handling of an exit.
//! Every network call has a short timeout: a probe that cannot finish is a
//! failed probe, not a stuck watchdog.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use verdict_shared::queue::{WorkerRecord, heartbeat};
use verdict_shared::redis_url::RedisUrl;

/// How long one Redis or HTTP call of a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What one probe saw.
#[derive(Debug, Clone, Default)]
pub struct HealthReport {
    pub redis_ok: bool,
    pub redis_error: Option<String>,
    /// `GET /readyz` answered 200.
    pub api_ready: bool,
    /// Heartbeat records found, by registered worker name. The supervisor
    /// reads whether each changed since the last probe, never how old its
    /// wall-clock stamp is.
    pub workers: HashMap<String, WorkerRecord>,
}

/// What the next probes should look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    /// Registered worker names whose heartbeat records to read.
    pub workers: Vec<String>,
    /// Whether to ask the api's `/readyz`: only while the api is starting.
    /// Once it is ready the watchdog has no use for the answer, and the api
    /// logs every request: two probes a second would fill its log.
    pub api: bool,
}

/// Probes Redis and the api, keeping one Redis connection between probes.
pub struct Prober {
    /// Redis with its TLS files, or why the configuration names none usable.
    redis: Result<RedisUrl, String>,
    connection: Option<MultiplexedConnection>,
    http: reqwest::Client,
    api_url: String,
}

impl Prober {
    pub fn new(redis: Result<RedisUrl, String>, api_url: &str) -> Prober {
        let http = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .no_proxy()
            .build()
            .unwrap_or_default();
        Prober {
            redis,
            connection: None,
            http,
            api_url: api_url.to_string(),
        }
    }

    /// One probe of `targets`.
    pub async fn probe(&mut self, targets: &Targets) -> HealthReport {
        let mut report = HealthReport::default();
        match self.redis(&targets.workers).await {
            Ok(records) => {
                report.redis_ok = true;
                report.workers = records;
            }
            Err(err) => {
                self.connection = None;
                report.redis_error = Some(err);
            }
        }
        report.api_ready = targets.api && api_ready(&self.http, &self.api_url).await.is_ok();
        report
    }

    async fn redis(&mut self, workers: &[String]) -> Result<HashMap<String, WorkerRecord>, String> {
        if self.connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(PROBE_TIMEOUT))
                .set_response_timeout(Some(PROBE_TIMEOUT));
            // Through the sentinels for a sentinel URL: after a failover,
            // the next probe finds the new primary.
            let connection = self
                .redis
                .as_ref()
                .map_err(Clone::clone)?
                .connect(&config)
                .await
                .map_err(|e| e.to_string())?;
            self.connection = Some(connection);
        }
        let connection = self.connection.as_mut().expect("connected above");
        let pong: String = redis::cmd("PING")
            .query_async(connection)
            .await
            .map_err(|e| e.to_string())?;
        if pong != "PONG" {
            return Err(format!("unexpected PING answer {pong:?}"));
        }
        // A record that does not parse is treated as absent: the worker will
        // be seen as not registered (or hung), never as healthy.
        let records = heartbeat::worker_records(connection, workers)
            .await
            .map_err(|e| e.to_string())?;
        let found = workers.iter().cloned().zip(records);
        Ok(found
            .filter_map(|(name, record)| Some((name, record?)))
            .collect())
    }
}

/// `GET /readyz` of the api at `api_url`: `Ok` on 200, else what it said.
pub async fn api_ready(http: &reqwest::Client, api_url: &str) -> Result<(), String> {
    let response = http
        .get(format!("{api_url}/readyz"))
        .send()
        .await
        .map_err(|e| format!("GET /readyz failed: {e}"))?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(format!("GET /readyz answered {status}: {}", body.trim()))
}
