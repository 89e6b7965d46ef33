//! Redis Sentinel (issue 19): a Redis that fails over.
//!
//! A `redis+sentinel://` URL names the sentinels that watch a primary and its
//! replicas, and the name they know it by; verdict never holds the primary's
//! address itself. Every new connection asks the sentinels which node is the
//! primary *now* ([`SentinelUrl::primary`]), so once they have promoted a
//! replica, the next connection goes to it: the api and the workers follow a
//! failover without a restart. The connections to the old primary break when
//! it dies, or answer `READONLY` if it comes back as a replica
//! ([`crate::redis_failover`]); either way they are dropped, and their
//! replacements are asked for anew.
//!
//! ```text
//! redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB][?sentinel_username=U&sentinel_password=P]
//! rediss+sentinel://...   (TLS to the sentinels and to the Redis nodes)
//! ```
//!
//! - `HOST[:PORT]`: the sentinels, comma-separated (port 26379 by default;
//!   an IPv6 address in brackets); they are asked in this order;
//! - `SERVICE`: the name in the sentinels' `sentinel monitor SERVICE ...`;
//! - `DB`: the database on the primary (0 by default);
//! - `USER`, `PASSWORD`: what the Redis nodes ask for (`requirepass`,
//!   `masterauth`), percent-encoded as in any URL;
//! - `sentinel_username`, `sentinel_password`: what the sentinels themselves
//!   ask for, if they ask (`requirepass` in `sentinel.conf`).
//!
//! This is the form other clients use (`redis+sentinel://`, one URL for
//! several hosts). Neither redis-rs nor deadpool-redis parses it; redis-rs's
//! [`SentinelClientBuilder`] does the asking, following the Sentinel client
//! specification (each sentinel in turn, the named primary confirmed by
//! `ROLE`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, RedisError, TlsCertificates, TlsMode};

/// The port of a sentinel whose URL names none (Redis's own default).
pub const DEFAULT_PORT: u16 = 26379;

/// How long asking the sentinels for the primary may take in all: each
/// sentinel is given a second to connect, and up to three are asked at once.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The URL's schemes: plain, and TLS to the sentinels and the nodes.
const PLAIN: &str = "redis+sentinel";
const TLS: &str = "rediss+sentinel";

/// What a `redis+sentinel://` URL names.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    tls: bool,
    sentinels: Vec<(String, u16)>,
    service: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

impl fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("service", &self.service)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// The form, for error messages.
pub const FORM: &str = "redis+sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB]";

/// Whether `url` is meant as a sentinel URL (its scheme says so).
pub fn is_sentinel_url(url: &str) -> bool {
    matches!(url.split_once("://"), Some((PLAIN | TLS, _)))
}

