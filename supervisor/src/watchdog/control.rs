//! The watchdog's end of the control channel (see `crate::control`).
//!
//! Each connection is served by its own task, which parses one request,
//! hands it to the event loop with a reply channel, and writes the answer
//! back. The event loop owns all state; this module only moves bytes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::control::protocol::{Request, Response};

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;

/// A request waiting for the event loop's answer.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// Binds the socket (replacing a leftover file: the caller holds the
/// watchdog's lock, so no live watchdog uses it) with mode 0600.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot remove {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}

/// Accepts connections until the event loop goes away.
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<Incoming>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "control socket accept failed");
                continue;
            }
        };
        let requests = requests.clone();
        tokio::spawn(async move {
            if let Err(err) = answer(stream, requests).await {
                tracing::debug!(error = %err, "control connection ended badly");
            }
        });
    }
}

async fn answer(stream: UnixStream, requests: mpsc::Sender<Incoming>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            if requests.send((request, reply)).await.is_err() {
                Response::Error {
                    message: "the watchdog is exiting".into(),
                }
            } else {
                answer.await.unwrap_or(Response::Error {
                    message: "the watchdog is exiting".into(),
                })
            }
        }
        Err(err) => Response::Error {
            message: format!("bad request: {err}"),
        },
    };
    let mut text = serde_json::to_string(&response)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await?;
    Ok(())
}
