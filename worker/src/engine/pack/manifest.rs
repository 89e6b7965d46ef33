//! The common part of `manifest.json`, as described in `docs/model-pack.md`.
//!
//! Kind-specific sections (`image`, `text`, `labels`, `rule` for a
//! label-grounded pack) stay as JSON here and are parsed by the engine of that
//! kind, so this file never needs to know about kinds.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The value of `format` in every pack.
pub const FORMAT: &str = "verdict-model-pack";

/// The `format_version` this worker reads.
pub const FORMAT_VERSION: u32 = 1;

/// A parsed manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub kind: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub provenance: Vec<Value>,
    /// Every other top-level field: the kind's own sections.
    #[serde(flatten)]
    pub sections: Map<String, Value>,
}

/// One file of the pack.
#[derive(Debug, Clone, Deserialize)]
pub struct FileEntry {
    /// What the file is for (`image_encoder`, `tokenizer`, ...).
    pub role: String,
    /// Its name inside the pack directory.
    pub path: String,
    /// Hex sha256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}
