//! Talking to verdict-api over HTTP as a client would.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// A client of one api.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

/// An answer: status, headers we care about, JSON body (or `Null`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
}

impl ApiClient {
    pub fn new(base: &str) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                // The api closes a kept-alive connection that sat idle for
                // its --header-timeout (10 s by default); a request sent on
                // it at that moment is reset. Dropped sooner here, as
                // docs/api.md asks of clients.
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("http client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `POST /v1/jobs` as JSON with the image in base64.
    pub async fn submit_json(&self, image: &[u8], texts: &[&str]) -> Answer {
        let body = json!({
            "image_base64": base64::engine::general_purpose::STANDARD.encode(image),
            "texts": texts,
        });
        answer(
            self.http
                .post(self.url("/v1/jobs"))
                .json(&body)
                .send()
                .await
                .expect("POST /v1/jobs"),
        )
        .await
    }

    /// `POST /v1/jobs` as multipart, the way `curl -F` sends it.
    pub async fn submit_multipart(&self, image: &[u8], mime: &str, texts: &[&str]) -> Answer {
        let mut form = Form::new().part(
            "image",
            Part::bytes(image.to_vec())
                .file_name("image")
                .mime_str(mime)
                .expect("mime"),
        );
        for text in texts {
            form = form.text("text", text.to_string());
        }
        answer(
            self.http
                .post(self.url("/v1/jobs"))
                .multipart(form)
                .send()
                .await
                .expect("POST /v1/jobs"),
        )
        .await
    }

    /// Submits and insists on 202; the job's id.
    pub async fn submit(&self, image: &[u8], texts: &[&str]) -> String {
        let answer = self.submit_json(image, texts).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "submit refused: {}",
            answer.body
        );
        answer.body["id"].as_str().expect("an id").to_owned()
    }

    /// `GET /v1/jobs/{id}[?wait=...]`.
    pub async fn get_job(&self, id: &str, wait: Option<f64>) -> Answer {
        let path = match wait {
            Some(wait) => format!("/v1/jobs/{id}?wait={wait}"),
            None => format!("/v1/jobs/{id}"),
        };
        answer(
            self.http
                .get(self.url(&path))
                .send()
                .await
                .expect("GET job"),
        )
        .await
    }

    /// Long-polls until the job is done, failed or cancelled (at most `limit`).
    pub async fn wait_end(&self, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let answer = self.get_job(id, Some(30.0)).await;
            assert_eq!(answer.status, StatusCode::OK, "GET {id}: {}", answer.body);
            let state = answer.body["state"].as_str().unwrap_or("");
            if matches!(state, "done" | "failed" | "cancelled") {
                return answer.body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} still {state} after {limit:?}"
            );
        }
    }

    /// Any GET; status and JSON body.
    pub async fn get_path(&self, path: &str) -> (StatusCode, Value) {
        let answer = answer(self.http.get(self.url(path)).send().await.expect("GET")).await;
        (answer.status, answer.body)
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        location,
        body,
    }
}

/// Sends `POST path` by hand with a declared `Content-Length` but only
/// `body` (which may be shorter), then reads the answer: how a client that
/// announces a huge upload is answered before it sends it.
pub async fn raw_post(
    api_url: &str,
    path: &str,
    content_type: &str,
    declared_length: usize,
    body: &[u8],
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let addr = api_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the api");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {declared_length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body).await.expect("send body");
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "no answer within 30 s to a request announcing {declared_length} bytes"
    );
    parse_raw_answer(&response)
}

/// The status and JSON body of a raw HTTP/1.1 answer (0 and `Null` for what
/// cannot be read: no answer at all, or a body that is not JSON).
pub fn parse_raw_answer(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}
