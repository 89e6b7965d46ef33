//! `image_url`: an image fetched over HTTP(S) from a host on the allow-list.
//!
//! The same rules as callbacks: the host (and port, and scheme: https unless
//! the entry says `http://`) must be on `--image-hosts`; a host listed by name
//! is reached only at public addresses (`verdict_shared::public_resolver`),
//! a host listed by address at that address; no redirect is followed (it
//! could lead off the list); no proxy from the environment; a time limit on
//! the whole request; the body is read up to `--max-image-bytes` and no
//! further, whatever `Content-Length` says.

use std::sync::Arc;

use verdict_shared::host_allow_list::{HostAllowList, Refusal};
use verdict_shared::public_resolver::{PublicResolver, forbidden_address};

use super::{FetchConfig, FetchFailure};

/// The schemes a host listed without one may be reached with.
const DEFAULT_SCHEMES: &[&str] = &["https"];

/// Fetches `image_url`s.
#[derive(Debug)]
pub struct UrlSource {
    hosts: HostAllowList,
    http: reqwest::Client,
    max_bytes: usize,
}

impl UrlSource {
    pub fn new(config: &FetchConfig) -> anyhow::Result<UrlSource> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PublicResolver))
            .no_proxy()
            .user_agent(concat!("verdict-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(UrlSource {
            hosts: config.hosts.clone(),
            http,
            max_bytes: config.max_bytes,
        })
    }

    /// The bytes at `raw`.
    pub async fn fetch(&self, raw: &str) -> Result<Vec<u8>, FetchFailure> {
        if self.hosts.is_empty() {
            return Err(FetchFailure::permanent(
                "image_url_not_allowed",
                "this worker has no --image-hosts, so it fetches no image_url",
            ));
        }
        let url = self
            .hosts
            .check(raw, "image_url", DEFAULT_SCHEMES)
            .map_err(|refusal| match refusal {
                Refusal::Invalid(message) => FetchFailure::permanent("invalid_image_url", message),
                Refusal::NotAllowed(message) => {
                    FetchFailure::permanent("image_url_not_allowed", message)
                }
            })?;
        let shown = shown(&url);
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| request_failed(&shown, &err))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchFailure::permanent(
                "image_fetch_failed",
                format!(
                    "{shown} answered {status}: redirects are not followed (name the image's final URL)"
                ),
            ));
        }
        if !status.is_success() {
            let message = format!("{shown} answered {status}");
            // Another attempt may find the server better; a 4xx will not.
            return Err(
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    FetchFailure::transient("image_fetch_failed", message)
                } else {
                    FetchFailure::permanent("image_fetch_failed", message)
                },
            );
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(too_large(&shown, self.max_bytes));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| request_failed(&shown, &err))?
        {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(too_large(&shown, self.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// The URL as logs and errors show it: no query (it may hold a signature).
fn shown(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn too_large(shown: &str, max: usize) -> FetchFailure {
    FetchFailure::permanent(
        "image_too_large",
        format!("the image at {shown} is larger than the limit of {max} bytes"),
    )
}

fn request_failed(shown: &str, err: &reqwest::Error) -> FetchFailure {
    if let Some(forbidden) = forbidden_address(err) {
        return FetchFailure::permanent("image_address_forbidden", format!("{shown}: {forbidden}"));
    }
    let what = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "failed".to_owned()
    };
    // The innermost cause says the most ("connection refused").
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    FetchFailure::transient(
        "image_fetch_failed",
        format!("fetching {shown} {what}: {cause}"),
    )
}
