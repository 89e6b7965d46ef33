//! The api's HTTP client, as a batch run uses it: `POST /v1/batches`, and
//! long-polls of `POST /v1/jobs/wait` (a batch's jobs at once) or, from an
//! api without it, `GET /v1/jobs/{id}?wait=30`, with the bearer token when
//! one is set.
//!
//! Whatever says "later" is retried: a 429 or 503 (after its `Retry-After`,
//! or with backoff), a connection error, a job the api could not store right
//! now. What says "no" is not: a job refused with a 4xx gets a result line
//! with that error.

use std::time::Duration;

use anyhow::bail;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use verdict_shared::job::{Job, JobError};
use verdict_shared::queue::dead_list::DeadPage;

/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// The first wait between two tries of a long-poll.
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// A long-poll's retry state: the next delay (doubling up to
/// [`MAX_DELAY`]) and how long the api has not answered.
struct Tries {
    delay: Duration,
    reachability: Reachability,
}

impl Tries {
    fn new(give_up_after: Duration) -> Tries {
        Tries {
            delay: FIRST_DELAY,
            reachability: Reachability::new(give_up_after),
        }
    }

    /// Sleeps the delay, and doubles the next one.
    async fn pause(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
    }
}

/// How a job of a batch gives its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchImage {
    /// The bytes, in standard base64.
    Base64(String),
    /// `image_url`: the workers fetch it.
    Url(String),
    /// `image_path`: relative to the fleet's `--image-root`.
    Path(String),
}

impl BatchImage {
    /// Bytes the job adds to a request body (roughly).
    pub fn body_bytes(&self) -> usize {
        match self {
            BatchImage::Base64(s) | BatchImage::Url(s) | BatchImage::Path(s) => s.len(),
        }
    }
}

/// One job of a batch request.
#[derive(Debug, Clone)]
pub struct BatchJob {
    pub image: BatchImage,
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
    /// Refused for good, with the api's reason.
    Refused(JobError),
    /// Not stored now: send it again later.
    Later,
}

/// Why a request should be sent again later.
#[derive(Debug, Clone)]
pub struct NotNow {
    /// The api's `Retry-After`, if it gave one.
    pub retry_after: Option<Duration>,
    /// What happened, for people: `busy (503 ...)`, or the connection error.
    pub cause: String,
    /// No answer at all (a connection error or a timeout), as opposed to an
    /// api that answered "busy".
    pub unreachable: bool,
}

/// How long the api may stay unreachable before a run gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Tracks how long the api has been unreachable, to give up in time.
#[derive(Debug, Clone)]
pub struct Reachability {
    limit: Duration,
    since: Option<std::time::Instant>,
}

impl Reachability {
    pub fn new(limit: Duration) -> Reachability {
        Reachability { limit, since: None }
    }

    /// The api answered (whatever it said).
    pub fn answered(&mut self) {
        self.since = None;
    }

