//! A minimum rate for request bodies.
//!
//! A client that sends its body one byte a second (slowloris on the body)
//! held a connection, a task and its buffers for as long as it liked. Every
//! body is read through [`RateLimited`]: after a grace period, it must have
//! delivered at least `min_bytes_per_s` times the seconds past the grace, or
//! the read fails and the request is answered `408 body_too_slow`. A body
//! that stalls completely fails at that moment too, not at the next byte.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// The rule every body is held to.
#[derive(Debug, Clone, Copy)]
pub struct BodyRate {
    /// Bytes a second the body must average after `grace`.
    pub min_bytes_per_s: u64,
    /// How long a body may take before the rate applies.
    pub grace: Duration,
}

/// The middleware: wraps the body, and turns a read that failed for being
/// too slow into `408 body_too_slow` whatever the handler made of it.
pub async fn enforce(rate: BodyRate, req: Request, next: Next) -> Response {
    let tripped = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let limited = RateLimited::new(body.into_data_stream(), rate, Arc::clone(&tripped));
    let response = next
        .run(Request::from_parts(parts, Body::from_stream(limited)))
        .await;
    if tripped.load(Ordering::Relaxed) {
        let mut response = ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "body_too_slow",
            format!(
                "the request body arrived slower than {} bytes a second (after {} s)",
                rate.min_bytes_per_s,
                rate.grace.as_secs()
            ),
        )
        .into_response();
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return response;
    }
    response
}

/// A body stream that fails once it falls behind the rate.
pub struct RateLimited<S> {
    inner: S,
    rate: BodyRate,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    tripped: Arc<AtomicBool>,
}

impl<S> RateLimited<S> {
    pub fn new(inner: S, rate: BodyRate, tripped: Arc<AtomicBool>) -> RateLimited<S> {
        let started = Instant::now();
        RateLimited {
            inner,
            rate,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + rate.grace)),
            tripped,
        }
    }

    /// When the bytes received so far stop being enough.
    fn next_deadline(&self) -> Instant {
        let rate = self.rate.min_bytes_per_s.max(1);
        let covered = Duration::from_secs_f64(self.received as f64 / rate as f64);
        self.started + self.rate.grace + covered
    }
}

impl<S, E> Stream for RateLimited<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<axum::BoxError>,
{
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                let deadline = self.next_deadline();
                self.deadline.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.tripped.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err("the request body arrives too slowly".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
