//! Process names and roles in a fleet, and the order they are shown in.
//!
//! Names double as PID file and log file names (`run/NAME.pid`,
//! `logs/NAME.log`), so they are plain: `watchdog`, `redis`, `api`,
//! `worker-0`, `worker-1`, ...

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a process does in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Watchdog,
    Redis,
    Api,
    Worker,
}

impl Role {
    /// The role a process name belongs to.
    pub fn of(name: &str) -> Option<Role> {
        match name {
            "watchdog" => Some(Role::Watchdog),
            "redis" => Some(Role::Redis),
            "api" => Some(Role::Api),
            _ => worker_index(name).map(|_| Role::Worker),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Watchdog => "watchdog",
            Role::Redis => "redis",
            Role::Api => "api",
            Role::Worker => "worker",
        })
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "watchdog" => Ok(Role::Watchdog),
            "redis" => Ok(Role::Redis),
            "api" => Ok(Role::Api),
            "worker" | "workers" => Ok(Role::Worker),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// The name of worker `index`.
pub fn worker_name(index: usize) -> String {
    format!("worker-{index}")
}

/// The index of a worker name (`worker-12` → 12).
pub fn worker_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("worker-")?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.parse().ok()
}

/// A process's name, ordered as [`order`] orders names: the key of the
/// watchdog's table of processes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessName(String);

impl ProcessName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ProcessName {
    fn from(name: &str) -> ProcessName {
        ProcessName(name.to_string())
    }
}

impl fmt::Display for ProcessName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for ProcessName {
    fn cmp(&self, other: &Self) -> Ordering {
        order(&self.0, &other.0)
    }
}

impl PartialOrd for ProcessName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Watchdog, redis, api, then workers by number (`worker-2` before `worker-10`).
pub fn order(a: &str, b: &str) -> Ordering {
    let key = |name: &str| (Role::of(name), worker_index(name), name.to_string());
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_order() {
        assert_eq!(Role::of("worker-10"), Some(Role::Worker));
        assert_eq!(Role::of("worker-01"), None);
        assert_eq!(Role::of("api"), Some(Role::Api));
        assert_eq!(Role::of("nginx"), None);
        let mut names = vec!["worker-10", "api", "worker-2", "watchdog", "redis"];
        names.sort_by(|a, b| order(a, b));
        assert_eq!(names, ["watchdog", "redis", "api", "worker-2", "worker-10"]);
    }
}
