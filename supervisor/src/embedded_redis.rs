//! The embedded Redis: a `redis-server` that the fleet runs for itself when no
//! `--redis` URL is given.
//!
//! It listens on a unix socket in `run/` only (no TCP port, so nothing outside
//! the machine, and no other user thanks to the socket's mode and the home's,
//! can reach it), and keeps its data as append-only files in `redis/`, so
//! accepted jobs survive a restart of Redis or of the fleet.

use std::ffi::OsString;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How often the append-only file is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Appendfsync {
    /// Once a second: a crash of the machine may lose the last second of
    /// writes; a crash of Redis alone loses nothing.
    #[default]
    Everysec,
    /// After every write: nothing acknowledged is lost, at the cost of one
    /// fsync per write.
    Always,
}

impl Appendfsync {
    fn as_str(self) -> &'static str {
        match self {
            Appendfsync::Everysec => "everysec",
            Appendfsync::Always => "always",
        }
    }
}

/// The URL the api and workers use to reach the embedded Redis.
pub fn url(socket: &Path) -> String {
    format!("unix://{}", socket.display())
}

/// `redis-server`'s arguments. Its PID file and log go through the fleet
/// (`run/redis.pid`, `logs/redis.log` via stdout), not Redis's own options.
pub fn args(socket: &Path, data_dir: &Path, appendfsync: Appendfsync) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut opt = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
        args.push(format!("--{name}").into());
        args.push(value.as_ref().to_os_string());
    };
    opt("port", &"0");
    opt("unixsocket", &socket);
    opt("unixsocketperm", &"600");
    opt("dir", &data_dir);
    opt("appendonly", &"yes");
    opt("appendfsync", &appendfsync.as_str());
    // Append-only persistence only: RDB snapshots would fork a copy of Redis
    // on a timer for no gain.
    opt("save", &"");
    opt("daemonize", &"no");
    opt("logfile", &"");
    opt("protected-mode", &"yes");
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_on_the_socket_only_and_persists_append_only() {
        let args = args(
            Path::new("/h/run/redis.sock"),
            Path::new("/h/redis"),
            Appendfsync::default(),
        );
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let pairs: Vec<(&str, &str)> = text
            .chunks(2)
            .map(|c| (c[0].as_str(), c[1].as_str()))
            .collect();
        assert!(pairs.contains(&("--port", "0")));
        assert!(pairs.contains(&("--unixsocket", "/h/run/redis.sock")));
        assert!(pairs.contains(&("--appendonly", "yes")));
        assert!(pairs.contains(&("--appendfsync", "everysec")));
        assert_eq!(
            url(Path::new("/h/run/redis.sock")),
            "unix:///h/run/redis.sock"
        );
    }
}
