//! The api's HTTP client, as a batch run uses it: `POST /v1/batches` and long-polls of
//! `GET /v1/jobs/{id}?wait=30`, with the bearer token when one is set.
//!
//! Whatever says "later" is retried: a 429 or 503 (after its `Retry-After`,
//! or with backoff), a connection error, a job the api could not store right
//! now. What says "no" is not: a job refused with a 4xx gets a result line
//! with that error.

use std::time::Duration;

use anyhow::bail;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// One job of a batch request.
#[derive(Debug, Clone)]
pub struct BatchJob {
    pub image_base64: String,
    pub texts: Vec<String>,
    /// The row's premise, if it has one.
    pub premise: Option<String>,
    pub idempotency_key: String,
}

/// What became of one job of a batch.
#[derive(Debug, Clone)]
pub enum Item {
    /// Stored (or found by its idempotency key): the job's id.
    Accepted(String),
    /// Refused for good: its error `{code, message}`.
    Refused(Value),
    /// Not stored now: send it again later.
    Later,
}

/// A client of one api.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Api> {
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .connect_timeout(Duration::from_secs(5))
                .no_proxy()
                .build()?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends one batch; an item per job, in order. Errors are those that no
    /// retry mends (a wrong token, an api without batches, a refused request).
    /// `Ok(None)` with a delay: the whole request should be sent again after it.
    pub async fn submit(
        &self,
        jobs: &[BatchJob],
    ) -> anyhow::Result<Result<Vec<Item>, Option<Duration>>> {
        let body = json!({
            "jobs": jobs.iter().map(job_body).collect::<Vec<_>>(),
        });
        let response = match self
            .request(reqwest::Method::POST, "/v1/batches")
            .json(&body)
            .send()
            .await
        {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(error = %err, "batch request failed");
                return Ok(Err(None));
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Ok(Err(retry_after));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            bail!(
                "the api refused a batch of {} jobs as too large ({}): lower --batch-size",
                jobs.len(),
                error_text(&answer)
            );
        }
        if !status.is_success() {
            bail!(
                "POST /v1/batches answered {status}: {}",
                error_text(&answer)
            );
        }
        let items = answer["jobs"].as_array().cloned().unwrap_or_default();
        if items.len() != jobs.len() {
            bail!(
                "POST /v1/batches answered {} items for {} jobs",
                items.len(),
                jobs.len()
            );
        }
        Ok(Ok(items
            .into_iter()
            .map(|item| {
                let status = item["status"].as_u64().unwrap_or(0);
                match (item["job"]["id"].as_str(), status) {
                    (Some(id), _) => Item::Accepted(id.to_owned()),
                    (None, 429 | 500..=599) => Item::Later,
                    (None, _) => Item::Refused(item["error"].clone()),
                }
            })
            .collect()))
    }

    /// Waits for the job to end and returns it; `Ok(None)` if the api no
    /// longer has it. Keeps trying through errors, with backoff.
    pub async fn wait_end(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let mut delay = Duration::from_millis(500);
        loop {
            let sent = self
                .request(reqwest::Method::GET, &format!("/v1/jobs/{id}?wait=30"))
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == StatusCode::OK => {
                    let job: Value = response.json().await.unwrap_or(Value::Null);
                    match job["state"].as_str() {
                        Some("done" | "failed" | "cancelled") => return Ok(Some(job)),
                        Some(_) => {
                            delay = Duration::from_millis(500);
                            continue;
                        }
                        None => {}
                    }
                }
                Ok(response) if response.status() == StatusCode::NOT_FOUND => return Ok(None),
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        || response.status() == StatusCode::FORBIDDEN =>
                {
                    bail!(
                        "GET /v1/jobs/{id} answered {}: check --token",
                        response.status()
                    );
                }
                Ok(response) => {
                    if let Some(after) = retry_after(&response) {
                        delay = after;
                    }
                }
                Err(err) => tracing::debug!(error = %err, job_id = id, "poll failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_DELAY);
        }
    }
}

/// One job of the request body; `premise` only when the row has one, so a
/// catalogue without premises reads as it always did.
fn job_body(job: &BatchJob) -> Value {
    let mut body = json!({
        "image_base64": job.image_base64,
        "texts": job.texts,
        "idempotency_key": job.idempotency_key,
    });
    if let Some(premise) = &job.premise {
        body["premise"] = json!(premise);
    }
    body
}

/// `Retry-After` in seconds, if the answer has one.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(300)))
}

fn error_text(answer: &Value) -> String {
    match (
        answer["error"]["code"].as_str(),
        answer["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => answer.to_string().chars().take(300).collect(),
    }
}

/// The next delay of a retry loop: the server's `Retry-After` if it gave
/// one, else twice the last (from 1 s, at most 30 s).
pub fn next_delay(last: Duration, retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or_else(|| (last * 2).clamp(Duration::from_secs(1), MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_carries_its_premise_only_when_it_has_one() {
        let mut job = BatchJob {
            image_base64: "aGVsbG8=".into(),
            texts: vec!["It is hot.".into()],
            premise: None,
            idempotency_key: "batch-1".into(),
        };
        let body = job_body(&job);
        assert_eq!(body["texts"], json!(["It is hot."]));
        assert!(body.get("premise").is_none(), "{body}");
        job.premise = Some("Steam rises.".into());
        assert_eq!(job_body(&job)["premise"], "Steam rises.");
    }
}
