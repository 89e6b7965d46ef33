//! TLS to Redis beyond the web PKI (issue 19): a Redis whose certificate a
//! private CA signed (the common case inside a company), and client
//! certificates for mutual TLS.
//!
//! Every binary that connects to Redis takes the same three flags (flattened
//! into its command line from [`RedisTlsArgs`]), each also readable from the
//! environment so that `fleet up` can hand them to the processes it starts:
//!
//! - `--redis-ca FILE` (`VERDICT_REDIS_CA`): PEM certificates to trust instead
//!   of the web PKI roots;
//! - `--redis-cert FILE` and `--redis-key FILE` (`VERDICT_REDIS_CERT`,
//!   `VERDICT_REDIS_KEY`): the client's certificate chain and private key, in
//!   PEM, for a Redis started with `tls-auth-clients yes`.
//!
//! They apply to `rediss://` URLs only; anything else is refused when the
//! flags are read, as is a file that is missing or holds no PEM block. The
//! files are read again whenever a connection is opened, so a renewed
//! certificate is picked up without a restart. Paths are not secrets and may
//! go on a command line or into a log; the key's contents never do.

use std::path::{Path, PathBuf};

/// The TLS flags every binary that connects to Redis takes.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, clap::Args, serde::Serialize, serde::Deserialize,
)]
pub struct RedisTlsArgs {
    /// PEM file of the CA (or CAs) that signed Redis's certificate, trusted
    /// instead of the web PKI roots (rediss:// only).
    #[arg(long = "redis-ca", env = "VERDICT_REDIS_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM file of this client's certificate chain, for a Redis that asks
    /// clients for one (mutual TLS; with --redis-key).
    #[arg(
        long = "redis-cert",
        env = "VERDICT_REDIS_CERT",
        value_name = "FILE",
        requires = "key"
    )]
    pub cert: Option<PathBuf>,
    /// PEM file of this client's private key (with --redis-cert).
    #[arg(
        long = "redis-key",
        env = "VERDICT_REDIS_KEY",
        value_name = "FILE",
        requires = "cert"
    )]
    pub key: Option<PathBuf>,
}

/// The environment variables of [`RedisTlsArgs`], for a parent handing its
/// settings to a child.
pub const CA_ENV: &str = "VERDICT_REDIS_CA";
pub const CERT_ENV: &str = "VERDICT_REDIS_CERT";
pub const KEY_ENV: &str = "VERDICT_REDIS_KEY";

impl RedisTlsArgs {
    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// The flags as environment variables, for a child process.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        [
            (CA_ENV, &self.ca),
            (CERT_ENV, &self.cert),
            (KEY_ENV, &self.key),
        ]
        .into_iter()
        .filter_map(|(name, path)| Some((name, path.clone()?)))
        .collect()
    }

    /// Reads the files into what the Redis client takes. An error names the
    /// file and what is wrong with it (never its contents).
    pub fn load(&self) -> Result<redis::TlsCertificates, String> {
        let root_cert = self
            .ca
            .as_deref()
            .map(|path| read_pem(path, "--redis-ca"))
            .transpose()?;
        let client_tls = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read_pem(cert, "--redis-cert")?,
                client_key: read_pem(key, "--redis-key")?,
            }),
            (None, None) => None,
            _ => return Err("--redis-cert and --redis-key go together".to_string()),
        };
        Ok(redis::TlsCertificates {
            client_tls,
            root_cert,
        })
    }
}

/// A PEM file's bytes, refused when it cannot be read or has no PEM block.
fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path)
        .map_err(|err| format!("{flag} {}: cannot read it: {err}", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!(
            "{flag} {}: not a PEM file (no -----BEGIN line)",
            path.display()
        ));
    }
    Ok(bytes)
}

/// `DIR/ca.pem`, holding one PEM block (not a real certificate: what the
/// checks when the flags are read accept). For tests.
#[cfg(test)]
pub(crate) fn pem_file_for_tests(dir: &Path) -> PathBuf {
    let pem = dir.join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pem = pem_file_for_tests(dir.path());
        let der = dir.path().join("ca.der");
        std::fs::write(&der, [0x30, 0x82, 0x01]).unwrap();
        let ok = RedisTlsArgs {
            ca: Some(pem.clone()),
            ..Default::default()
        };
        assert!(ok.load().unwrap().root_cert.is_some());
        let not_pem = RedisTlsArgs {
            ca: Some(der),
            ..Default::default()
        };
        assert!(not_pem.load().unwrap_err().contains("not a PEM file"));
        let missing = RedisTlsArgs {
            cert: Some(dir.path().join("nope.pem")),
            key: Some(pem.clone()),
            ..Default::default()
        };
        let err = missing.load().unwrap_err();
        assert!(
            err.starts_with("--redis-cert ") && err.contains("nope.pem"),
            "{err}"
        );
        let half = RedisTlsArgs {
            key: Some(pem),
            ..Default::default()
        };
        assert!(half.load().is_err());
        assert_eq!(half.env(), vec![(KEY_ENV, half.key.clone().unwrap())]);
    }
}
