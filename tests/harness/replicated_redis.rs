//! A Redis that can fail over, for one test: a primary and a replica
//! (`--replicaof`) on free TCP ports of 127.0.0.1, both with a password, and
//! three sentinels watching them under the name [`SERVICE`]
//! (`down-after-milliseconds` 1000, so a dead primary is replaced within
//! seconds). Never the shared Redis at 6379. Every password is in a 0600
//! config file, never on a command line; all processes are killed when
//! dropped. With a [`TestPki`], every node and sentinel speaks TLS only
//! (`tls-replication yes`: among themselves too), with the PKI's server
//! certificate (valid for 127.0.0.1, the address the sentinels name).
//!
//! Each node keeps an append-only file (`appendonly yes`, `appendfsync
//! everysec`, as docs/scale-out.md asks of a real deployment), so a node
//! killed and started again comes back with what it had acknowledged. A
//! node that came back empty could be elected primary by the sentinels
//! before it resynced, and the other node would then copy its emptiness:
//! every job lost, whatever the api's `--durability` (a CI run saw 313 of
//! 500 lost that way).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::ChildGuard;
use crate::redis_server::free_port;
use crate::tls::TestPki;

/// The name the sentinels know the primary by.
pub const SERVICE: &str = "verdict";

/// How long a sentinel waits before it calls a silent primary down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// One redis-server of the pair.
#[derive(Debug)]
pub struct Node {
    pub port: u16,
    dir: PathBuf,
    conf: PathBuf,
    process: Option<ChildGuard>,
}

impl Node {
    fn new(root: &Path, name: &str, password: &str, tls: Option<&TestPki>) -> Node {
        let port = free_port();
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let conf = dir.join("redis.conf");
        write_secret_file(
            &conf,
            &format!(
                "{}bind 127.0.0.1\nrequirepass {password}\nmasterauth {password}\n\
                 save \"\"\nappendonly yes\nappendfsync everysec\ndir {}\nloglevel notice\n",
                listen(port, tls),
                dir.display()
            ),
        );
        Node {
            port,
            dir,
            conf,
            process: None,
        }
    }

    /// Starts it with what its append-only file holds (nothing the first
    /// time), as a replica of `primary` if given; waits until it answers.
    pub fn start(&mut self, primary: Option<u16>) {
        assert!(self.process.is_none(), "node {} already runs", self.port);
        let mut cmd = Command::new("redis-server");
        cmd.arg(&self.conf);
        if let Some(primary) = primary {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let log = self.dir.join("redis.log");
        self.process = Some(ChildGuard::spawn(
            &format!("redis-{}", self.port),
            cmd,
            &log,
        ));
        wait_until(
            Duration::from_secs(10),
            &format!("redis {}", self.port),
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
        );
    }

    /// SIGKILL, and waits for the exit: a crash, nothing flushed.
    pub fn kill(&mut self) {
        let mut process = self.process.take().expect("the node runs");
        process.signal(Signal::SIGKILL);
        assert!(
            process.wait_exit(Duration::from_secs(10)).is_some(),
            "redis {} did not die",
            self.port
        );
    }

    /// SIGSTOP: the node stops answering but keeps its data and its
    /// connections, as a host that hangs does.
    pub fn freeze(&self) {
        self.process
            .as_ref()
            .expect("the node runs")
            .signal(Signal::SIGSTOP);
    }

    /// SIGCONT after [`Node::freeze`].
    pub fn thaw(&self) {
        self.process
            .as_ref()
            .expect("the node runs")
            .signal(Signal::SIGCONT);
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ChildGuard::is_running)
    }
}

/// The config lines that open `port`: plain, or TLS only with `tls`'s
/// server certificate (clients are not asked for one).
fn listen(port: u16, tls: Option<&TestPki>) -> String {
    match tls {
        None => format!("port {port}\n"),
        Some(pki) => format!(
            "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
             tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
            pki.server_cert.display(),
            pki.server_key.display(),
            pki.ca_cert.display()
        ),
    }
}

/// The primary, the replica and three sentinels.
#[derive(Debug)]
pub struct ReplicatedRedis {
    pub primary: Node,
    pub replica: Node,
    sentinels: Vec<ChildGuard>,
    pub sentinel_ports: Vec<u16>,
    password: String,
    tls: Option<TestPki>,
}

impl ReplicatedRedis {
    /// Starts the pair and the sentinels in `dir`, and waits until every
    /// sentinel knows the replica and the two other sentinels (before that,
    /// a dead primary would not be replaced).
    pub fn start(dir: &Path, password: &str) -> ReplicatedRedis {
        Self::start_with(dir, password, None)
    }

    /// [`ReplicatedRedis::start`], every port TLS only with `pki`.
    pub fn start_tls(dir: &Path, password: &str, pki: &TestPki) -> ReplicatedRedis {
        Self::start_with(dir, password, Some(pki))
    }

