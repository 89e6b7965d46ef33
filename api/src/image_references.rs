//! Which images a job may name instead of carrying: `image_url`s on
//! `--image-hosts`, `image_path`s when the server has an `--image-root`.
//!
//! The api never fetches or reads a referenced image (it may not even mount
//! the shared folder); it refuses at once what no worker would be allowed to
//! fetch, so that a client learns about a typo from a 400, not from a failed
//! job. The workers check again where they fetch (`worker/src/image_fetch`),
//! including what a host name resolves to.

use std::path::PathBuf;

use verdict_shared::host_allow_list::{HostAllowList, Refusal};
use verdict_shared::image_reference::ImageReference;

use crate::error::ApiError;

/// The schemes a host listed without one may be reached with: https only.
pub const DEFAULT_SCHEMES: &[&str] = &["https"];

/// What this server lets jobs name.
#[derive(Debug, Clone, Default)]
pub struct ImageReferences {
    /// `--image-hosts`.
    pub hosts: HostAllowList,
    /// `--image-root`: only whether there is one matters here.
    pub root: Option<PathBuf>,
}

impl ImageReferences {
    /// Refuses a reference no worker of this fleet may follow.
    pub fn check(&self, reference: &ImageReference) -> Result<(), ApiError> {
        match reference {
            ImageReference::Url(url) => {
                if self.hosts.is_empty() {
                    return Err(ApiError::bad_request(
                        "image_url_not_allowed",
                        "images by URL are not enabled on this server (no --image-hosts)",
                    ));
                }
                self.hosts
                    .check(url, "image_url", DEFAULT_SCHEMES)
                    .map(|_| ())
                    .map_err(|refusal| match refusal {
                        Refusal::Invalid(message) => {
                            ApiError::bad_request("invalid_image_url", message)
                        }
                        Refusal::NotAllowed(message) => {
                            ApiError::bad_request("image_url_not_allowed", message)
                        }
                    })
            }
            ImageReference::Path(_) if self.root.is_none() => Err(ApiError::bad_request(
                "image_paths_disabled",
                "images by path are not enabled on this server (no --image-root)",
            )),
            ImageReference::Path(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_the_servers_configuration() {
        let none = ImageReferences::default();
        let url = ImageReference::Url("https://img.example.com/a.png".into());
        let path = ImageReference::Path("a.png".into());
        assert_eq!(none.check(&url).unwrap_err().code, "image_url_not_allowed");
        assert_eq!(none.check(&path).unwrap_err().code, "image_paths_disabled");

        let some = ImageReferences {
            hosts: HostAllowList::parse(&["img.example.com".into()], "h").unwrap(),
            root: Some("/srv/images".into()),
        };
        assert!(some.check(&url).is_ok());
        assert!(some.check(&path).is_ok());
        let code = |u: &str| some.check(&ImageReference::Url(u.into())).unwrap_err().code;
        assert_eq!(
            code("http://img.example.com/a.png"),
            "image_url_not_allowed"
        );
        assert_eq!(code("https://10.0.0.1/a.png"), "image_url_not_allowed");
        assert_eq!(
            code("https://169.254.169.254/latest/meta-data"),
            "image_url_not_allowed"
        );
        assert_eq!(code("file:///etc/passwd"), "invalid_image_url");
    }
}
