//! A whole verdict on one machine for one test: redis-server, verdict-api and
//! any number of verdict-worker processes, in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::binaries::binary;
use crate::client::ApiClient;
use crate::process::ChildGuard;
use crate::redis_server::RedisServer;
use crate::tls::TestPki;

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra flags for verdict-api.
    pub api_args: Vec<String>,
    /// Run Redis on TCP as well, and point the processes at `redis://`.
    pub tcp: bool,
    /// Run Redis with TLS only, with this PKI's certificates (mutual TLS),
    /// and point the processes at `rediss://localhost:PORT` with the CA and
    /// client certificate in their environment.
    pub tls: Option<TestPki>,
}

/// The processes of one test; all are killed when it is dropped (workers
/// first, Redis last), and their logs printed if the test failed.
pub struct Stack {
    workers: Vec<ChildGuard>,
    api: ChildGuard,
    pub redis: RedisServer,
    pub api_url: String,
    redis_url: String,
    /// What the api and every worker get in their environment to reach Redis
    /// (the TLS files).
    redis_env: Vec<(String, String)>,
    dir: TempDir,
}

impl Stack {
    /// Starts Redis and the api, and waits until the api listens.
    pub async fn start(options: StackOptions) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("verdict-e2e-")
            .tempdir()
            .expect("temp dir");
        let (redis, redis_url, redis_env) = match &options.tls {
            Some(pki) => {
                let redis = RedisServer::start_tls(dir.path(), pki);
                let url = redis.tls_url();
                (redis, url, pki.client_env())
            }
            None if options.tcp => {
                let redis = RedisServer::start_tcp(dir.path());
                let url = redis.tcp_url();
                (redis, url, Vec::new())
            }
            None => {
                let redis = RedisServer::start_unix(dir.path());
                let url = redis.unix_url();
                (redis, url, Vec::new())
            }
        };
        let mut cmd = Command::new(binary("verdict-api"));
        cmd.args([
            "--redis",
            &redis_url,
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .args(&options.api_args)
        .envs(redis_env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info");
        let mut api = ChildGuard::spawn("verdict-api", cmd, &dir.path().join("api.log"));
        let api_url = wait_for_listening(&mut api);
        Stack {
            workers: Vec::new(),
            api,
            redis,
            api_url,
            redis_url,
            redis_env,
            dir,
        }
    }

    /// Starts a worker named `name` with `args` (e.g. `["--noop"]`).
    pub fn spawn_worker(&mut self, name: &str, args: &[&str]) {
        self.spawn(name, Some(name), args, &[]);
    }

    /// [`Stack::spawn_worker`] with `env` added to the worker's environment
    /// (the test-only fault triggers, for example).
    pub fn spawn_worker_with_env(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        self.spawn(name, Some(name), args, env);
    }

    /// Starts a worker process known to the test as `label` (its log is
    /// `label.log`, [`Stack::worker`] finds it by `label`), with `--name
    /// name`, or without `--name` (the worker makes its own).
    pub fn spawn_worker_as(&mut self, label: &str, name: Option<&str>, args: &[&str]) {
        self.spawn(label, name, args, &[]);
    }

    fn spawn(&mut self, label: &str, name: Option<&str>, args: &[&str], env: &[(&str, &str)]) {
        let mut cmd = Command::new(binary("verdict-worker"));
        cmd.envs(self.redis_env.iter().map(|(k, v)| (k, v)));
        cmd.envs(env.iter().copied());
        cmd.args(["run", "--redis", &self.redis_url]);
        if let Some(name) = name {
            cmd.args(["--name", name]);
        }
        cmd.args(["--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "info");
        let log = self.dir.path().join(format!("{label}.log"));
        self.workers.push(ChildGuard::spawn(label, cmd, &log));
    }

    /// Starts workers and waits until `/readyz` lists every one of them.
    pub async fn start_workers(&mut self, names: &[&str], args: &[&str]) {
        for name in names {
            self.spawn_worker(name, args);
        }
        self.wait_ready(names).await;
    }

    /// Waits until `/readyz` answers 200 and lists every name in `names`.
    pub async fn wait_ready(&mut self, names: &[&str]) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = client.get_path("/readyz").await;
            let listed = body["workers"].as_array().cloned().unwrap_or_default();
            if status == 200 && names.iter().all(|n| listed.iter().any(|w| w == n)) {
                return;
            }
            for worker in self
                .workers
                .iter_mut()
                .filter(|w| names.contains(&w.name.as_str()))
            {
                assert!(
                    worker.is_running(),
                    "worker {} exited before it was ready:\n{}",
                    worker.name,
                    worker.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not ready after 30 s: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.api_url)
    }

    pub fn api(&mut self) -> &mut ChildGuard {
        &mut self.api
    }

    /// The worker process named (or labelled) `name`.
    pub fn worker(&mut self, name: &str) -> &mut ChildGuard {
        self.workers
            .iter_mut()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no worker {name}"))
    }

    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Reads the api's log until its `listening` line names the address.
pub fn wait_for_listening(api: &mut ChildGuard) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for line in api.log().lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if event["message"] == "listening"
                && let Some(addr) = event["addr"].as_str()
            {
                return format!("http://{addr}");
            }
        }
        assert!(
            api.is_running(),
            "verdict-api exited at start:\n{}",
            api.log()
        );
        assert!(
            Instant::now() < deadline,
            "verdict-api did not listen within 30 s:\n{}",
            api.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log of a process, as JSON events.
pub fn log_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Where a test's extra files go.
pub fn scratch(stack: &Stack, name: &str) -> PathBuf {
    stack.dir().join(name)
}
