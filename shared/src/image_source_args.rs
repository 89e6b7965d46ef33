//! Where jobs may name their images instead of carrying them (issue 19):
//! `--image-hosts` and `--image-root`.
//!
//! The api, every worker and `fleet up` take the same two flags (flattened
//! into each command line from [`ImageSourceArgs`]), each also readable from
//! the environment. The api checks a job's reference against them; the
//! workers fetch by them; `fleet up` keeps them in the fleet's configuration
//! and hands them to both ([`ImageSourceArgs::args`]). Neither is a secret.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::host_allow_list::HostAllowList;

/// The flags naming where jobs' images may come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
pub struct ImageSourceArgs {
    /// Hosts whose images jobs may name by image_url, comma-separated:
    /// HOST, HOST:PORT ([::1]:8080 for IPv6), or http://HOST:PORT to allow
    /// plain HTTP (https otherwise). A host listed by name is fetched from
    /// only at public addresses; list a private address itself to allow it.
    /// The api and every worker need the same list. Empty: no image_url
    #[arg(
        long,
        env = "VERDICT_IMAGE_HOSTS",
        value_delimiter = ',',
        value_name = "HOST[:PORT],..."
    )]
    #[serde(default, rename = "hosts", skip_serializing_if = "Vec::is_empty")]
    pub image_hosts: Vec<String>,

    /// The shared folder (NFS, a mounted bucket) that jobs may name images
    /// in by image_path, relative to it. The api checks only a path's form
    /// (it need not mount the folder); each worker reads the files under
    /// its own --image-root, wherever its host mounts them. Absent: no
    /// image_path
    #[arg(long, env = "VERDICT_IMAGE_ROOT", value_name = "DIR")]
    #[serde(default, rename = "root", skip_serializing_if = "Option::is_none")]
    pub image_root: Option<PathBuf>,
}

impl ImageSourceArgs {
    /// Whether neither flag was given.
    pub fn is_empty(&self) -> bool {
        self.image_hosts.is_empty() && self.image_root.is_none()
    }

    /// `--image-hosts`, parsed; the error names the bad entry.
    pub fn allow_list(&self) -> Result<HostAllowList, String> {
        HostAllowList::parse(&self.image_hosts, "--image-hosts entry")
    }

    /// The flags that pass them on to a child (the api or a worker).
    pub fn args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        if !self.image_hosts.is_empty() {
            args.push("--image-hosts".into());
            args.push(self.image_hosts.join(",").into());
        }
        if let Some(root) = &self.image_root {
            args.push("--image-root".into());
            args.push(root.clone().into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_through_the_flags_and_the_fleet_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            images: ImageSourceArgs,
        }
        let given = ImageSourceArgs {
            image_hosts: vec!["photos.example.com".into(), "http://10.0.0.5:8080".into()],
            image_root: Some("/mnt/photos".into()),
        };
        let mut argv: Vec<OsString> = vec!["cli".into()];
        argv.extend(given.args());
        let parsed = Cli::try_parse_from(argv).unwrap().images;
        assert_eq!(parsed, given);
        assert!(parsed.allow_list().is_ok());

        let json = serde_json::to_value(&given).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"hosts": ["photos.example.com", "http://10.0.0.5:8080"], "root": "/mnt/photos"})
        );
        assert_eq!(
            serde_json::from_value::<ImageSourceArgs>(json).unwrap(),
            given
        );
        assert_eq!(
            serde_json::to_value(ImageSourceArgs::default()).unwrap(),
            serde_json::json!({})
        );
        assert!(ImageSourceArgs::default().args().is_empty());
    }

    #[test]
    fn a_bad_host_entry_is_named() {
        let args = ImageSourceArgs {
            image_hosts: vec!["ftp://x".into()],
            image_root: None,
        };
        let err = args.allow_list().unwrap_err();
        assert!(err.contains("--image-hosts entry \"ftp://x\""), "{err}");
    }
}