    /// It did not answer: an error once it has not for longer than the limit.
    pub fn unreachable(&mut self, base: &str, cause: &str) -> anyhow::Result<()> {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= self.limit {
            bail!(
                "cannot reach the api at {base} (for {:.0} s, the limit of --give-up-after): {cause}",
                since.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }
}

/// An error with its causes, `outer: inner: innermost` (reqwest's own text
/// is only "error sending request").
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The answer of `POST /v1/batches`, as far as a client reads it.
#[derive(Debug, Deserialize)]
struct BatchAnswer {
    jobs: Vec<BatchItem>,
}

/// What became of one job of the batch: `job` when it was stored or found,
/// else `error` (a 4xx refusal) or nothing useful (429/5xx: send it again).
#[derive(Debug, Deserialize)]
struct BatchItem {
    status: u16,
    #[serde(default)]
    job: Option<Job>,
    #[serde(default)]
    error: Option<JobError>,
}

impl BatchItem {
    fn into_item(self) -> Item {
        match (self.job, self.status, self.error) {
            (Some(job), _, _) => Item::Accepted(job.id.to_string()),
            (None, 429 | 500..=599, _) => Item::Later,
            (None, _, Some(error)) => Item::Refused(error),
            (None, status, None) => Item::Refused(JobError::new(
                "refused",
                format!("the api refused the job ({status}) without saying why"),
            )),
        }
    }
}

/// A client of one api.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    give_up_after: Duration,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Api> {
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            give_up_after: GIVE_UP_AFTER,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .connect_timeout(Duration::from_secs(5))
                .no_proxy()
                .build()?,
        })
    }

    /// Gives up after the api has not answered for `limit`.
    pub fn with_give_up_after(mut self, limit: Duration) -> Api {
        self.give_up_after = limit;
        self
    }

    pub fn give_up_after(&self) -> Duration {
        self.give_up_after
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
    pub async fn submit(&self, jobs: &[BatchJob]) -> anyhow::Result<Result<Vec<Item>, NotNow>> {
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
                return Ok(Err(NotNow {
                    retry_after: None,
                    cause: chain(&err),
                    unreachable: true,
                }));
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let body = response.bytes().await.unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Ok(Err(NotNow {
                retry_after,
                cause: format!("busy: {status}, {}", error_text(&body)),
                unreachable: false,
            }));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            bail!(
                "the api refused a batch of {} jobs as too large ({}): lower --batch-size",
                jobs.len(),
                error_text(&body)
            );
        }
        if !status.is_success() {
            bail!("POST /v1/batches answered {status}: {}", error_text(&body));
        }
        let answer: BatchAnswer = serde_json::from_slice(&body).map_err(|err| {
            anyhow::anyhow!("POST /v1/batches answered what is not a batch answer: {err}")
        })?;
        if answer.jobs.len() != jobs.len() {
            bail!(
                "POST /v1/batches answered {} items for {} jobs",
                answer.jobs.len(),
                jobs.len()
            );
        }
        Ok(Ok(answer
            .jobs
            .into_iter()
            .map(BatchItem::into_item)
            .collect()))
    }

    /// Waits for the job to end and returns it; `Ok(None)` if the api no
    /// longer has it. Keeps trying through errors, with backoff, and gives
    /// up when the api has not answered for [`Api::give_up_after`].
    pub async fn wait_end(&self, id: &str) -> anyhow::Result<Option<Job>> {
        let path = format!("/v1/jobs/{id}?wait=30");
        let mut tries = Tries::new(self.give_up_after);
        loop {
            let response = self
                .answered(&mut tries, &format!("GET /v1/jobs/{id}"), || {
                    self.request(reqwest::Method::GET, &path)
                })
                .await?;
            match response.status() {
                StatusCode::OK => match response.json::<Job>().await {
                    Ok(job) if job.state.is_terminal() => return Ok(Some(job)),
                    Ok(_) => {
                        tries.delay = FIRST_DELAY;
                        continue;
                    }
                    Err(err) => tracing::debug!(error = %err, job_id = id, "unreadable job"),
                },
                StatusCode::NOT_FOUND => return Ok(None),
                _ => {}
            }
            tries.pause().await;
        }
    }

    /// Sends the request (made anew by `request` each time; `what` names
    /// it in errors) until the api answers something other than "later":
    /// connection errors (until [`Api::give_up_after`]), 429 and 5xx are
    /// tried again with backoff (after `Retry-After` when given), 401 and
    /// 403 are an error, and any other answer is returned.
    async fn answered(
        &self,
        tries: &mut Tries,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        loop {
            match request().send().await {
                Ok(response) => {
                    tries.reachability.answered();
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        bail!("{what} answered {status}: check --token");
                    }
                    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                        return Ok(response);
                    }
                    if let Some(after) = retry_after(&response) {
                        tries.delay = after;
                    }
                }
                Err(err) => tries.reachability.unreachable(&self.base, &chain(&err))?,
            }
            tries.pause().await;
        }
    }
}

/// The answer of `POST /v1/jobs/wait`, as far as a client reads it.
#[derive(Debug, Deserialize)]
struct WaitAnswer {
    jobs: Vec<WaitItem>,
}

