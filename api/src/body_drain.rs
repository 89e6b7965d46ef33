//! Reading what a handler left unread of a request body, so the client hears
//! the answer.
//!
//! Most clients send the whole body before they read the response. When a
//! handler refuses a request early (a wrong content type, a 401, an image part
//! declared as text) and drops the body unread, the connection closes with
//! data still in flight: the client gets a broken pipe or a reset instead of
//! the JSON error, a plain `POST` of 2 MiB with the wrong content type failed
//! this way 5 times in 40. So the body is pumped through a small channel: the
//! handler reads from the channel as before, and when it stops reading, the
//! pump discards the rest, up to the body limit and for at most
//! [`DRAIN_FOR`], keeping the connection open while the response is written.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use tokio::sync::mpsc;

/// How long the pump keeps discarding after the handler stopped reading.
pub const DRAIN_FOR: Duration = Duration::from_secs(5);

/// The middleware: wraps bodies of requests that may have one.
/// `max_bytes` is the largest body any route takes. A request that announces
/// more is refused unread (the handlers check the length first) and its
/// connection is closed after the answer: draining a body that can never be
/// taken would only hold the connection (and a client that reads to the
/// end) for [`DRAIN_FOR`].
pub async fn drain_unread(max_bytes: usize, req: Request, next: Next) -> Response {
    if crate::announced_length::announced_over(req.headers(), max_bytes) {
        let mut response = next.run(req).await;
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return response;
    }
    let has_body = req
        .headers()
        .contains_key(axum::http::header::CONTENT_LENGTH)
        || req
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, axum::Error>>(2);
    tokio::spawn(pump(body, tx, max_bytes));
    let forwarded = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    next.run(Request::from_parts(parts, Body::from_stream(forwarded)))
        .await
}

/// Forwards the body's chunks while the handler reads them; once it stops
/// (drops its end), discards the rest within `max_bytes` and [`DRAIN_FOR`].
async fn pump(body: Body, tx: mpsc::Sender<Result<bytes::Bytes, axum::Error>>, max_bytes: usize) {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() {
            break;
        }
        if failed {
            return;
        }
    }
    let mut discarded = 0usize;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while let Some(Ok(chunk)) = stream.next().await {
            discarded += chunk.len();
            if discarded > max_bytes {
                break;
            }
        }
    })
    .await;
}
