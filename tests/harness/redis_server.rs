//! A private `redis-server` for one test: on a unix socket in a temporary
//! directory (or a free TCP port), never the shared one at 6379, without
//! persistence, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::ChildGuard;
use crate::tls::TestPki;

/// A running redis-server.
#[derive(Debug)]
pub struct RedisServer {
    dir: PathBuf,
    socket: PathBuf,
    port: Option<u16>,
    password: Option<String>,
    /// Serve TLS (only) on the port, with this PKI's server certificate,
    /// asking clients for a certificate the PKI's CA signed.
    tls: Option<TestPki>,
    /// The address it binds its TCP port to.
    bind: String,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
    process: Option<ChildGuard>,
}

impl RedisServer {
    /// Starts one listening only on `DIR/redis.sock`.
    pub fn start_unix(dir: &Path) -> RedisServer {
        let mut server = RedisServer {
            dir: dir.to_owned(),
            socket: dir.join("redis.sock"),
            port: None,
            password: None,
            tls: None,
            bind: "127.0.0.1".into(),
            netns: None,
            process: None,
        };
        server.launch();
        server
    }

    /// Starts one on a free TCP port of 127.0.0.1 (and the socket too).
    pub fn start_tcp(dir: &Path) -> RedisServer {
        let port = free_port();
        let mut server = RedisServer {
            dir: dir.to_owned(),
            socket: dir.join("redis.sock"),
            port: Some(port),
            password: None,
            tls: None,
            bind: "127.0.0.1".into(),
            netns: None,
            process: None,
        };
        server.launch();
        server
    }

    /// As [`RedisServer::start_tcp`], with `requirepass` set (in a 0600
    /// config file, so the test's own `ps` shows no password either).
    pub fn start_tcp_with_password(dir: &Path, password: &str) -> RedisServer {
        let mut server = RedisServer {
            dir: dir.to_owned(),
            socket: dir.join("redis.sock"),
            port: Some(free_port()),
            password: Some(password.to_string()),
            tls: None,
            bind: "127.0.0.1".into(),
            netns: None,
            process: None,
        };
        server.launch();
        server
    }

    /// As [`RedisServer::start_tcp_with_password`], run in the network
    /// namespace `netns` (see [`crate::netns`]) on `address:6379` there, as
    /// on another host; its unix socket, in `dir`, is for the test's own
    /// inspection (a path, not an address: any namespace reaches it).
    pub fn start_in_netns(
        dir: &Path,
        netns: &crate::netns::Netns,
        address: &str,
        password: &str,
    ) -> RedisServer {
        let mut server = RedisServer {
            dir: dir.to_owned(),
            socket: dir.join("redis.sock"),
            port: Some(6379),
            password: Some(password.to_string()),
            tls: None,
            bind: address.to_string(),
            netns: Some(netns.name().to_string()),
            process: None,
        };
        server.launch();
        server
    }

    /// Starts one serving TLS only on a free TCP port of 127.0.0.1, with
    /// `pki`'s server certificate and `tls-auth-clients yes` (mutual TLS);
    /// its unix socket stays plain, for the test's own inspection.
    pub fn start_tls(dir: &Path, pki: &TestPki) -> RedisServer {
        let mut server = RedisServer {
            dir: dir.to_owned(),
            socket: dir.join("redis.sock"),
            port: Some(free_port()),
            password: None,
            tls: Some(pki.clone()),
            bind: "127.0.0.1".into(),
            netns: None,
            process: None,
        };
        server.launch();
        server
    }

    /// `rediss://localhost:PORT` (only for [`RedisServer::start_tls`]).
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://localhost:{}",
            self.port.expect("started with start_tls")
        )
    }

    /// `unix:///.../redis.sock`.
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// `redis://ADDRESS:PORT` (only for [`RedisServer::start_tcp`] and the
    /// like: 127.0.0.1 but in a namespace).
    pub fn tcp_url(&self) -> String {
        format!(
            "redis://{}:{}",
            self.bind,
            self.port.expect("started with start_tcp")
        )
    }

    /// A client for inspecting what the processes wrote.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let url = match &self.password {
            Some(password) => format!("unix://{}?pass={password}", self.socket.display()),
            None => self.unix_url(),
        };
        redis::Client::open(url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connects to the test redis")
    }

    /// Stops it (SIGTERM, like an operator would) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.signal(Signal::SIGTERM);
            assert!(
                process.wait_exit(Duration::from_secs(10)).is_some(),
                "redis-server did not stop"
            );
        }
    }

    /// Starts it again on the same socket (and port), empty.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let mut cmd = match &self.netns {
            Some(netns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", netns, "redis-server"]);
                cmd
            }
            None => Command::new("redis-server"),
        };
        if let Some(password) = &self.password {
            use std::os::unix::fs::OpenOptionsExt;
            let conf = self.dir.join("redis.conf");
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&conf)
                .expect("write redis.conf");
            std::io::Write::write_all(&mut file, format!("requirepass {password}\n").as_bytes())
                .expect("write redis.conf");
            cmd.arg(&conf);
        }
        let plain_port = match (&self.tls, self.port) {
            (Some(pki), Some(port)) => {
                cmd.args(["--tls-port", &port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(&pki.server_cert)
                    .arg("--tls-key-file")
                    .arg(&pki.server_key)
                    .arg("--tls-ca-cert-file")
                    .arg(&pki.ca_cert)
                    .args(["--tls-auth-clients", "yes"]);
                0
            }
            (_, port) => port.unwrap_or(0),
        };
        cmd.args(["--port", &plain_port.to_string()])
            .args(["--bind", &self.bind])
            .arg("--unixsocket")
            .arg(&self.socket)
            .args(["--unixsocketperm", "700"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no", "--loglevel", "warning"]);
        let process = ChildGuard::spawn("redis-server", cmd, &self.dir.join("redis.log"));
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not open {}", self.socket.display());
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