/// One id of the wait: its job, or none (`not_found`).
#[derive(Debug, Deserialize)]
struct WaitItem {
    #[serde(default)]
    job: Option<Job>,
}

impl Api {
    /// Waits (up to 30 s) until one of the jobs of `ids` has ended, through
    /// one `POST /v1/jobs/wait` with `until: any`, and returns those that
    /// have, by their index in `ids`: the job, or `None` if the api no
    /// longer has it. An empty list: none ended in time, ask again. Keeps
    /// trying through errors, as [`Api::wait_end`] does. `Ok(None)`: this
    /// api has no such route (an older one): wait for each job on its own.
    pub async fn wait_any(
        &self,
        ids: &[String],
    ) -> anyhow::Result<Option<Vec<(usize, Option<Job>)>>> {
        let body = json!({"ids": ids, "wait": 30, "until": "any"});
        let mut tries = Tries::new(self.give_up_after);
        loop {
            let response = self
                .answered(&mut tries, "POST /v1/jobs/wait", || {
                    self.request(reqwest::Method::POST, "/v1/jobs/wait")
                        .json(&body)
                })
                .await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
                return Ok(None);
            }
            if !status.is_success() {
                let body = response.bytes().await.unwrap_or_default();
                bail!(
                    "POST /v1/jobs/wait answered {status}: {}",
                    error_text(&body)
                );
            }
            match response.json::<WaitAnswer>().await {
                Ok(answer) if answer.jobs.len() == ids.len() => {
                    return Ok(Some(
                        answer
                            .jobs
                            .into_iter()
                            .enumerate()
                            .filter(|(_, item)| {
                                item.job.as_ref().is_none_or(|job| job.state.is_terminal())
                            })
                            .map(|(index, item)| (index, item.job))
                            .collect(),
                    ));
                }
                Ok(answer) => bail!(
                    "POST /v1/jobs/wait answered {} items for {} ids",
                    answer.jobs.len(),
                    ids.len()
                ),
                Err(err) => {
                    tracing::debug!(error = %err, "unreadable answer to POST /v1/jobs/wait");
                }
            }
            tries.pause().await;
        }
    }
}

impl Api {
    /// `GET /v1/dead`: a page of dead letters, newest first.
    pub async fn dead_page(&self, before: Option<&str>, limit: usize) -> anyhow::Result<DeadPage> {
        let mut path = format!("/v1/dead?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        let body = self.call(reqwest::Method::GET, &path).await?;
        serde_json::from_slice(&body).map_err(|err| anyhow::anyhow!("GET /v1/dead: {err}"))
    }

    /// `POST /v1/dead/{id}/retry`: the job, queued again.
    pub async fn dead_retry(&self, id: &str) -> anyhow::Result<Job> {
        let body = self
            .call(reqwest::Method::POST, &format!("/v1/dead/{id}/retry"))
            .await?;
        serde_json::from_slice(&body)
            .map_err(|err| anyhow::anyhow!("POST /v1/dead/{id}/retry: {err}"))
    }

    /// `DELETE /v1/dead/{id}`.
    pub async fn dead_discard(&self, id: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, &format!("/v1/dead/{id}"))
            .await
            .map(drop)
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, id: &str) -> anyhow::Result<Job> {
        let body = self
            .call(reqwest::Method::GET, &format!("/v1/jobs/{id}"))
            .await?;
        serde_json::from_slice(&body).map_err(|err| anyhow::anyhow!("GET /v1/jobs/{id}: {err}"))
    }

    /// One request; the body of a 2xx answer, else an error with the api's
    /// `{code, message}` (or the connection error with its cause).
    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<bytes::Bytes> {
        let what = format!("{method} {path}");
        let response = self.request(method, path).send().await.map_err(|err| {
            anyhow::anyhow!(
                "{what}: cannot reach the api at {}: {}",
                self.base,
                chain(&err)
            )
        })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what} answered {status}: {}", error_text(&body));
        }
        Ok(body)
    }
}