impl SentinelUrl {
    /// Parses a `redis+sentinel://` or `rediss+sentinel://` URL. The error
    /// says what is wrong without repeating the URL (the caller names it,
    /// with its passwords hidden) and never holds a password.
    pub fn parse(url: &str) -> Result<SentinelUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("expected {FORM}"))?;
        let tls = match scheme {
            PLAIN => false,
            TLS => true,
            other => {
                return Err(format!(
                    "the scheme {other}:// is not {PLAIN}:// or {TLS}://"
                ));
            }
        };
        if rest.contains('#') {
            return Err("a fragment (#...) means nothing here".into());
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                (
                    non_empty(decode(user, "the user name")?),
                    password.map(|p| decode(p, "the password")).transpose()?,
                )
            }
        };
        if hosts.is_empty() {
            return Err(format!("it names no sentinel: expected {FORM}"));
        }
        let sentinels = hosts
            .split(',')
            .map(sentinel_address)
            .collect::<Result<Vec<_>, _>>()?;
        let mut segments = path.split('/');
        let service = decode(segments.next().unwrap_or(""), "the service name")?;
        if service.is_empty() {
            return Err(format!(
                "it names no service (the name the sentinels monitor): expected {FORM}"
            ));
        }
        let db = match segments.next() {
            None | Some("") => 0,
            Some(db) => db
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| format!("the database {db:?} is not a number from 0"))?,
        };
        if segments.any(|segment| !segment.is_empty()) {
            return Err(format!(
                "its path has more than SERVICE/DB: expected {FORM}"
            ));
        }
        let mut sentinel_username = None;
        let mut sentinel_password = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sentinel_username" => {
                    sentinel_username = non_empty(decode(value, "sentinel_username")?);
                }
                "sentinel_password" => {
                    sentinel_password = Some(decode(value, "sentinel_password")?);
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?} (expected sentinel_username or sentinel_password)"
                    ));
                }
            }
        }
        Ok(SentinelUrl {
            tls,
            sentinels,
            service,
            db,
            username,
            password,
            sentinel_username,
            sentinel_password,
        })
    }

    /// Whether the sentinels and the nodes are reached over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The sentinels, in the order they are asked.
    pub fn sentinels(&self) -> &[(String, u16)] {
        &self.sentinels
    }

    /// The name the sentinels know the primary by.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The database on the primary.
    pub fn db(&self) -> i64 {
        self.db
    }

    /// Asks the sentinels which node is the primary now, and returns a client
    /// for it (with the URL's database and credentials, and `certificates`
    /// for TLS). The sentinels are asked in turn until one names a primary
    /// that `ROLE` confirms; during a failover (the primary down, no replica
    /// promoted yet) none does, and the error says so.
    pub async fn primary(
        &self,
        certificates: Option<TlsCertificates>,
    ) -> Result<Client, RedisError> {
        let mut client = self.builder(certificates).build()?;
        // Boxed, its type erased: redis-rs's lookup is a deep future (it
        // asks several sentinels at once), and every future that opens a
        // connection (a pool checkout, a worker's whole run loop) would
        // otherwise carry its type, past the compiler's layout depth limit.
        let lookup: Pin<Box<dyn Future<Output = Result<Client, RedisError>> + Send>> =
            Box::pin(async move { client.async_get_client().await });
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(found) => found,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the sentinels named no primary for {:?} within {} s",
                    self.service,
                    LOOKUP_TIMEOUT.as_secs()
                ),
            ))),
        }
    }

    fn builder(&self, certificates: Option<TlsCertificates>) -> SentinelClientBuilder {
        let addresses = self.sentinels.iter().map(|(host, port)| {
            if self.tls {
                ConnectionAddr::TcpTls {
                    host: host.clone(),
                    port: *port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(host.clone(), *port)
            }
        });
        // `new` only stores what it is given; it cannot fail.
        let mut builder =
            SentinelClientBuilder::new(addresses, &self.service, SentinelServerType::Master)
                .expect("SentinelClientBuilder::new stores its arguments")
                .set_client_to_redis_db(self.db);
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(username) = &self.sentinel_username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if self.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certificates) = certificates {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates);
            }
        }
        builder
    }
}

/// One `HOST[:PORT]` of the sentinel list (`[v6]:PORT` for IPv6).
fn sentinel_address(address: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("the sentinel address {address:?} has no closing ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => {
                    return Err(format!(
                        "the sentinel address {address:?} is not [HOST]:PORT"
                    ));
                }
            },
        }
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return Err(format!(
            "the sentinel list has an empty host in {address:?}: expected {FORM}"
        ));
    }
    if host.contains(':') && !address.starts_with('[') {
        return Err(format!(
            "the sentinel address {address:?} is not HOST[:PORT]"
        ));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| {
                format!("the sentinel address {address:?}: {port:?} is not a port (1 to 65535)")
            })?,
    };
    Ok((host.to_owned(), port))
}

