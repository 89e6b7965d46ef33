//! Where Redis is, and how verdict's processes connect to it.
//!
//! One type, [`RedisUrl`], is what every binary's `--redis` flag parses into. It
//! accepts the three forms the fleet uses — `redis://host:port/db` (TCP),
//! `rediss://host:port/db` (TCP with TLS, verified against the web PKI roots,
//! or against a private CA with client certificates: [`crate::redis_tls`])
//! and `unix:///path/to/redis.sock` (a local socket, the fastest) — and refuses
//! anything else when the flag is parsed, not at the first job. Its `Display`
//! hides the password, so a URL can be logged.
//!
//! Connections come in two kinds:
//! - a pool ([`RedisUrl::pool`], [`crate::redis_pool`]) of multiplexed
//!   connections for short commands, with short timeouts so that a lost Redis
//!   is noticed within seconds;
//! - dedicated connections ([`RedisUrl::dedicated`]) for the commands that block
//!   on the server (XREADGROUP with BLOCK, SUBSCRIBE): a blocking command would
//!   hold up every other command pipelined on the same multiplexed connection.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{PoolConfig, Timeouts};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo};

use crate::redis_pool::{Manager, Pool};
use crate::redis_tls::RedisTlsArgs;

/// How long a pooled command may wait for its reply before it fails.
///
/// Every command verdict sends through the pool is O(1) or a short script; an
/// 8 MiB image takes milliseconds on a local socket. Two seconds leaves room for
/// a loaded machine and still turns a hung Redis into an error quickly.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A validated Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: String,
    /// Certificates beyond the web PKI (`rediss://` only).
    tls: Option<RedisTlsArgs>,
}

/// A string that is not a Redis URL verdict can use.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRedisUrl(String);

impl FromStr for RedisUrl {
    type Err = InvalidRedisUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let scheme = s.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("redis" | "rediss" | "unix" | "redis+unix") => {}
            _ => {
                return Err(InvalidRedisUrl(format!(
                    "{} is not a Redis URL: expected redis://HOST[:PORT][/DB], \
                     rediss://HOST[:PORT][/DB] or unix:///PATH/TO/SOCKET",
                    redact(s)
                )));
            }
        }
        // Let the client library parse the rest (host, port, db, user,
        // password), so that exactly what it accepts is accepted here.
        s.into_connection_info().map_err(|err| {
            InvalidRedisUrl(format!("{} is not a usable Redis URL: {err}", redact(s)))
        })?;
        Ok(RedisUrl {
            url: s.to_owned(),
            tls: None,
        })
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

impl RedisUrl {
    /// Whether the connection is encrypted (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }

    /// The same URL with the TLS files of `args` (a private CA, a client
    /// certificate): refused unless the URL is `rediss://` and the files
    /// read as PEM. Empty `args` change nothing.
    pub fn with_tls(mut self, args: &RedisTlsArgs) -> Result<RedisUrl, InvalidRedisUrl> {
        if args.is_empty() {
            return Ok(self);
        }
        if !self.is_tls() {
            return Err(InvalidRedisUrl(format!(
                "--redis-ca, --redis-cert and --redis-key need a rediss:// URL, not {self}"
            )));
        }
        args.load().map_err(InvalidRedisUrl)?;
        self.tls = Some(args.clone());
        Ok(self)
    }

    /// The TLS files this URL connects with, if any.
    pub fn tls(&self) -> Option<&RedisTlsArgs> {
        self.tls.as_ref()
    }

    /// The URL with its password, for the client library only.
    pub fn as_secret_str(&self) -> &str {
        &self.url
    }

