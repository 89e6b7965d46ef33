//! An image named by a job instead of carried by it: a URL the worker fetches,
//! or a path under the shared folder every worker mounts (`--image-root`).
//!
//! Inline images travel through Redis inside the job; at 500 KB a photo that
//! is what caps a fleet's throughput at what one Redis can move. A reference
//! is a few dozen bytes. The api checks a reference's form and the URL's host
//! against its allow-list; the worker checks both again where it uses them
//! (the address the host resolves to, the file the path names), because only
//! the worker touches the network or the disk.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The longest URL or path accepted.
pub const MAX_REFERENCE_CHARS: usize = 2048;

/// Where a job's image is, when the job does not carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ImageReference {
    /// An `https://` (or allow-listed `http://`) URL, fetched by the worker.
    Url(String),
    /// A relative path under the workers' `--image-root`.
    Path(String),
}

impl ImageReference {
    /// The URL or the path, as submitted.
    pub fn as_str(&self) -> &str {
        match self {
            ImageReference::Url(url) | ImageReference::Path(url) => url,
        }
    }

    /// `url` or `path`.
    pub fn kind(&self) -> &'static str {
        match self {
            ImageReference::Url(_) => "url",
            ImageReference::Path(_) => "path",
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.as_str())
    }
}

/// Why a string is not an image path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image_path {path:?} {why}")]
pub struct InvalidImagePath {
    pub path: String,
    pub why: &'static str,
}

/// Checks an `image_path` by its form alone: relative, `/`-separated normal
/// components (no `..`, no `.`, no empty component, no NUL or backslash), at
/// most [`MAX_REFERENCE_CHARS`] characters. Returns the path to join to the
/// root. Whether the file exists, and whether symbolic links lead out of
/// the root, only the worker can tell ([`resolve_under`]).
pub fn check_image_path(raw: &str) -> Result<PathBuf, InvalidImagePath> {
    let invalid = |why| InvalidImagePath {
        path: raw.chars().take(128).collect(),
        why,
    };
    if raw.is_empty() {
        return Err(invalid("is empty"));
    }
    if raw.chars().count() > MAX_REFERENCE_CHARS {
        return Err(invalid("is longer than 2048 characters"));
    }
    if raw.contains('\0') || raw.contains('\\') || raw.chars().any(char::is_control) {
        return Err(invalid("holds a NUL, a backslash or a control character"));
    }
    if raw.starts_with('/') {
        return Err(invalid(
            "is absolute: name the file relative to the image root",
        ));
    }
    if raw
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid(
            "has an empty, '.' or '..' component: name the file by its plain path under the image root",
        ));
    }
    let path = PathBuf::from(raw);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(invalid("is not a plain relative path"));
    }
    Ok(path)
}

/// Why a path under the root cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Invalid(#[from] InvalidImagePath),
    #[error("image_path {0:?}: no such file under the image root")]
    NotFound(String),
    #[error("image_path {0:?} leads out of the image root (through a symbolic link)")]
    OutsideRoot(String),
    #[error("image_path {path:?}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// The file `raw` names under `root` (already canonical), with every
/// symbolic link followed: refused when it ends outside `root`.
pub fn resolve_under(root: &Path, raw: &str) -> Result<PathBuf, ResolveError> {
    let relative = check_image_path(raw)?;
    let joined = root.join(relative);
    let real = match joined.canonicalize() {
        Ok(real) => real,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResolveError::NotFound(raw.to_owned()));
        }
        Err(err) => {
            return Err(ResolveError::Io {
                path: raw.to_owned(),
                err,
            });
        }
    };
    if !real.starts_with(root) {
        return Err(ResolveError::OutsideRoot(raw.to_owned()));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(
            check_image_path("shop/2026/cup.jpg").unwrap(),
            PathBuf::from("shop/2026/cup.jpg")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../secret.png",
            "a/../../b.png",
            "a/./b.png",
            "a//b.png",
            "a/",
            "a\\..\\b.png",
            "a\0b",
            "a\nb",
        ] {
            assert!(check_image_path(bad).is_err(), "{bad:?} passed");
        }
        assert!(check_image_path(&"a".repeat(MAX_REFERENCE_CHARS + 1)).is_err());
    }

    #[test]
    fn links_out_of_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("in")).unwrap();
        std::fs::write(root.join("in/cup.png"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.png"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.png"), root.join("in/leak.png"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("in/cup.png"), root.join("alias.png")).unwrap();
        let root = root.canonicalize().unwrap();

        assert_eq!(
            resolve_under(&root, "in/cup.png").unwrap(),
            root.join("in/cup.png")
        );
        assert_eq!(
            resolve_under(&root, "alias.png").unwrap(),
            root.join("in/cup.png")
        );
        assert!(matches!(
            resolve_under(&root, "in/leak.png"),
            Err(ResolveError::OutsideRoot(_))
        ));
        assert!(matches!(
            resolve_under(&root, "in/none.png"),
            Err(ResolveError::NotFound(_))
        ));
        assert!(matches!(
            resolve_under(&root, "../secret.png"),
            Err(ResolveError::Invalid(_))
        ));
    }

    #[test]
    fn references_serialise_as_one_tagged_field() {
        let url = ImageReference::Url("https://img.example.com/a.png".into());
        assert_eq!(
            serde_json::to_value(&url).unwrap(),
            serde_json::json!({"url": "https://img.example.com/a.png"})
        );
        let path: ImageReference = serde_json::from_str(r#"{"path": "a/b.png"}"#).unwrap();
        assert_eq!(path, ImageReference::Path("a/b.png".into()));
    }
}
