//! `image_path`: an image read from the shared folder every worker mounts
//! (`--image-root`: NFS, a mounted bucket).
//!
//! The path is relative to the root and checked by its form first (no `..`,
//! nothing absolute); then every symbolic link is followed and the file must
//! still be under the root. The size is checked before reading, and the read
//! stops at the limit whatever the file grew to meanwhile.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use verdict_shared::image_reference::{ResolveError, resolve_under};

use super::FetchFailure;

/// Reads `image_path`s under one root.
#[derive(Debug)]
pub struct PathSource {
    /// Canonical.
    root: PathBuf,
    max_bytes: usize,
}

impl PathSource {
    pub fn new(root: &Path, max_bytes: usize) -> anyhow::Result<PathSource> {
        let root = root
            .canonicalize()
            .with_context(|| format!("--image-root {}", root.display()))?;
        anyhow::ensure!(
            root.is_dir(),
            "--image-root {} is not a folder",
            root.display()
        );
        Ok(PathSource { root, max_bytes })
    }

    /// The bytes of the file `raw` names.
    pub async fn read(&self, raw: &str) -> Result<Vec<u8>, FetchFailure> {
        let (root, raw_owned, max) = (self.root.clone(), raw.to_owned(), self.max_bytes);
        // Shared folders can be slow: off the runtime's threads.
        tokio::task::spawn_blocking(move || read_under(&root, &raw_owned, max))
            .await
            .map_err(|err| {
                FetchFailure::transient("image_read_failed", format!("image_path {raw:?}: {err}"))
            })?
    }
}

fn read_under(root: &Path, raw: &str, max_bytes: usize) -> Result<Vec<u8>, FetchFailure> {
    let file = resolve_under(root, raw).map_err(|err| match err {
        ResolveError::Invalid(err) => {
            FetchFailure::permanent("invalid_image_path", err.to_string())
        }
        ResolveError::NotFound(_) => FetchFailure::permanent("image_not_found", err.to_string()),
        ResolveError::OutsideRoot(_) => {
            FetchFailure::permanent("image_path_outside_root", err.to_string())
        }
        ResolveError::Io { .. } => FetchFailure::transient("image_read_failed", err.to_string()),
    })?;
    let io_failed = |err: std::io::Error| {
        FetchFailure::transient("image_read_failed", format!("image_path {raw:?}: {err}"))
    };
    let opened = std::fs::File::open(&file).map_err(io_failed)?;
    let meta = opened.metadata().map_err(io_failed)?;
    if !meta.is_file() {
        return Err(FetchFailure::permanent(
            "image_not_found",
            format!("image_path {raw:?} is not a regular file"),
        ));
    }
    let too_large = || {
        FetchFailure::permanent(
            "image_too_large",
            format!("image_path {raw:?} is larger than the limit of {max_bytes} bytes"),
        )
    };
    if meta.len() > max_bytes as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    opened
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_failed)?;
    if bytes.len() > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_under_the_root_are_read_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        std::fs::create_dir_all(root.join("shop")).unwrap();
        std::fs::write(root.join("shop/cup.png"), b"0123456789").unwrap();
        std::fs::write(root.join("big.png"), vec![7u8; 11]).unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("leak.png")).unwrap();
        let source = PathSource::new(&root, 10).unwrap();

        assert_eq!(source.read("shop/cup.png").await.unwrap(), b"0123456789");
        let code = |r: Result<Vec<u8>, FetchFailure>| r.unwrap_err().error.code;
        assert_eq!(code(source.read("big.png").await), "image_too_large");
        assert_eq!(
            code(source.read("leak.png").await),
            "image_path_outside_root"
        );
        assert_eq!(code(source.read("../secret").await), "invalid_image_path");
        assert_eq!(code(source.read("/etc/passwd").await), "invalid_image_path");
        assert_eq!(code(source.read("shop/none.png").await), "image_not_found");
        assert_eq!(code(source.read("shop").await), "image_not_found");
        assert!(PathSource::new(&dir.path().join("none"), 10).is_err());
    }
}
