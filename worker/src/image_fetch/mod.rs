//! Getting the image of a job that names it instead of carrying it: from a
//! URL on the allow-list ([`url`]) or from a file under the shared image root
//! ([`path`]).
//!
//! Both end the same way as an image sent with the job: bytes, at most
//! `--max-image-bytes` of them, handed to the judge (whose caches key on a
//! hash of the bytes, so a photo named twice is decoded once). A reference that
//! can never work (a host off the list, a private address, a 404, a missing
//! file, a path out of the root) fails the job with a stable code; one that
//! may work later (a timeout, a 5xx, a refused connection, a read error)
//! gives the job back for another attempt, like any transient failure.

pub mod path;
pub mod url;

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use verdict_shared::host_allow_list::HostAllowList;
use verdict_shared::image_reference::ImageReference;
use verdict_shared::job::JobError;
use verdict_shared::queue::image_fetched::FetchedImage;

/// How long one image URL may take by default (as a callback).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the worker may fetch images.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `--image-hosts`: the hosts `image_url`s may name.
    pub hosts: HostAllowList,
    /// `--image-root`: the folder `image_path`s are under.
    pub root: Option<PathBuf>,
    /// The largest image read.
    pub max_bytes: usize,
    /// How long one URL may take, connection to last byte.
    pub timeout: Duration,
}

impl Default for FetchConfig {
    /// No hosts, no root: every reference fails; images sent with jobs work.
    fn default() -> FetchConfig {
        FetchConfig {
            hosts: HostAllowList::default(),
            root: None,
            max_bytes: verdict_shared::limits::DEFAULT_MAX_IMAGE_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why a referenced image could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    pub error: JobError,
    /// Worth another attempt later.
    pub transient: bool,
}

impl FetchFailure {
    pub fn permanent(code: &str, message: impl Into<String>) -> FetchFailure {
        FetchFailure {
            error: JobError::new(code, message),
            transient: false,
        }
    }

    pub fn transient(code: &str, message: impl Into<String>) -> FetchFailure {
        FetchFailure {
            error: JobError::new(code, message),
            transient: true,
        }
    }
}

/// The worker's image sources.
#[derive(Debug)]
pub struct ImageSources {
    urls: url::UrlSource,
    paths: Option<path::PathSource>,
}

impl ImageSources {
    pub fn new(config: &FetchConfig) -> anyhow::Result<ImageSources> {
        Ok(ImageSources {
            urls: url::UrlSource::new(config)?,
            paths: config
                .root
                .as_deref()
                .map(|root| path::PathSource::new(root, config.max_bytes))
                .transpose()?,
        })
    }

    /// The bytes `reference` names.
    pub async fn fetch(&self, reference: &ImageReference) -> Result<Vec<u8>, FetchFailure> {
        let bytes = match reference {
            ImageReference::Url(url) => self.urls.fetch(url).await?,
            ImageReference::Path(path) => match &self.paths {
                Some(paths) => paths.read(path).await?,
                None => {
                    return Err(FetchFailure::permanent(
                        "image_paths_disabled",
                        "this worker has no --image-root, so it cannot read image_path",
                    ));
                }
            },
        };
        if bytes.is_empty() {
            return Err(FetchFailure::permanent(
                "image_empty",
                format!("the image at {reference} is empty (0 bytes)"),
            ));
        }
        Ok(bytes)
    }
}

/// What the job's record says about the fetched bytes.
pub fn describe(bytes: &[u8]) -> FetchedImage {
    FetchedImage {
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        format: verdict_shared::image_format::sniff(bytes)
            .unwrap_or("")
            .to_owned(),
    }
}
