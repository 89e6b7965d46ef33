//! Network namespaces as stand-in hosts, for tests that need more than one
//! machine on a network (`tests/two_hosts.rs`).
//!
//! A [`Netns`] is a network namespace made with `ip netns add` under a name
//! unique to the test run: its own interfaces, addresses and ports, and the
//! host name, file system and PIDs of the machine (processes started in it
//! with [`Netns::command`] keep their PIDs and PID files). Dropping it
//! SIGKILLs every process still in it and deletes it, even when the test
//! failed. [`veth_pair`] joins two of them with a virtual cable; the root
//! namespace's interfaces and addresses are never touched.
//!
//! Making a namespace takes root (CAP_SYS_ADMIN and CAP_NET_ADMIN); a test
//! that cannot make one says so and is skipped ([`Netns::create`] returns
//! why).

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::fleet::alive;

/// A network namespace this test made; deleted (with whatever runs in it)
/// when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add NAME`, with its loopback up; `Err` says why it could not
    /// be made (not root, no `ip`, namespaces not allowed here).
    pub fn create(name: &str) -> Result<Netns, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("network namespaces need root (ip netns add)".into());
        }
        ip(&["netns", "add", name])?;
        let netns = Netns {
            name: name.to_string(),
        };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`: configures this namespace only.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `ip netns exec NAME PROGRAM`: a command that runs `program` in this
    /// namespace (with the caller's environment; `ip` execs the program, so
    /// the child's PID is the program's).
    pub fn command(&self, program: impl Into<PathBuf>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program.into());
        cmd
    }

    /// The processes in this namespace now (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        let output = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .output()
            .expect("ip netns pids runs");
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .filter(|&pid| pid != std::process::id())
            .collect()
    }

    /// SIGKILLs every process in the namespace and waits until all are gone
    /// (zombies count as gone); the PIDs it killed.
    pub fn kill_all(&self, limit: Duration) -> Vec<u32> {
        let mut killed = Vec::new();
        let deadline = Instant::now() + limit;
        loop {
            // Again and again: a process may fork while the others die.
            let pids: Vec<u32> = self.pids().into_iter().filter(|&p| alive(p)).collect();
            if pids.is_empty() || Instant::now() > deadline {
                return killed;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                if !killed.contains(&pid) {
                    killed.push(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `f` on a thread that has joined this namespace's network: every
    /// socket it opens (an HTTP client's, a child process's) is in here, as
    /// on a program running on this host.
    pub fn run_inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        let handle = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || {
                nix::sched::setns(&handle, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("cannot join {path}: {e}"));
                f()
            });
            match thread.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let left = self.kill_all(Duration::from_secs(10));
        if !left.is_empty() {
            eprintln!(
                "netns {}: killed {} process(es) still in it: {left:?}",
                self.name,
                left.len()
            );
        }
        if let Err(err) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns {}: {err}", self.name);
        }
    }
}

/// Joins `a` and `b` with a veth pair made inside them (never in the root
/// namespace): `a_if` in `a` with `a_addr`, `b_if` in `b` with `b_addr`
/// (CIDR, e.g. `10.1.2.1/24`), both up. The pair goes with the namespaces.
pub fn veth_pair(
    (a, a_if, a_addr): (&Netns, &str, &str),
    (b, b_if, b_addr): (&Netns, &str, &str),
) -> Result<(), String> {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ])?;
    a.ip(&["addr", "add", a_addr, "dev", a_if])?;
    b.ip(&["addr", "add", b_addr, "dev", b_if])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// `len` random hex digits, from /dev/urandom: names and addresses unique to
/// one test run.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(len);
    hex
}

/// Runs `ip ARGS...`; its stderr as the error.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
