//! The fleet's home: the one directory that holds everything a fleet leaves on
//! disk.
//!
//! ```text
//! HOME/                 mode 0700: nobody else may read sockets, logs or data
//!   run/                PID files (one per process), the sockets, fleet.json
//!     watchdog.pid      locked by the watchdog for its life
//!     redis.pid api.pid worker-0.pid ...   locked by each process for its life
//!     watchdog.sock     the control channel (mode 0600)
//!     redis.sock        the embedded Redis (mode 0600), when no --redis is given
//!     fleet.json        the fleet's configuration as `fleet up` resolved it
//!   logs/               one log file per process name: watchdog.log, api.log, ...
//!   redis/              the embedded Redis's append-only files
//!   fleet-id            the fleet's id, with a shared Redis (`crate::fleet_id`)
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Unix socket paths are limited to 107 bytes by `sockaddr_un`.
const MAX_SOCKET_PATH: usize = 107;

/// The paths of one fleet home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home named by `--home`/`VERDICT_HOME`, else the per-user data
    /// directory (`$XDG_DATA_HOME/verdict` or `~/.local/share/verdict`). The
    /// path is made absolute: the watchdog runs from its own directory and
    /// children get absolute paths.
    pub fn resolve(flag: Option<&Path>) -> anyhow::Result<Home> {
        let root = match flag {
            Some(path) => path.to_path_buf(),
            None => default_root()?,
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(root)
        };
        Ok(Home { root })
    }

    /// Creates the directories with mode 0700 (and tightens an existing home
    /// that is looser: the sockets and logs in it are not for other users).
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [
            self.root.clone(),
            self.run_dir(),
            self.logs_dir(),
            self.redis_dir(),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let meta =
                fs::metadata(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
            }
        }
        for socket in [self.control_socket(), self.redis_socket()] {
            if socket.as_os_str().len() > MAX_SOCKET_PATH {
                bail!(
                    "the home {} is too deep: its socket {} would be longer than {MAX_SOCKET_PATH} bytes; \
                     choose a shorter --home",
                    self.root.display(),
                    socket.display()
                );
            }
        }
        Ok(())
    }

    /// Whether the home has been created (a fleet ever ran here).
    pub fn exists(&self) -> bool {
        self.run_dir().is_dir()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn redis_dir(&self) -> PathBuf {
        self.root.join("redis")
    }
    /// The PID file of the process called `name` (`watchdog`, `redis`, `api`, `worker-0`).
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.run_dir().join(format!("{name}.pid"))
    }
    /// The log file of the process called `name`.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }
    pub fn control_socket(&self) -> PathBuf {
        self.run_dir().join("watchdog.sock")
    }
    pub fn redis_socket(&self) -> PathBuf {
        self.run_dir().join("redis.sock")
    }
    pub fn config_file(&self) -> PathBuf {
        self.run_dir().join("fleet.json")
    }
    /// The fleet's id (made once, kept for the home's life).
    pub fn fleet_id_file(&self) -> PathBuf {
        self.root.join("fleet-id")
    }

    /// The names of the processes that have a PID file in `run/`, sorted.
    pub fn pid_file_names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        let entries = match fs::read_dir(self.run_dir()) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            if let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".pid"))
            {
                names.push(name.to_string());
            }
        }
        names.sort_by(|a, b| crate::names::order(a, b));
        Ok(names)
    }
}

fn default_root() -> anyhow::Result<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(data).join("verdict"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/verdict")),
        None => bail!("no --home given and neither VERDICT_HOME, XDG_DATA_HOME nor HOME is set"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_directories_and_tightens_loose_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("fleet");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let home = Home::resolve(Some(&root)).unwrap();
        home.create().unwrap();
        for sub in [
            home.root().to_path_buf(),
            home.run_dir(),
            home.logs_dir(),
            home.redis_dir(),
        ] {
            let mode = fs::metadata(&sub).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", sub.display());
        }
        assert_eq!(home.pid_file("worker-3"), root.join("run/worker-3.pid"));
    }

    #[test]
    fn refuses_a_home_whose_sockets_would_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x".repeat(120));
        let err = Home::resolve(Some(&deep)).unwrap().create().unwrap_err();
        assert!(err.to_string().contains("too deep"), "{err}");
    }
}