    /// A pool of multiplexed connections with short timeouts.
    ///
    /// No connection is opened here: the first command opens one, so a process
    /// can start while Redis is still coming up.
    pub fn pool(&self, max_size: usize) -> Result<Pool, redis::RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let manager = Manager::new(deadpool_redis::Manager::new_with_config(
            self.client()?.get_connection_info().clone(),
            config,
        )?);
        let mut pool_config = PoolConfig::new(max_size.max(1));
        // Waiting for a free connection, opening one, and checking a returned
        // one all give up quickly: a caller would rather get an error it can
        // report than hang while Redis is away.
        pool_config.timeouts = Timeouts {
            wait: Some(COMMAND_TIMEOUT),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(COMMAND_TIMEOUT),
        };
        Pool::builder(manager)
            .config(pool_config)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "cannot build the Redis pool",
                    err.to_string(),
                ))
            })
    }

    /// A client for dedicated connections (blocking reads, pub/sub).
    /// With TLS files, they are read now (a renewed certificate is used
    /// from the next connection on).
    pub fn client(&self) -> Result<Client, redis::RedisError> {
        match &self.tls {
            None => Client::open(self.url.as_str()),
            Some(args) => {
                let certificates = args.load().map_err(|err| {
                    redis::RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "cannot read the Redis TLS files",
                        err,
                    ))
                })?;
                Client::build_with_tls(self.url.as_str(), certificates)
            }
        }
    }

    /// A dedicated multiplexed connection whose replies may take up to
    /// `longest_block` plus [`COMMAND_TIMEOUT`]: for commands that block on the
    /// server, such as `XREADGROUP ... BLOCK`.
    pub async fn dedicated(
        &self,
        longest_block: Duration,
    ) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(longest_block + COMMAND_TIMEOUT));
        self.client()?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first '/', '?' or '#'; credentials end at its last '@'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut redacted = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            if user.is_empty() || !userinfo.contains(':') {
                format!("{scheme}://***@{host}{tail}")
            } else {
                format!("{scheme}://{user}:***@{host}{tail}")
            }
        }
        None => url.to_owned(),
    };
    // Unix URLs carry credentials in the query: `?pass=...`.
    if let Some(start) = redacted.find("pass=") {
        let value_start = start + "pass=".len();
        let value_end = redacted[value_start..]
            .find('&')
            .map_or(redacted.len(), |i| value_start + i);
        redacted.replace_range(value_start..value_end, "***");
    }
    redacted
}

/// What kind of address a URL names, for logs ("unix", "tcp", "tls").
pub fn transport(url: &RedisUrl) -> &'static str {
    match url
        .as_secret_str()
        .into_connection_info()
        .map(|info| info.addr().clone())
    {
        Ok(ConnectionAddr::Unix(_)) => "unix",
        Ok(ConnectionAddr::TcpTls { .. }) => "tls",
        _ => "tcp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        for url in [
            "redis://127.0.0.1:6380/0",
            "rediss://cache.example.com:6380",
            "unix:///tmp/verdict/redis.sock",
            "redis+unix:///tmp/verdict/redis.sock",
        ] {
            let parsed: RedisUrl = url.parse().unwrap();
            assert_eq!(parsed.as_secret_str(), url);
        }
        let tls: RedisUrl = "rediss://cache.example.com:6380".parse().unwrap();
        assert!(tls.is_tls());
        assert_eq!(transport(&tls), "tls");
        let unix: RedisUrl = "unix:///tmp/r.sock".parse().unwrap();
        assert_eq!(transport(&unix), "unix");
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        for url in [
            "http://localhost",
            "localhost:6379",
            "",
            "redis://",
            "redis://host:notaport",
        ] {
            assert!(url.parse::<RedisUrl>().is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn display_hides_passwords() {
        let url: RedisUrl = "redis://alice:s3cret@host:6379/1".parse().unwrap();
        assert_eq!(url.to_string(), "redis://alice:***@host:6379/1");
        let url: RedisUrl = "redis://:s3cret@host".parse().unwrap();
        assert_eq!(url.to_string(), "redis://***@host");
        let url: RedisUrl = "unix:///tmp/r.sock?pass=s3cret&db=2".parse().unwrap();
        assert_eq!(url.to_string(), "unix:///tmp/r.sock?pass=***&db=2");
        let err = "http://u:s3cret@host".parse::<RedisUrl>().unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }
}
