//! Why a model pack could not be loaded.
//!
//! Every variant names the file (or the manifest field) at fault, so that an
//! operator who sees the message knows what to rebuild or fix.

use std::path::PathBuf;

/// A model pack that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{dir} is not a model pack: it has no manifest.json (build one with scripts/build-default-model)"
    )]
    NotAPack { dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error(
        "{path}: unsupported pack format {format:?} version {version} (this worker reads verdict-model-pack version 1)"
    )]
    UnsupportedFormat {
        path: PathBuf,
        format: String,
        version: u32,
    },
    #[error("{path}: model kind {kind:?} is not implemented by this worker (known kinds: {known})")]
    UnknownKind {
        path: PathBuf,
        kind: String,
        known: String,
    },
    #[error("the manifest names no file with role {role:?}")]
    MissingRole { role: String },
    #[error("{path}: missing from the pack")]
    MissingFile { path: PathBuf },
    #[error(
        "{path}: {actual} bytes, but the manifest says {expected}: the file is truncated or replaced"
    )]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{path}: sha256 is {actual}, but the manifest says {expected}: the file is corrupt or replaced"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl LoadError {
    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> LoadError {
        LoadError::Invalid {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
