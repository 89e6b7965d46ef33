//! Which example photos the api offers on the web page
//! (`verdict-api --examples DIR`).
//!
//! In order: `--examples DIR`; else `.cache/photos` where `fleet up` looks
//! for what the repository provides (`crate::project_dirs`), when it holds
//! the manifest `examples.json` that `scripts/fetch-test-photos` writes.
//! None there is no error: the page then shows no examples (a fleet serving
//! production traffic needs none). `--no-examples` turns them off. The api
//! checks the manifest and the photos when it starts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The manifest the api reads in the directory.
const MANIFEST: &str = "examples.json";

/// The examples directory to pass to the api, if any.
pub fn resolve(flag: Option<&Path>, off: bool) -> anyhow::Result<Option<PathBuf>> {
    if off {
        return Ok(None);
    }
    let dir = match flag {
        Some(dir) => {
            if !dir.join(MANIFEST).is_file() {
                bail!(
                    "--examples {}: no {MANIFEST} there (scripts/fetch-test-photos writes one in .cache/photos)",
                    dir.display()
                );
            }
            dir.to_path_buf()
        }
        None => {
            let found = crate::project_dirs::candidates(".cache/photos")
                .into_iter()
                .find(|dir| dir.join(MANIFEST).is_file());
            match found {
                Some(dir) => dir,
                None => return Ok(None),
            }
        }
    };
    // The api runs with the fleet's home as its working directory.
    dir.canonicalize()
        .map(Some)
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_given_must_hold_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(Some(dir.path()), false).unwrap_err().to_string();
        assert!(err.contains("no examples.json"), "{err}");
        std::fs::write(dir.path().join(MANIFEST), r#"{"examples": []}"#).unwrap();
        let resolved = resolve(Some(dir.path()), false).unwrap().unwrap();
        assert!(resolved.is_absolute());
        assert_eq!(resolved, dir.path().canonicalize().unwrap());
        assert_eq!(resolve(Some(dir.path()), true).unwrap(), None);
    }
}
