//! Cleaning up after a fleet that did not stop cleanly.
//!
//! A PID file whose lock is free is stale: it is reported and removed, and the
//! PID it names is never signalled (it may belong to anyone by now). A PID
//! file that is still locked while no watchdog holds `watchdog.pid` belongs to
//! an orphan: a process of a previous fleet that outlived its watchdog (one
//! that ignored the SIGTERM its watchdog's death sent it). Orphans are
//! stopped, SIGTERM then SIGKILL, so that a new fleet starts from nothing.
//!
//! The process to signal is found through the lock, not trusted from the
//! file: the PID the file names is signalled only if that process really has
//! the file open; otherwise the processes that have it open are.

use std::fmt;
use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::pidfile::{self, Probe};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::home::Home;
use crate::procfs;

/// What the sweep found and did, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Stale PID files removed: name and the PID they named.
    pub stale: Vec<(String, Option<u32>)>,
    /// Orphans stopped: name, PID and how.
    pub orphans: Vec<(String, u32, String)>,
    /// Orphans that would not die (should not happen: SIGKILL).
    pub survivors: Vec<(String, u32)>,
}

impl Sweep {
    pub fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.orphans.is_empty() && self.survivors.is_empty()
    }

    /// One line per finding.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, pid) in &self.stale {
            let pid = pid.map_or_else(|| "no valid PID".to_string(), |p| format!("PID {p}"));
            lines.push(format!(
                "stale PID file run/{name}.pid ({pid}, lock free: that process is gone); removed"
            ));
        }
        for (name, pid, how) in &self.orphans {
            lines.push(format!(
                "orphan {name} (PID {pid}) from a previous fleet: {how}"
            ));
        }
        for (name, pid) in &self.survivors {
            lines.push(format!("orphan {name} (PID {pid}) could not be stopped"));
        }
        lines
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// Removes stale PID files and stops orphans, except `watchdog.pid` (the
/// caller decides about the watchdog). Waits up to `timeout` for each orphan
/// after SIGTERM.
pub fn sweep(home: &Home, timeout: Duration) -> anyhow::Result<Sweep> {
    let mut result = Sweep::default();
    remove_leftover_temporaries(home);
    let names = home.pid_file_names()?;
    let mut orphans = Vec::new();
    for name in names.iter().filter(|n| *n != "watchdog") {
        let path = home.pid_file(name);
        match pidfile::remove_if_stale(&path)? {
            Probe::Absent => {}
            Probe::Stale { pid } => result.stale.push((name.clone(), pid)),
            Probe::Running { pid } => orphans.push((name.clone(), pid)),
        }
    }
    // Stop the api and workers before Redis, as `fleet down` would.
    orphans.sort_by_key(|(name, _)| name == "redis");
    for (name, named_pid) in orphans {
        let path = home.pid_file(&name);
        let holders = pidfile::holders(&path).unwrap_or_default();
        let me = std::process::id();
        let targets: Vec<u32> = match named_pid {
            Some(pid) if holders.contains(&pid) => vec![pid],
            _ => holders
                .into_iter()
                .filter(|&pid| pid != me && procfs::command_name(pid).as_deref() != Some("fleet"))
                .collect(),
        };
        for pid in targets {
            match stop(pid, timeout) {
                Some(how) => result.orphans.push((name.clone(), pid, how)),
                None => result.survivors.push((name.clone(), pid)),
            }
        }
        let _ = pidfile::remove_if_stale(&path);
    }
    Ok(result)
}

/// SIGTERM, wait, SIGKILL, wait; says how it ended, or `None` if the process
/// survived even SIGKILL. Polls: these are not our children, so no SIGCHLD
/// will tell us.
pub fn stop(pid: u32, timeout: Duration) -> Option<String> {
    let target = Pid::from_raw(pid as i32);
    let start = Instant::now();
    if kill(target, Signal::SIGTERM).is_err() {
        return Some("already gone".into());
    }
    while start.elapsed() < timeout {
        if !procfs::is_alive(pid) {
            return Some(format!(
                "stopped by SIGTERM in {}",
                crate::durations_and_sizes::format_duration(start.elapsed())
            ));
        }
        sleep(Duration::from_millis(50));
    }
    let _ = kill(target, Signal::SIGKILL);
    let killed_at = Instant::now();
    while killed_at.elapsed() < Duration::from_secs(5) {
        if !procfs::is_alive(pid) {
            return Some(format!(
                "SIGKILL after ignoring SIGTERM for {}",
                crate::durations_and_sizes::format_duration(timeout)
            ));
        }
        sleep(Duration::from_millis(20));
    }
    None
}

/// `NAME.pid.tmpN` files are left only by a process killed while it took its
/// PID file; they are never locked for long.
fn remove_leftover_temporaries(home: &Home) {
    let Ok(entries) = fs::read_dir(home.run_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.contains(".pid.tmp") {
            let _ = pidfile::remove_if_stale(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pidfile::ChildPidFile;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn stale_files_are_removed_and_orphans_stopped_by_their_lock() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path())).unwrap();
        home.create().unwrap();
        // A stale file naming a live unrelated process (PID 1): must be
        // removed, and PID 1 must not be signalled.
        fs::write(home.pid_file("api"), "1\n").unwrap();
        // An orphan: a live process holding worker-0.pid's lock, which
        // ignores SIGTERM so only SIGKILL stops it.
        let pid_file = ChildPidFile::new(&home.pid_file("worker-0")).unwrap();
        let mut cmd = Command::new("sh");
        // An ignored signal stays ignored across exec.
        cmd.args(["-c", "trap '' TERM; exec sleep 30"]);
        unsafe {
            cmd.pre_exec(move || pid_file.lock_in_child());
        }
        let mut orphan = cmd.spawn().unwrap();
        let orphan_pid = orphan.id();
        // Let the shell install its trap.
        sleep(Duration::from_millis(300));

        let sweep = sweep(&home, Duration::from_millis(300)).unwrap();
        assert_eq!(sweep.stale, vec![("api".to_string(), Some(1))]);
        assert_eq!(sweep.orphans.len(), 1, "{sweep:?}");
        assert_eq!(sweep.orphans[0].1, orphan_pid);
        assert!(sweep.orphans[0].2.contains("SIGKILL"), "{sweep:?}");
        assert!(
            orphan.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
        assert!(!home.pid_file("api").exists());
        assert!(
            !home.pid_file("worker-0").exists(),
            "the orphan's file is removed once it is dead"
        );
    }
}
