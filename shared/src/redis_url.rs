//! Where Redis is, and how verdict's processes connect to it.
//!
//! One type, [`RedisUrl`], is what every binary's `--redis` flag parses into. It
//! accepts the forms the fleet uses — `redis://host:port/db` (TCP),
//! `rediss://host:port/db` (TCP with TLS, verified against the web PKI roots,
//! or against a private CA with client certificates: [`crate::redis_tls`]),
//! `unix:///path/to/redis.sock` (a local socket, the fastest) and
//! `redis+sentinel://host1,host2,host3/service` (whichever node the sentinels
//! name as primary, followed through failovers: [`crate::redis_sentinel`]) —
//! and refuses anything else when the flag is parsed, not at the first job.
//! Its `Display` hides the passwords, so a URL can be logged.
//!
//! Every connection is opened by [`RedisUrl::connect`] (or through
//! [`RedisUrl::client`]), which for a sentinel URL asks the sentinels where
//! the primary is at that moment. Connections come in two kinds:
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
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo};

use crate::redis_pool::{Manager, Pool};
use crate::redis_sentinel::{self, SentinelUrl};
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
    /// What a `redis+sentinel://` URL names (`None` for the other forms);
    /// boxed, so that a `RedisUrl` in every binary's arguments stays small.
    sentinel: Option<Box<SentinelUrl>>,
    /// Certificates beyond the web PKI (`rediss://` and
    /// `rediss+sentinel://` only).
    tls: Option<RedisTlsArgs>,
}

/// A string that is not a Redis URL verdict can use.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRedisUrl(String);

impl FromStr for RedisUrl {
    type Err = InvalidRedisUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if redis_sentinel::is_sentinel_url(s) {
            let sentinel = SentinelUrl::parse(s).map_err(|reason| {
                InvalidRedisUrl(format!(
                    "{} is not a usable Redis Sentinel URL: {reason}",
                    redact(s)
                ))
            })?;
            return Ok(RedisUrl {
                url: s.to_owned(),
                sentinel: Some(Box::new(sentinel)),
                tls: None,
            });
        }
        let scheme = s.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("redis" | "rediss" | "unix" | "redis+unix") => {}
            _ => {
                return Err(InvalidRedisUrl(format!(
                    "{} is not a Redis URL: expected redis://HOST[:PORT][/DB], \
                     rediss://HOST[:PORT][/DB], unix:///PATH/TO/SOCKET or {}",
                    redact(s),
                    redis_sentinel::FORM
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
            sentinel: None,
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
    /// Whether the connection is encrypted (`rediss://`, `rediss+sentinel://`).
    pub fn is_tls(&self) -> bool {
        match &self.sentinel {
            Some(sentinel) => sentinel.is_tls(),
            None => self.url.starts_with("rediss://"),
        }
    }

    /// What a `redis+sentinel://` URL names, if this is one.
    pub fn sentinel(&self) -> Option<&SentinelUrl> {
        self.sentinel.as_deref()
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
                "--redis-ca, --redis-cert and --redis-key need a rediss:// URL (or rediss+sentinel://), not {self}"
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
        // Refuse now what would fail at every connection (TLS files that
        // cannot be read, a URL the client library refuses).
        self.certificates()?;
        if self.sentinel.is_none() {
            self.client_now()?;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let manager = Manager::new(self.clone(), config);
        let mut pool_config = PoolConfig::new(max_size.max(1));
        // Waiting for a free connection, opening one, and checking a returned
        // one all give up quickly: a caller would rather get an error it can
        // report than hang while Redis is away. Through sentinels, opening
        // one starts with asking them where the primary is.
        let create = match self.sentinel {
            Some(_) => CONNECT_TIMEOUT + redis_sentinel::LOOKUP_TIMEOUT,
            None => CONNECT_TIMEOUT,
        };
        pool_config.timeouts = Timeouts {
            wait: Some(COMMAND_TIMEOUT),
            create: Some(create),
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

    /// A client for the Redis to use now, for one connection (a dedicated
    /// one: blocking reads, pub/sub) or a few: for a sentinel URL, the
    /// primary the sentinels name at this moment, so ask again for each new
    /// connection. With TLS files, they are read now (a renewed certificate
    /// is used from the next connection on).
    pub async fn client(&self) -> Result<Client, redis::RedisError> {
        match &self.sentinel {
            Some(sentinel) => sentinel.primary(self.certificates()?).await,
            None => self.client_now(),
        }
    }

    /// A multiplexed connection with `config`'s timeouts, to the primary
    /// the sentinels name now for a sentinel URL.
    pub async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, redis::RedisError> {
        self.client()
            .await?
            .get_multiplexed_async_connection_with_config(config)
            .await
    }

    /// A dedicated multiplexed connection whose replies may take up to
    /// `longest_block` plus [`COMMAND_TIMEOUT`]: for commands that block on the
    /// server, such as `XREADGROUP ... BLOCK`.
    pub async fn dedicated(
        &self,
        longest_block: Duration,
    ) -> Result<MultiplexedConnection, redis::RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(longest_block + COMMAND_TIMEOUT));
        self.connect(&config).await
    }

    /// The client of a URL that names one node (not a sentinel URL).
    fn client_now(&self) -> Result<Client, redis::RedisError> {
        match self.certificates()? {
            None => Client::open(self.url.as_str()),
            Some(certificates) => Client::build_with_tls(self.url.as_str(), certificates),
        }
    }

    /// The TLS files, read now (`None` without any).
    fn certificates(&self) -> Result<Option<redis::TlsCertificates>, redis::RedisError> {
        let Some(args) = &self.tls else {
            return Ok(None);
        };
        args.load().map(Some).map_err(|err| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cannot read the Redis TLS files",
                err,
            ))
        })
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
    // Credentials in the query: unix URLs' `?pass=...`, sentinel URLs'
    // `?sentinel_password=...`.
    if let Some(start) = redacted.find('?') {
        let (head, query) = redacted.split_at(start + 1);
        let (query, fragment) = query.split_at(query.find('#').unwrap_or(query.len()));
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.ends_with("pass") || key.ends_with("password") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        redacted = format!("{head}{}{fragment}", query.join("&"));
    }
    redacted
}

/// What kind of address a URL names, for logs ("unix", "tcp", "tls",
/// "sentinel", "sentinel+tls").
pub fn transport(url: &RedisUrl) -> &'static str {
    if let Some(sentinel) = url.sentinel() {
        return if sentinel.is_tls() {
            "sentinel+tls"
        } else {
            "sentinel"
        };
    }
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
        let url: RedisUrl = "redis+sentinel://:s3cret@h1,h2:26380/verdict/1?sentinel_password=t0p"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "redis+sentinel://***@h1,h2:26380/verdict/1?sentinel_password=***"
        );
        assert_eq!(format!("{url:?}"), format!("RedisUrl({url})"));
    }

