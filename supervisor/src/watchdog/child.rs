//! Starting one supervised process.
//!
//! Between `fork` and `exec` the child:
//! - asks the kernel for SIGTERM when the watchdog dies (`PR_SET_PDEATHSIG`),
//!   and exits at once if the watchdog is already gone, so that killing the
//!   watchdog, even with SIGKILL, stops the fleet instead of orphaning it;
//! - stays in the watchdog's process group and session (no `setsid`), so
//!   `kill -- -PGID` reaches every process of the fleet;
//! - applies its memory limit (`RLIMIT_AS`);
//! - sets its umask to 077, so that whatever it creates (Redis's append-only
//!   files, say) is private to the fleet's user even outside the 0700 home;
//! - takes its PID file and lock ([`ChildPidFile`]).
//!
//! Its stdout and stderr are appended to `logs/NAME.log`; stdin is /dev/null.
//!
//! The watchdog reaps children itself with `waitpid(-1)` (see `reaper`), so the
//! `std::process::Child` handle is dropped at once: dropping it neither waits
//! nor kills.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::pidfile::ChildPidFile;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::Signal;
use nix::sys::stat::{Mode, umask};
use nix::unistd::{getpid, getppid};

/// A log file larger than this is moved to `NAME.log.1` when its process is
/// (re)started, so a crash-looping process cannot fill the disk.
const ROTATE_AT: u64 = 64 * 1024 * 1024;

/// How to start one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub pid_file: PathBuf,
    pub log_file: PathBuf,
    /// `RLIMIT_AS` in bytes.
    pub memory_limit: Option<u64>,
}

/// Starts the process and returns its PID.
pub fn spawn(launch: &Launch) -> io::Result<u32> {
    rotate_if_large(&launch.log_file);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&launch.log_file)?;
    let pid_file = ChildPidFile::new(&launch.pid_file)?;
    let parent = getpid();
    let memory_limit = launch.memory_limit;

    let mut cmd = Command::new(&launch.program);
    for secret in super::roles::SECRET_ENV {
        cmd.env_remove(secret);
    }
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: the closure only makes async-signal-safe system calls (prctl,
    // getppid, setrlimit, umask, and ChildPidFile's open/flock/write/rename) on data
    // prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // The watchdog may have died between fork and prctl: then no
            // signal will ever come, so do not start at all.
            if getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            if let Some(bytes) = memory_limit {
                setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
            }
            umask(Mode::from_bits_truncate(0o077));
            pid_file.lock_in_child()
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id())
}

fn rotate_if_large(log: &std::path::Path) {
    if log.metadata().is_ok_and(|m| m.len() > ROTATE_AT) {
        let mut old = log.as_os_str().to_os_string();
        old.push(".1");
        let _ = std::fs::rename(log, old);
    }
}
