//! Accepting connections, with limits a single client cannot get around.
//!
//! `axum::serve` gives hyper no timer, so none of hyper's timeouts run: an
//! idle or half-sent connection stayed open for minutes, and about 20,000 of
//! them exhausted the api's file handles (`/healthz` stopped answering). This
//! accept loop serves each connection with hyper's HTTP/1 server and a timer:
//!
//! - **headers**: a request's headers must arrive within `header_timeout`
//!   after the connection opens or the previous response was sent; hyper
//!   counts the wait for a kept-alive connection's next request in it, so the
//!   same limit closes idle keep-alive connections;
//! - **bodies**: [`crate::body_rate`] fails a body that arrives slower than
//!   the minimum rate;
//! - **how many**: at most `max_connections` at once; past that, a new
//!   connection gets `503 too_many_connections` (a JSON body) and is closed
//!   at once, so the ones being served keep their file handles;
//!
//! and, at shutdown, stops accepting and lets every connection finish the
//! request in hand ([`serve`]). When the last open connection closes, the
//! memory the connections freed is handed back (`verdict_shared::heap`), so
//! the api's resident memory falls back after a flood.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// The answer past `max_connections`.
const TOO_MANY: &str = "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the api has as many connections open as it serves at once: try again shortly\"}}";

/// Serves `app` on `listener` until `stop` resolves, then waits for the
/// connections still open to finish their request (hyper's graceful
/// shutdown: no new request is read on them).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // EMFILE and friends: the listener is fine, the process
                    // is out of handles for a moment; do not spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let app = app.clone();
                let mut closing = closing_rx.clone();
                let permits = Arc::clone(&permits);
                tokio::spawn(async move {
                    serve_one(stream, app, limits.header_timeout, &mut closing).await;
                    drop(permit);
                    // The last connection of a crowd has gone: hand the
                    // buffers they freed back (rare under a steady load,
                    // where the count seldom reaches zero).
                    if permits.available_permits() == limits.max_connections {
                        verdict_shared::heap::release_freed();
                    }
                });
            }
            Err(_) => {
                tokio::spawn(refuse(stream));
            }
        }
    }
    let _ = closing_tx.send(true);
    // Every connection task holds a permit until it ends.
    let _ = permits
        .acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .await;
}

async fn serve_one(
    stream: TcpStream,
    app: Router,
    header_timeout: Duration,
    closing: &mut watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(
        app.map_request(|req: hyper::Request<Incoming>| req.map(axum::body::Body::new))
            .map_err(|never: Infallible| match never {}),
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Some(header_timeout))
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        }
        () = closing_signal(closing) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Resolves once the accept loop says the api is closing.
async fn closing_signal(closing: &mut watch::Receiver<bool>) {
    loop {
        if *closing.borrow_and_update() {
            return;
        }
        if closing.changed().await.is_err() {
            // The accept loop is gone: so is the api.
            return;
        }
    }
}

/// Answers `503 too_many_connections` and closes.
async fn refuse(mut stream: TcpStream) {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{TOO_MANY}",
        TOO_MANY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    // Read what the client sent meanwhile, briefly: closing a socket with
    // unread data sends a reset, which can reach the client before the 503.
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
