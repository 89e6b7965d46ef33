//! Collecting the exit status of every child that has died.
//!
//! The watchdog learns of deaths from SIGCHLD, never by polling. Signals
//! coalesce (ten children dying at once may raise one SIGCHLD), so each signal
//! is answered by calling `waitpid(-1, WNOHANG)` until nothing is left to reap.
//! `-1` also reaps processes the watchdog adopted as a child subreaper (for
//! example a Redis fork whose parent died), which would otherwise stay zombies.

use std::fmt;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use serde::{Deserialize, Serialize};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal { signal: Signal, core_dumped: bool },
}

impl Exit {
    /// Whether the process ended on its own with status 0.
    pub fn is_clean(&self) -> bool {
        matches!(self, Exit::Code(0))
    }

    /// The serializable form for `status`.
    pub fn describe(&self) -> ExitStatusInfo {
        match *self {
            Exit::Code(code) => ExitStatusInfo {
                code: Some(code),
                signal: None,
            },
            Exit::Signal { signal, .. } => ExitStatusInfo {
                code: None,
                signal: Some(signal.as_str().to_string()),
            },
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal {
                signal,
                core_dumped: true,
            } => write!(f, "signal {} (core dumped)", signal.as_str()),
            Exit::Signal { signal, .. } => write!(f, "signal {}", signal.as_str()),
        }
    }
}

/// An exit as `status --json` shows it: a code or a signal name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatusInfo {
    pub code: Option<i32>,
    pub signal: Option<String>,
}

impl fmt::Display for ExitStatusInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.signal) {
            (Some(code), _) => write!(f, "code {code}"),
            (None, Some(signal)) => f.write_str(signal),
            (None, None) => f.write_str("?"),
        }
    }
}

/// Reaps every child that has exited, without blocking.
pub fn reap_all() -> Vec<(u32, Exit)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                reaped.push((pid.as_raw() as u32, Exit::Code(code)))
            }
            Ok(WaitStatus::Signaled(pid, signal, core_dumped)) => reaped.push((
                pid.as_raw() as u32,
                Exit::Signal {
                    signal,
                    core_dumped,
                },
            )),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Err(Errno::EINTR) => continue,
            // Stopped/continued children are not exits; nothing else is
            // reported without WUNTRACED/WCONTINUED.
            Ok(_) => continue,
            Err(err) => {
                tracing::error!(error = %err, "waitpid failed");
                break;
            }
        }
    }
    reaped
}
