//! A model pack on disk: a directory with a `manifest.json` and the files it names.
//!
//! [`Pack::open`] checks the whole pack before anything is loaded: the manifest
//! parses, its format is one this worker reads, and every file exists with the
//! size and sha256 the manifest records. [`Pack::load_verified`] checks the
//! same, the hashes on a second thread while the model loads, and returns
//! nothing of the load for a pack that fails. A worker that starts therefore
//! never discovers a truncated graph halfway through a job.

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
        let pack = Pack::open_unhashed(dir)?;
        pack.verify_hashes()?;
        Ok(pack)
    }

    /// Opens the pack in `dir` and runs `load` on it while a second thread
    /// checks every file's sha256 (hashing OFA-large's 1.9 GB costs about as
    /// long as parsing its graph). A pack that fails the check is refused with
    /// that error, whatever `load` made of it: the result of `load` is only
    /// returned for a verified pack, as with [`Pack::open`].
    pub fn load_verified<T: Send>(
        dir: &Path,
        load: impl FnOnce(&Pack) -> Result<T, LoadError>,
    ) -> Result<T, LoadError> {
        let pack = Pack::open_unhashed(dir)?;
        std::thread::scope(|scope| {
            let hashing = std::thread::Builder::new()
                .name("pack-sha256".into())
                .spawn_scoped(scope, || pack.verify_hashes());
            // A damaged file may make the parser panic before its hash is
            // known: the checksum error is the one to report then.
            let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(&pack)));
            let verified = match hashing {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(LoadError::invalid(&pack.dir, "the sha256 check panicked"))
                }),
                // No thread to spare: check after loading.
                Err(_) => pack.verify_hashes(),
            };
            verified?;
            loaded.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The manifest parsed and every file's presence and size checked (not
    /// its sha256).
    fn open_unhashed(dir: &Path) -> Result<Pack, LoadError> {
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
            pack.check_file(entry)?;
        }
        Ok(pack)
    }

    fn verify_hashes(&self) -> Result<(), LoadError> {
        for entry in &self.manifest.files {
            self.verify_hash(entry)?;
        }
        Ok(())
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

    /// A plain file name, present, of the recorded size.
    fn check_file(&self, entry: &FileEntry) -> Result<(), LoadError> {
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
        Ok(())
    }

    fn verify_hash(&self, entry: &FileEntry) -> Result<(), LoadError> {
        let path = self.dir.join(&entry.path);
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
