//! A fleet on a temporary home, for the `fleet` end-to-end tests.
//!
//! [`Fleet`] runs the real `fleet` binary (and through it the real
//! `verdict-api`, `verdict-worker` and `redis-server`) on a fresh home under
//! /tmp with a free port. Whatever happens in a test, dropping it runs
//! `fleet down` and then SIGKILLs anything that still holds a PID file's lock
//! or sits in the watchdog's process group, so no test leaves a process
//! behind.
//!
//! The binaries are built once per test process (`cargo build` of the three
//! packages, see [`crate::binaries`]), so a test never runs a stale `fleet`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use verdict_supervisor::pidfile::{self, Probe};

/// A 1x1 PNG, base64: the api checks magic bytes, and `--noop` workers do not
/// look further.
pub const TINY_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The directory holding `fleet`, `verdict-api` and `verdict-worker`, built
/// on first use (see [`crate::binaries`]).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = crate::binaries::bin_dir();
        for bin in ["fleet", "verdict-api", "verdict-worker"] {
            assert!(
                dir.join(bin).is_file(),
                "{} is missing after the build",
                dir.join(bin).display()
            );
        }
        dir
    })
}

/// The result of one `fleet` command.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    /// Both streams, for assertions and failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// A fleet home under /tmp (short: unix socket paths are limited) with a free
/// port for the api.
pub struct Fleet {
    home: tempfile::TempDir,
    pub port: u16,
    /// The address the api binds and the test reaches it at.
    address: String,
    /// The network namespace its commands run in (`ip netns exec`), if any.
    netns: Option<String>,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

impl Fleet {
    pub fn new() -> Fleet {
        bin_dir();
        let home = tempfile::Builder::new()
            .prefix("fleet")
            .tempdir_in("/tmp")
            .expect("temporary home");
        Fleet {
            home,
            port: free_port(),
            address: "127.0.0.1".into(),
            netns: None,
        }
    }

