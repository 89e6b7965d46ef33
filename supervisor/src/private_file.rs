//! Writing a file only its owner may read (mode 0600), whole or not at all:
//! the fleet's configuration (it may hold the api token) and its id.
//!
//! The contents go to a temporary file beside the destination, flushed to
//! disk, and are then moved into place by the caller's choice of step
//! ([`replace`]: rename, the last writer wins; [`create_once`]: a hard link,
//! the first writer wins). No reader ever sees half a file.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `contents` to `path`, replacing what was there.
pub fn replace(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = write_aside(path, contents)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `contents` to `path` unless a file is already there: `Ok(false)`
/// then, and that file is left as it was (two racing writers: one wins,
/// the other reads what it wrote).
pub fn create_once(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    let tmp = write_aside(path, contents)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// `contents` in a 0600 temporary file next to `path` (named after this
/// process, so two processes never share one), flushed to disk.
fn write_aside(path: &Path, contents: &[u8]) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("cannot write {}", tmp.display()));
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replace_writes_an_owner_only_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.json");
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["fleet.json"]);
    }

    #[test]
    fn create_once_keeps_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet-id");
        assert!(create_once(&path, b"first").unwrap());
        assert!(!create_once(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_named() {
        let err = replace(Path::new("/proc/no-such-dir/fleet.json"), b"x").unwrap_err();
        assert!(format!("{err:#}").contains("/proc/no-such-dir"), "{err:#}");
    }
}
