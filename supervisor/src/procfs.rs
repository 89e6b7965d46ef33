//! What `/proc` says about a process: its memory, CPU time, name, liveness,
//! and which process listens on a TCP port.
//!
//! `fleet status` shows these for every PID whose lock it has verified, so
//! they describe the fleet's own processes and nothing else; `fleet up`
//! names the holder of a port it cannot bind.

use std::fs;
use std::time::Duration;

/// A process's resource use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time since it started.
    pub cpu: Duration,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`. `None` when the process is
/// gone (or not ours to read).
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = read_stat(pid)?;
    let ticks = clock_ticks();
    let cpu_ticks = stat.utime + stat.stime;
    let cpu = Duration::from_millis(cpu_ticks.saturating_mul(1000) / ticks.max(1));
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Some(Usage {
        rss_bytes: rss_kb * 1024,
        cpu,
    })
}

/// This machine's memory (`MemTotal` of `/proc/meminfo`), in bytes.
pub fn memory_total() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The command name (`comm`) of `pid`.
pub fn command_name(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    read_stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

struct Stat {
    state: char,
    utime: u64,
    stime: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after
    // its last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5).
    Some(Stat {
        state: fields.first()?.chars().next()?,
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
    })
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as u64)
        .unwrap_or(100)
}

/// The process listening on TCP `port` (any address, IPv4 or IPv6): its PID
/// and command name. `None` when nobody listens, or when the socket belongs
/// to a process this user may not look into.
pub fn listener(port: u16) -> Option<(u32, String)> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
        });
        if holds {
            return Some((pid, command_name(pid).unwrap_or_else(|| "?".into())));
        }
    }
    None
}

/// The inodes of the sockets in LISTEN state on `port` in one
/// `/proc/net/tcp*` table (`local_address` is `HEXADDR:HEXPORT`, `st` 0A).
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = *fields.get(3)? == "0A";
            let inode = fields.get(9)?.parse().ok()?;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let usage = usage(me).unwrap();
        assert!(usage.rss_bytes > 1024 * 1024, "{usage:?}");
        assert!(is_alive(me));
        assert!(usage.cpu < Duration::from_secs(3600));
    }

    #[test]
    fn finds_who_listens_on_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (pid, _) = listener_of(port).expect("this process listens");
        assert_eq!(pid, std::process::id());
        drop(listener);
        assert_eq!(listener_of(port), None);
    }

    fn listener_of(port: u16) -> Option<(u32, String)> {
        listener(port)
    }

    #[test]
    fn a_missing_process_has_no_usage() {
        // PID numbers above pid_max (4194304 at most on Linux) never exist.
        assert_eq!(usage(4_999_999), None);
        assert!(!is_alive(4_999_999));
    }
}