    /// A fleet whose every command (`up` and so the watchdog and its
    /// children, `status`, `down`) runs in the network namespace `netns`
    /// (see [`crate::netns`]), its api on `address` there. The test reaches
    /// that api only from a thread inside a namespace joined to it
    /// ([`crate::netns::Netns::run_inside`]).
    pub fn in_netns(netns: &crate::netns::Netns, address: &str) -> Fleet {
        let mut fleet = Fleet::new();
        fleet.address = address.to_string();
        fleet.netns = Some(netns.name().to_string());
        fleet
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn api_url(&self) -> String {
        format!("http://{}:{}", self.address, self.port)
    }

    /// `ADDRESS:PORT`, what `--bind` gets.
    pub fn bind(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// `fleet --home HOME ARGS...`, without the caller's VERDICT_* settings
    /// (in the fleet's network namespace, if it has one).
    pub fn command(&self, args: &[&str]) -> Command {
        let program = bin_dir().join("fleet");
        let mut cmd = match &self.netns {
            Some(netns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", netns]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.arg("--home").arg(self.home()).args(args);
        for var in [
            "VERDICT_HOME",
            "VERDICT_REDIS_URL",
            "VERDICT_BIND",
            "VERDICT_MODEL",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a `fleet` command to completion (killed after `limit`).
    pub fn run_with_limit(&self, args: &[&str], limit: Duration) -> Run {
        self.run_command(self.command(args), limit)
    }

    /// Runs `cmd` (from [`Fleet::command`], with more set on it: an
    /// environment variable) to completion, killed after `limit`.
    pub fn run_command(&self, mut cmd: Command, limit: Duration) -> Run {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run fleet");
        let start = Instant::now();
        loop {
            if child.try_wait().expect("wait for fleet").is_some() {
                break;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("fleet output");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_limit(args, Duration::from_secs(120))
    }

    /// `fleet up --allow-root --workers N --bind ADDRESS:PORT --model MODEL
    /// --timeout T EXTRA...`: real-model workers; waits T and a minute more.
    pub fn up_with_model(
        &self,
        model: &Path,
        workers: usize,
        timeout: Duration,
        extra: &[&str],
    ) -> Run {
        let workers = workers.to_string();
        let bind = self.bind();
        let timeout_arg = format!("{}s", timeout.as_secs());
        let mut args = vec![
            "up",
            "--allow-root",
            "--workers",
            &workers,
            "--bind",
            &bind,
            "--model",
            model.to_str().expect("UTF-8 model path"),
            "--timeout",
            &timeout_arg,
        ];
        args.extend_from_slice(extra);
        self.run_with_limit(&args, timeout + Duration::from_secs(60))
    }

    /// `fleet up --allow-root --noop-workers --workers N --bind ADDRESS:PORT EXTRA...`.
    pub fn up(&self, workers: usize, extra: &[&str]) -> Run {
        let workers = workers.to_string();
        let bind = self.bind();
        let mut args = vec![
            "up",
            "--allow-root",
            "--noop-workers",
            "--workers",
            &workers,
            "--bind",
            &bind,
        ];
        if !extra.contains(&"--timeout") {
            args.extend(["--timeout", "60s"]);
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `fleet status --json`, parsed, with its exit code.
    pub fn status(&self) -> (Option<i32>, Value) {
        let run = self.run(&["status", "--json"]);
        let value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|err| panic!("status --json is not JSON ({err}):\n{}", run.output()));
        (run.code, value)
    }

    /// The PID in `run/NAME.pid`, if the file exists and names one.
    pub fn pid_in_file(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.home().join("run").join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether `run/NAME.pid` is locked (its process alive).
    pub fn is_locked(&self, name: &str) -> bool {
        matches!(
            pidfile::probe(&self.home().join("run").join(format!("{name}.pid"))),
            Ok(Probe::Running { .. })
        )
    }

    /// The names of the PID files in `run/` that are still locked.
    pub fn live_locks(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.home().join("run")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".pid")
                    .map(str::to_string)
            })
            .filter(|name| self.is_locked(name))
            .collect()
    }

    /// The content of `logs/NAME.log`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.home().join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    /// Submits a job (the tiny PNG, one sentence) and returns its id.
    pub fn submit(&self) -> String {
        let body = serde_json::json!({"image_base64": TINY_PNG_BASE64, "texts": ["a test"]});
        let url = format!("{}/v1/jobs", self.api_url());
        let (status, job) = http(move |client| client.post(url).json(&body));
        assert_eq!(status, 202, "submission refused: {job}");
        job["id"].as_str().expect("job id").to_string()
    }

    /// The job as the api serves it now.
    pub fn job(&self, id: &str) -> Value {
        let url = format!("{}/v1/jobs/{id}", self.api_url());
        let (status, job) = http(move |client| client.get(url));
        assert_eq!(status, 200, "GET job {id}: {job}");
        job
    }

    /// Waits until the job ends (long-poll) and returns it.
    pub fn wait_job(&self, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let url = format!("{}/v1/jobs/{id}?wait=5", self.api_url());
            let (status, job) = http(move |client| client.get(url));
            assert_eq!(status, 200, "GET job {id}: {job}");
            if matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled"))
                || start.elapsed() > limit
            {
                return job;
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let watchdog = self.pid_in_file("watchdog");
        if self.is_locked("watchdog") || !self.live_locks().is_empty() {
            let _ = self.run_with_limit(&["down", "--timeout", "5s"], Duration::from_secs(60));
        }
        // Last resort: anything still holding a lock, and the watchdog's group.
        let run = self.home().join("run");
        if let Ok(entries) = std::fs::read_dir(&run) {
            for entry in entries.flatten() {
                let path = entry.path();
                if matches!(pidfile::probe(&path), Ok(Probe::Running { .. })) {
                    for pid in pidfile::holders(&path).unwrap_or_default() {
                        if pid != std::process::id() {
                            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                        }
                    }
                }
            }
        }
        // Members of the watchdog's process group that are fleet programs (a
        // bare killpg could hit a new group that reused the number).
        if let Some(pgid) = watchdog {
            for pid in fleet_members(pgid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Processes in process group `pgid` running one of the fleet's programs.
fn fleet_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            let comm = stat
                .get(stat.find('(').unwrap_or(0) + 1..close)
                .unwrap_or("");
            let pgrp = stat[close + 1..]
                .split_whitespace()
                .nth(2)
                .and_then(|f| f.parse::<u32>().ok());
            pgrp == Some(pgid)
                && ["fleet", "verdict-api", "verdict-worker", "redis-server"]
                    .iter()
                    .any(|name| comm.starts_with(&name[..name.len().min(15)]))
        })
        .collect()
}

/// Polls `probe` every 50 ms until it returns `Some`, or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The row of process `name` in `status --json`.
pub fn process<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["processes"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["name"] == name))
        .unwrap_or_else(|| panic!("no process {name} in status: {status:#}"))
}

/// Whether a process with this PID exists (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP exchange on a throwaway runtime; returns the status and JSON body.
pub fn http(
    build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder + Send + 'static,
) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("http client");
        let response = build(&client).send().await.expect("http request");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    })
}
