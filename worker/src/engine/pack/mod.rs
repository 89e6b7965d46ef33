//! A model pack on disk: a directory with a `manifest.json` and the files it names.
//!
//! [`Pack::open`] checks the whole pack before anything is loaded: the manifest
//! parses, its format is one this worker reads, and every file exists with the
//! size and sha256 the manifest records. A worker that starts therefore never
//! discovers a truncated graph halfway through a job.

mod manifest;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use manifest::{FORMAT, FORMAT_VERSION, FileEntry, Manifest};

use super::LoadError;

/// An opened and verified model pack.
#[derive(Debug, Clone)]
pub struct Pack {
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
}

impl Pack {
    /// Opens the pack in `dir` and verifies every file it names.
    pub fn open(dir: &Path) -> Result<Pack, LoadError> {
        let manifest_path = dir.join("manifest.json");
        if !manifest_path.is_file() {
            return Err(LoadError::NotAPack {
                dir: dir.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| LoadError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|err| LoadError::Manifest {
                path: manifest_path.clone(),
                message: err.to_string(),
            })?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(LoadError::UnsupportedFormat {
                path: manifest_path,
                format: manifest.format,
                version: manifest.format_version,
            });
        }
        let pack = Pack {
            dir: dir.to_path_buf(),
            manifest_path,
            manifest,
        };
        for entry in &pack.manifest.files {
            pack.verify(entry)?;
        }
        Ok(pack)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// `name version`, e.g. `verdict-default 1`.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.manifest.name, self.manifest.version)
    }

    /// The path of the file with `role`.
    pub fn file(&self, role: &str) -> Result<PathBuf, LoadError> {
        self.manifest
            .files
            .iter()
            .find(|f| f.role == role)
            .map(|f| self.dir.join(&f.path))
            .ok_or_else(|| LoadError::MissingRole {
                role: role.to_string(),
            })
    }

    /// The path of a pack file named by a section (e.g. `text.tokenizer`), which
    /// must be one of the verified files.
    pub fn named_file(&self, name: &str) -> Result<PathBuf, LoadError> {
        if self.manifest.files.iter().any(|f| f.path == name) {
            Ok(self.dir.join(name))
        } else {
            Err(LoadError::Manifest {
                path: self.manifest_path.clone(),
                message: format!("{name:?} is not listed in files"),
            })
        }
    }

    /// Parses the kind-specific section `name`.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<T, LoadError> {
        let value = self
            .manifest
            .sections
            .get(name)
            .ok_or_else(|| LoadError::Manifest {
                path: self.manifest_path.clone(),
                message: format!("missing section {name:?}"),
            })?;
        serde_json::from_value(value.clone()).map_err(|err| LoadError::Manifest {
            path: self.manifest_path.clone(),
            message: format!("section {name:?}: {err}"),
        })
    }

    fn verify(&self, entry: &FileEntry) -> Result<(), LoadError> {
        let plain = !entry.path.is_empty()
            && !entry.path.contains('/')
            && !entry.path.contains('\\')
            && entry.path != "."
            && entry.path != "..";
        if !plain {
            return Err(LoadError::Manifest {
                path: self.manifest_path.clone(),
                message: format!("file path {:?} must be a plain file name", entry.path),
            });
        }
        let path = self.dir.join(&entry.path);
        let meta =
            std::fs::metadata(&path).map_err(|_| LoadError::MissingFile { path: path.clone() })?;
        if !meta.is_file() {
            return Err(LoadError::MissingFile { path });
        }
        if meta.len() != entry.bytes {
            return Err(LoadError::SizeMismatch {
                path,
                expected: entry.bytes,
                actual: meta.len(),
            });
        }
        let actual = sha256_file(&path)?;
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(LoadError::ChecksumMismatch {
                path,
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

fn sha256_file(path: &Path) -> Result<String, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