    #[test]
    fn sentinel_urls_are_parsed_or_refused_with_the_reason() {
        let url: RedisUrl = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/verdict"
            .parse()
            .unwrap();
        let sentinel = url.sentinel().expect("a sentinel URL");
        assert_eq!(sentinel.service(), "verdict");
        assert_eq!(sentinel.sentinels().len(), 2);
        assert!(!url.is_tls());
        assert_eq!(transport(&url), "sentinel");
        let tls: RedisUrl = "rediss+sentinel://s1/verdict".parse().unwrap();
        assert!(tls.is_tls());
        assert_eq!(transport(&tls), "sentinel+tls");

        let err = "redis+sentinel://:s3cret@h1:70000/verdict"
            .parse::<RedisUrl>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a usable Redis Sentinel URL") && err.contains("is not a port"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        let err = "redis+sentinel://h1".parse::<RedisUrl>().unwrap_err();
        assert!(err.to_string().contains("names no service"), "{err}");
        // Other schemes' errors name the sentinel form among those accepted.
        let err = "sentinel://h1/verdict".parse::<RedisUrl>().unwrap_err();
        assert!(err.to_string().contains("redis+sentinel://"), "{err}");
    }

    #[test]
    fn tls_files_need_a_tls_url() {
        let dir = tempfile::tempdir().unwrap();
        let pem = crate::redis_tls::pem_file_for_tests(dir.path());
        let args = RedisTlsArgs {
            ca: Some(pem),
            ..Default::default()
        };
        let plain: RedisUrl = "redis+sentinel://h1/verdict".parse().unwrap();
        let err = plain.with_tls(&args).unwrap_err().to_string();
        assert!(err.contains("rediss+sentinel://"), "{err}");
        let tls: RedisUrl = "rediss+sentinel://h1/verdict".parse().unwrap();
        assert!(tls.with_tls(&args).unwrap().tls().is_some());
    }
}
