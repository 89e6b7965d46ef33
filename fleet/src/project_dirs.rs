//! Where `fleet up` looks for what the repository provides when no flag
//! names it (the model pack, the example photos): the current directory
//! first (the README runs `fleet up` from the repository root), then the
//! repository that built this binary (`<repo>/target/<profile>/fleet` →
//! `<repo>`).

use std::path::{Path, PathBuf};

/// `relative` under each place to look, in order, without repeats.
pub fn candidates(relative: &str) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push(cwd.join(relative));
    }
    if let Some(repo) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent()?.parent().map(Path::to_path_buf))
    {
        let candidate = repo.join(relative);
        if !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    }
    candidates
}