    fn start_with(dir: &Path, password: &str, tls: Option<&TestPki>) -> ReplicatedRedis {
        let mut primary = Node::new(dir, "node-a", password, tls);
        let mut replica = Node::new(dir, "node-b", password, tls);
        primary.start(None);
        replica.start(Some(primary.port));
        let mut redis = ReplicatedRedis {
            primary,
            replica,
            sentinels: Vec::new(),
            sentinel_ports: Vec::new(),
            password: password.to_owned(),
            tls: tls.cloned(),
        };
        for i in 0..3 {
            let port = free_port();
            let sentinel_dir = dir.join(format!("sentinel-{i}"));
            std::fs::create_dir_all(&sentinel_dir).expect("sentinel dir");
            let conf = sentinel_dir.join("sentinel.conf");
            // known-replica: the sentinels would otherwise learn of the
            // replica from the primary's INFO, up to 10 s later.
            write_secret_file(
                &conf,
                &format!(
                    "{}bind 127.0.0.1\ndir {}\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {} 2\n\
                     sentinel auth-pass {SERVICE} {password}\n\
                     sentinel down-after-milliseconds {SERVICE} {}\n\
                     sentinel failover-timeout {SERVICE} 3000\n\
                     sentinel known-replica {SERVICE} 127.0.0.1 {}\n",
                    listen(port, tls),
                    sentinel_dir.display(),
                    redis.primary.port,
                    DOWN_AFTER.as_millis(),
                    redis.replica.port,
                ),
            );
            let mut cmd = Command::new("redis-server");
            cmd.arg(&conf).arg("--sentinel");
            redis.sentinels.push(ChildGuard::spawn(
                &format!("sentinel-{i}"),
                cmd,
                &sentinel_dir.join("sentinel.log"),
            ));
            redis.sentinel_ports.push(port);
        }
        wait_until(
            Duration::from_secs(30),
            "the sentinels to know the replica and each other",
            || {
                redis.sentinel_ports.iter().all(|&port| {
                    redis
                        .sentinel_query(port, &["MASTER", SERVICE])
                        .map(|fields| {
                            field(&fields, "num-slaves") == Some("1")
                                && field(&fields, "num-other-sentinels") == Some("2")
                        })
                        .unwrap_or(false)
                })
            },
        );
        wait_until(Duration::from_secs(30), "the replica to be in sync", || {
            redis
                .node_info(redis.replica.port, "replication")
                .is_some_and(|info| info.contains("master_link_status:up"))
        });
        redis
    }

    /// `redis+sentinel://:PASSWORD@127.0.0.1:S1,...,127.0.0.1:S3/verdict`
    /// (`rediss+sentinel://` with TLS): for the environment only, it holds
    /// the password.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinel_ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!(
            "{}+sentinel://:{}@{}/{SERVICE}",
            self.scheme(),
            self.password,
            sentinels.join(",")
        )
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT` (`rediss://` with TLS): one node,
    /// directly.
    pub fn node_url(&self, port: u16) -> String {
        format!("{}://:{}@127.0.0.1:{port}", self.scheme(), self.password)
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// A client of `url` (trusting the test CA with TLS).
    fn client(&self, url: &str) -> Option<redis::Client> {
        match &self.tls {
            None => redis::Client::open(url).ok(),
            Some(pki) => {
                let root_cert = std::fs::read(&pki.ca_cert).ok()?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(url, certificates).ok()
            }
        }
    }

    /// A client of the sentinel at `port` (they ask for no password).
    fn sentinel_client(&self, port: u16) -> Option<redis::Client> {
        self.client(&format!("{}://127.0.0.1:{port}", self.scheme()))
    }

    /// The port the first sentinel that answers names as the primary.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinel_ports.iter().find_map(|&port| {
            let client = self.sentinel_client(port)?;
            let mut conn = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .ok()?;
            let (_, primary): (String, u16) = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(SERVICE)
                .query(&mut conn)
                .ok()?;
            Some(primary)
        })
    }

    /// Waits until the pair has settled after a failover: the sentinels
    /// name one of the two nodes as the primary, and the other node is its
    /// replica with the link up. Returns the primary's port.
    ///
    /// Which node that is, is not asserted: on a loaded 2-core machine the
    /// sentinels (`down-after-milliseconds` 1000) may fail over a second
    /// time, back to the node that returned, and that is a correct outcome.
    pub fn wait_settled(&self, limit: Duration) -> u16 {
        let mut settled = None;
        wait_until(
            limit,
            "the sentinels to settle on a primary with the other node its replica, in sync",
            || {
                settled = self.primary_port().filter(|&primary| {
                    let replica = if primary == self.primary.port {
                        self.replica.port
                    } else if primary == self.replica.port {
                        self.primary.port
                    } else {
                        return false;
                    };
                    self.node_info(primary, "replication")
                        .is_some_and(|info| info.contains("role:master"))
                        && self.node_info(replica, "replication").is_some_and(|info| {
                            info.contains("role:slave")
                                && info.contains(&format!("master_port:{primary}"))
                                && info.contains("master_link_status:up")
                        })
                });
                settled.is_some()
            },
        );
        settled.expect("wait_until returned: settled")
    }

    /// `INFO section` of the node on `port`, if it answers.
    pub fn node_info(&self, port: u16, section: &str) -> Option<String> {
        let client = self.client(&self.node_url(port))?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        redis::cmd("INFO").arg(section).query(&mut conn).ok()
    }

    /// `SENTINEL args...` on the sentinel at `port`, as a flat list of
    /// strings.
    fn sentinel_query(&self, port: u16, args: &[&str]) -> Option<Vec<String>> {
        let client = self.sentinel_client(port)?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        let mut cmd = redis::cmd("SENTINEL");
        for arg in args {
            cmd.arg(*arg);
        }
        let value: redis::Value = cmd.query(&mut conn).ok()?;
        let pairs: Vec<String> = match value {
            redis::Value::Map(pairs) => pairs
                .into_iter()
                .flat_map(|(k, v)| [k, v])
                .filter_map(|v| redis::from_redis_value(v).ok())
                .collect(),
            other => redis::from_redis_value(other).ok()?,
        };
        Some(pairs)
    }
}

/// The value after `name` in a flat `[name, value, ...]` list.
fn field<'a>(fields: &'a [String], name: &str) -> Option<&'a str> {
    fields
        .chunks(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair.get(1))
        .map(String::as_str)
}

fn write_secret_file(path: &Path, contents: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::io::Write::write_all(&mut file, contents.as_bytes()).expect("write config");
}

/// Polls `probe` every 50 ms until it holds, or panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !probe() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