/// One job of the request body; `premise` only when the row has one, so a
/// catalogue without premises reads as it always did.
fn job_body(job: &BatchJob) -> Value {
    let mut body = json!({
        "texts": job.texts,
        "idempotency_key": job.idempotency_key,
    });
    let (field, value) = match &job.image {
        BatchImage::Base64(b64) => ("image_base64", b64),
        BatchImage::Url(url) => ("image_url", url),
        BatchImage::Path(path) => ("image_path", path),
    };
    body[field] = json!(value);
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

/// The api's `{"error": {code, message}}`, or the start of whatever it sent.
fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: JobError,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => error.to_string(),
        Err(_) => String::from_utf8_lossy(body).chars().take(300).collect(),
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on a free port that gives `answers` (status, JSON
    /// body), one a connection, in order, and records each request's first
    /// line and body.
    async fn server(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, tokio::task::JoinHandle<Vec<(String, String)>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = conn.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed early");
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    let n = conn.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&request).to_string();
                seen.push((
                    text.lines().next().unwrap_or("").to_owned(),
                    text[head_end..].to_owned(),
                ));
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
            seen
        });
        (base, served)
    }

    fn ids() -> Vec<String> {
        vec![
            "01a20fe8-5dfb-736f-98a4-004f086e0b95".into(),
            "01a20fe8-5dfb-736f-98a4-004f086e0b96".into(),
        ]
    }

    #[tokio::test]
    async fn a_wait_for_many_asks_once_until_any_and_retries_what_says_later() {
        let missing = r#"{"ended": 0, "pending": 0, "missing": 2, "jobs": [
            {"id": "01a20fe8-5dfb-736f-98a4-004f086e0b95", "error": {"code": "not_found", "message": "gone"}},
            {"id": "01a20fe8-5dfb-736f-98a4-004f086e0b96", "error": {"code": "not_found", "message": "gone"}}]}"#;
        let (base, served) = server(vec![
            (
                503,
                r#"{"error": {"code": "redis_unavailable", "message": "later"}}"#,
            ),
            (200, missing),
        ])
        .await;
        let api = Api::new(&base, None).unwrap();
        let ended = api
            .wait_any(&ids())
            .await
            .unwrap()
            .expect("the route exists");
        assert_eq!(
            ended
                .iter()
                .map(|(index, job)| (*index, job.is_none()))
                .collect::<Vec<_>>(),
            vec![(0, true), (1, true)],
            "both are gone"
        );
        let seen = served.await.unwrap();
        assert_eq!(seen.len(), 2, "asked again after the 503: {seen:?}");
        for (line, body) in &seen {
            assert_eq!(line, "POST /v1/jobs/wait HTTP/1.1");
            let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            assert_eq!(body["until"], "any", "{body}");
            assert_eq!(body["ids"], json!(ids()), "{body}");
        }
    }

    #[tokio::test]
    async fn an_api_without_the_route_is_waited_for_job_by_job_and_refusals_stop() {
        for status in [404, 405] {
            let (base, _) = server(vec![(
                status,
                r#"{"error": {"code": "not_found", "message": "no route"}}"#,
            )])
            .await;
            let api = Api::new(&base, None).unwrap();
            assert!(api.wait_any(&ids()).await.unwrap().is_none(), "{status}");
        }
        for (status, body, says) in [
            (
                401,
                r#"{"error": {"code": "unauthorized", "message": "no"}}"#,
                "POST /v1/jobs/wait answered 401 Unauthorized: check --token",
            ),
            (
                400,
                r#"{"error": {"code": "too_many_ids", "message": "over 256"}}"#,
                "too_many_ids",
            ),
            (200, r#"{"jobs": []}"#, "0 items for 2 ids"),
        ] {
            let (base, _) = server(vec![(status, body)]).await;
            let api = Api::new(&base, None).unwrap();
            let err = api.wait_any(&ids()).await.unwrap_err();
            assert!(format!("{err:#}").contains(says), "{err:#}");
        }
    }

    #[test]
    fn a_job_carries_its_premise_only_when_it_has_one() {
        let mut job = BatchJob {
            image: BatchImage::Base64("aGVsbG8=".into()),
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
