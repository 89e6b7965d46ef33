//! PID files that answer "is it running?" with a lock, not with `kill -0`.
//!
//! A PID file alone lies twice: after a crash it names a dead process, and later
//! that PID may be reused by an unrelated one, which `kill -0` happily reports as
//! alive. So every verdict process holds an exclusive `flock` on its PID file for
//! its whole life. The kernel drops the lock when the last descriptor of the file
//! closes, which happens exactly when the process dies, whatever kills it. A
//! file whose lock is free is stale, whatever PID it names.
//!
//! The content (the PID and a newline) is written atomically: into a temporary
//! file in the same directory, locked, then renamed over the PID file. A reader
//! therefore sees either the old file or the complete new one, never a half
//! written PID. The lock lives on the inode, so it moves with the rename.
//!
//! Two ways to take a PID file:
//! - [`PidFile::acquire`], for the process itself (the watchdog): it first locks
//!   the inode currently at the path, so two contenders cannot both win, and
//!   only then renames its own file in.
//! - [`ChildPidFile`], for a child that the watchdog spawns (redis-server knows
//!   nothing of our locks): the child locks and renames its file between `fork`
//!   and `exec`, on a descriptor without close-on-exec, so the lock lives as
//!   long as the program it becomes. The watchdog is the only one that spawns
//!   into its `run/` directory, which is what makes the shorter protocol safe.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// How long [`PidFile::acquire`] retries a lock that is busy. Another `fleet`
/// command may hold a shared lock for a few microseconds while it probes the
/// file; a process that really holds the file holds it much longer than this.
const CONTENTION_GRACE: Duration = Duration::from_millis(200);

/// What a PID file says about its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No file.
    Absent,
    /// The file is locked: its process is alive. `pid` is what the file says
    /// (`None` if it holds no valid PID, which a well-behaved holder never leaves).
    Running { pid: Option<u32> },
    /// The file exists but nobody holds its lock: its process is gone, whatever
    /// `pid` (the PID it names) is now used for.
    Stale { pid: Option<u32> },
}

/// Why [`PidFile::acquire`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("already running (PID {})", pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()))]
    Running { pid: Option<u32> },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A PID file held by the current process; the lock is released (and the file
/// removed) on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: Flock<File>,
}

impl PidFile {
    /// Writes this process's PID to `path` and locks it for as long as the
    /// returned value lives. Fails with [`AcquireError::Running`] if another
    /// live process holds the file. A stale file is taken over.
    pub fn acquire(path: &Path) -> Result<PidFile, AcquireError> {
        let io_err = |source| AcquireError::Io {
            path: path.to_path_buf(),
            source,
        };
        let deadline = Instant::now() + CONTENTION_GRACE;
        loop {
            // Lock the inode that is at the path now (creating it if needed):
            // whoever holds it owns the name.
            let current = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(io_err)?;
            let current = match Flock::lock(current, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((mut file, Errno::EWOULDBLOCK)) => {
                    if !same_inode(&file, path).map_err(io_err)? {
                        continue; // replaced under us: look again
                    }
                    if Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    return Err(AcquireError::Running {
                        pid: read_pid(&mut file),
                    });
                }
                Err((_, errno)) => return Err(io_err(errno.into())),
            };
            if !same_inode(&current, path).map_err(io_err)? {
                continue; // someone renamed a new file in after our open
            }
            // We own the name. Put our content in atomically; the new inode is
            // locked before it becomes visible, and the old lock is released
            // only after the rename.
            let tmp = tmp_path(path, std::process::id());
            let mut fresh = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err)?;
            fresh
                .write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io_err)?;
            let fresh = Flock::lock(fresh, FlockArg::LockExclusiveNonblock)
                .map_err(|(_, errno)| io_err(errno.into()))?;
            if let Err(err) = fs::rename(&tmp, path) {
                let _ = fs::remove_file(&tmp);
                return Err(io_err(err));
            }
            drop(current);
            return Ok(PidFile {
                path: path.to_path_buf(),
                file: fresh,
            });
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Remove the name first, while we still hold the lock, and only if it is
        // still ours: nobody can take over between the check and the unlink
        // because taking over needs our lock.
        if same_inode(&self.file, &self.path).unwrap_or(false) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Tells whether the process behind `path` is alive, by trying its lock.
///
/// The probe takes a shared lock for a few microseconds; see
/// [`CONTENTION_GRACE`] for why that cannot make an owner fail.
pub fn probe(path: &Path) -> io::Result<Probe> {
    for _ in 0..10 {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Probe::Absent),
            Err(err) => return Err(err),
        };
        let pid = read_pid(&mut file);
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(locked) => {
                if !same_inode(&locked, path)? {
                    continue; // a new holder renamed its file in: look again
                }
                return Ok(Probe::Stale { pid });
            }
            Err((_, Errno::EWOULDBLOCK)) => return Ok(Probe::Running { pid }),
            Err((_, errno)) => return Err(errno.into()),
        }
    }
    // The file keeps being replaced: somebody is busy starting, so alive.
    Ok(Probe::Running { pid: None })
}

/// Removes `path` if it is stale, and says what it found. A locked file is left
/// alone (and reported as [`Probe::Running`]).
pub fn remove_if_stale(path: &Path) -> io::Result<Probe> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Probe::Absent),
        Err(err) => return Err(err),
    };
    let pid = read_pid(&mut file);
    // An exclusive lock, held while we unlink: a process that wants to take the
    // name over must wait for it, so we never remove a live file.
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => {
            if same_inode(&locked, path)? {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
                Ok(Probe::Stale { pid })
            } else {
                // Replaced by a live holder between our open and lock.
                drop(locked);
                probe(path)
            }
        }
        Err((_, Errno::EWOULDBLOCK)) => Ok(Probe::Running { pid }),
        Err((_, errno)) => Err(errno.into()),
    }
}

