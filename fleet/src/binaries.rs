//! Finding the programs the fleet runs: `verdict-api`, `verdict-worker` and
//! `redis-server`.
//!
//! Next to the `fleet` executable first, so that a build directory
//! (`target/release/`) or an install prefix (`/usr/local/bin/`) runs its own
//! matching binaries whatever PATH says; then on PATH.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

/// Finds `program`, or says where it looked.
pub fn find(program: &str) -> anyhow::Result<PathBuf> {
    let mut looked = Vec::new();
    if let Some(dir) = env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
        looked.push(dir.display().to_string());
    }
    if let Some(path) = env::var_os("PATH") {
        for dir in env::split_paths(&path) {
            let candidate = dir.join(program);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
        looked.push("PATH".to_string());
    }
    let hint = match program {
        "redis-server" => " (install it: apt-get install redis-server, or run scripts/setup.sh)",
        _ => " (build it: cargo build --release)",
    };
    bail!("cannot find {program} in {}{hint}", looked.join(" or "))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_names_the_missing() {
        assert!(find("sh").unwrap().is_absolute());
        let err = find("verdict-no-such-program").unwrap_err().to_string();
        assert!(err.contains("cannot find verdict-no-such-program"), "{err}");
    }
}
