//! The command side of the control channel.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use super::protocol::{Request, Response};

/// Sends one request and waits up to `timeout` for its response.
pub fn request(socket: &Path, request: &Request, timeout: Duration) -> anyhow::Result<Response> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach the watchdog at {}", socket.display()))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .context("cannot send to the watchdog")?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    let read = reader
        .read_line(&mut reply)
        .context("no answer from the watchdog")?;
    if read == 0 {
        bail!("the watchdog closed the connection without answering");
    }
    let response: Response =
        serde_json::from_str(&reply).context("the watchdog's answer is not understood")?;
    if let Response::Error { message } = response {
        bail!("{message}");
    }
    Ok(response)
}