/// The processes that have `path` open, found through `/proc/*/fd` (Linux).
///
/// Used to find the real holder of a locked PID file when the PID it names
/// cannot be trusted. Processes of other users are invisible to a non-root
/// caller, which is fine: a fleet's processes all run as one user.
pub fn holders(path: &Path) -> io::Result<Vec<u32>> {
    let target = fs::metadata(path)?;
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            // `metadata` follows the magic link to the open file itself.
            if let Ok(meta) = fs::metadata(fd.path())
                && meta.dev() == target.dev()
                && meta.ino() == target.ino()
            {
                found.push(pid);
                break;
            }
        }
    }
    Ok(found)
}

/// A PID file that a child takes for itself between `fork` and `exec`.
///
/// Build it in the parent (it allocates), then call [`ChildPidFile::lock_in_child`]
/// from `std::os::unix::process::CommandExt::pre_exec`, where only
/// async-signal-safe calls are allowed: it uses raw system calls and no
/// allocation.
#[derive(Debug, Clone)]
pub struct ChildPidFile {
    path: CString,
    tmp: CString,
}

impl ChildPidFile {
    pub fn new(path: &Path) -> io::Result<ChildPidFile> {
        let tmp = tmp_path(path, 0);
        let to_c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
        };
        Ok(ChildPidFile {
            path: to_c(path)?,
            tmp: to_c(&tmp)?,
        })
    }

    /// Creates the temporary file, locks it, writes the calling process's PID
    /// and renames it over the PID file. The descriptor stays open without
    /// close-on-exec, so the lock lives as long as the process.
    ///
    /// # Safety
    /// Meant for `pre_exec`: it only makes async-signal-safe system calls. It
    /// leaks one descriptor into the process on purpose.
    pub unsafe fn lock_in_child(&self) -> io::Result<()> {
        use nix::libc;
        // SAFETY: plain system calls on NUL-terminated paths that outlive them.
        unsafe {
            let fd = libc::open(
                self.tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o600 as libc::c_uint,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = [0u8; 24];
            let len = format_pid(libc::getpid() as u32, &mut buf);
            let digits = &buf[buf.len() - len..];
            if libc::write(fd, digits.as_ptr().cast(), digits.len()) != digits.len() as isize {
                return Err(io::Error::last_os_error());
            }
            if libc::rename(self.tmp.as_ptr(), self.path.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Writes `pid` and a newline at the end of `buf` without allocating; returns
/// how many bytes it used.
fn format_pid(mut pid: u32, buf: &mut [u8; 24]) -> usize {
    let mut at = buf.len() - 1;
    buf[at] = b'\n';
    loop {
        at -= 1;
        buf[at] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    buf.len() - at
}

/// Reads the PID a file names, if it names one.
pub fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 0)
}

fn tmp_path(path: &Path, tag: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{tag}"));
    path.with_file_name(name)
}

fn same_inode(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    #[test]
    fn format_pid_writes_digits_and_newline() {
        let mut buf = [0u8; 24];
        let len = format_pid(40213, &mut buf);
        assert_eq!(&buf[24 - len..], b"40213\n");
        let len = format_pid(7, &mut buf);
        assert_eq!(&buf[24 - len..], b"7\n");
    }

    #[test]
    fn acquire_locks_and_probe_sees_it_until_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watchdog.pid");
        assert_eq!(probe(&path).unwrap(), Probe::Absent);

        let held = PidFile::acquire(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let me = Some(std::process::id());
        assert_eq!(probe(&path).unwrap(), Probe::Running { pid: me });
        // A second acquisition (another descriptor, as another process would
        // have) is refused with the holder's PID.
        match PidFile::acquire(&path) {
            Err(AcquireError::Running { pid }) => assert_eq!(pid, me),
            other => panic!("expected Running, got {other:?}"),
        }
        // The probe did not disturb the holder.
        assert_eq!(probe(&path).unwrap(), Probe::Running { pid: me });
        drop(held);
        assert_eq!(probe(&path).unwrap(), Probe::Absent);
    }

    #[test]
    fn a_stale_file_naming_a_live_unrelated_pid_is_stale_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.pid");
        // PID 1 is alive but holds no lock on this file: `kill -0` would say
        // "running"; the lock says the truth.
        fs::write(&path, "1\n").unwrap();
        assert_eq!(probe(&path).unwrap(), Probe::Stale { pid: Some(1) });
        let held = PidFile::acquire(&path).unwrap();
        assert_eq!(
            probe(&path).unwrap(),
            Probe::Running {
                pid: Some(std::process::id())
            }
        );
        drop(held);
    }

    #[test]
    fn remove_if_stale_spares_a_held_file_and_removes_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("redis.pid");
        fs::write(&path, "garbage").unwrap();
        assert_eq!(remove_if_stale(&path).unwrap(), Probe::Stale { pid: None });
        assert!(!path.exists());

        let held = PidFile::acquire(&path).unwrap();
        assert!(matches!(
            remove_if_stale(&path).unwrap(),
            Probe::Running { .. }
        ));
        assert!(path.exists());
        drop(held);
    }

    #[test]
    fn a_child_holds_its_own_lock_exactly_as_long_as_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker-0.pid");
        let pidfile = ChildPidFile::new(&path).unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30").stdin(Stdio::null());
        // SAFETY: lock_in_child only makes async-signal-safe calls.
        unsafe {
            cmd.pre_exec(move || pidfile.lock_in_child());
        }
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        assert_eq!(probe(&path).unwrap(), Probe::Running { pid: Some(pid) });
        assert_eq!(holders(&path).unwrap(), vec![pid]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(probe(&path).unwrap(), Probe::Stale { pid: Some(pid) });
    }
}