/// A percent-encoded part of the URL, decoded; `what` names it in the error
/// (never its value, which may be a password).
fn decode(part: &str, what: &str) -> Result<String, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("{what} is not UTF-8 once percent-decoded"))
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sentinels_service_db_and_credentials() {
        let url = SentinelUrl::parse(
            "redis+sentinel://:s%40cret@10.0.0.1,10.0.0.2:26380,[::1]:26381/verdict/2",
        )
        .unwrap();
        assert!(!url.is_tls());
        assert_eq!(
            url.sentinels(),
            [
                ("10.0.0.1".to_owned(), DEFAULT_PORT),
                ("10.0.0.2".to_owned(), 26380),
                ("::1".to_owned(), 26381),
            ]
        );
        assert_eq!(url.service(), "verdict");
        assert_eq!(url.db(), 2);
        assert_eq!(url.username, None);
        assert_eq!(url.password.as_deref(), Some("s@cret"));
        assert_eq!(url.sentinel_password, None);

        let url = SentinelUrl::parse(
            "rediss+sentinel://alice:pw@sentinel.internal/jobs?sentinel_username=watch&sentinel_password=p%26w",
        )
        .unwrap();
        assert!(url.is_tls());
        assert_eq!(
            url.sentinels(),
            [("sentinel.internal".to_owned(), DEFAULT_PORT)]
        );
        assert_eq!(url.db(), 0);
        assert_eq!(url.username.as_deref(), Some("alice"));
        assert_eq!(url.password.as_deref(), Some("pw"));
        assert_eq!(url.sentinel_username.as_deref(), Some("watch"));
        assert_eq!(url.sentinel_password.as_deref(), Some("p&w"));

        // A trailing slash after the service or the database is harmless.
        let url = SentinelUrl::parse("redis+sentinel://[::1]/verdict/").unwrap();
        assert_eq!(url.sentinels(), [("::1".to_owned(), DEFAULT_PORT)]);
        assert!(is_sentinel_url("rediss+sentinel://h/s"));
        assert!(!is_sentinel_url("redis://h:1"));
    }

    #[test]
    fn refuses_bad_urls_with_the_reason_and_no_password() {
        let cases = [
            ("redis+sentinel://", "names no sentinel"),
            ("redis+sentinel://:pw@/verdict", "names no sentinel"),
            ("redis+sentinel://h1", "names no service"),
            ("redis+sentinel://h1/", "names no service"),
            ("redis+sentinel://h1,,h2/verdict", "empty host"),
            ("redis+sentinel://h1:/verdict", "is not a port"),
            ("redis+sentinel://:pw@h1:99999/verdict", "is not a port"),
            ("redis+sentinel://h1:0/verdict", "is not a port"),
            ("redis+sentinel://h1:x/verdict", "is not a port"),
            ("redis+sentinel://[::1/verdict", "no closing ']'"),
            ("redis+sentinel://[::1]x/verdict", "is not [HOST]:PORT"),
            ("redis+sentinel://h1/verdict/x", "is not a number"),
            ("redis+sentinel://h1/verdict/-1", "is not a number"),
            ("redis+sentinel://h1/verdict/0/more", "more than SERVICE/DB"),
            (
                "redis+sentinel://h1/verdict?pass=pw",
                "unknown parameter \"pass\"",
            ),
            ("redis+sentinel://h1/verdict#x", "fragment"),
            ("redis+sentinel://:%FF@h1/verdict", "password is not UTF-8"),
            ("redis+cluster://h1/verdict", "is not redis+sentinel"),
        ];
        for (url, reason) in cases {
            let err = SentinelUrl::parse(url).expect_err(url);
            assert!(err.contains(reason), "{url}: {err}");
            assert!(
                !err.contains("pw"),
                "{url}: the error shows a password: {err}"
            );
        }
    }

    #[test]
    fn debug_hides_the_passwords() {
        let url = SentinelUrl::parse("redis+sentinel://:s3cret@h1/verdict?sentinel_password=t0p")
            .unwrap();
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0p"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn no_sentinel_answering_is_an_error_not_a_hang() {
        // A port nothing listens on (bound, then closed): refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url =
            SentinelUrl::parse(&format!("redis+sentinel://127.0.0.1:{port}/verdict")).unwrap();
        let started = std::time::Instant::now();
        let err = url.primary(None).await.expect_err("nothing answers");
        assert!(started.elapsed() < LOOKUP_TIMEOUT + Duration::from_secs(1));
        assert!(err.is_io_error() || err.is_connection_refusal(), "{err}");
    }
}
