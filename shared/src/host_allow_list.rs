//! Which hosts the fleet may send requests to on a client's behalf: the
//! receivers of callbacks (`--callback-hosts`) and the servers of images named
//! by URL (`--image-hosts`).
//!
//! An entry is `host` or `host:port` (`[::1]:8080` for IPv6), optionally
//! with a scheme (`http://images.internal:8080`) that pins the scheme the
//! host may be reached with; without one, the caller's default schemes apply
//! (callbacks: http and https; images: https only). Hosts are compared as
//! written (case-insensitive), never resolved here: the list names the hosts
//! an operator trusts. An empty list refuses everything.
//!
//! Where the addresses a name resolves to matter (images: no private,
//! loopback or link-local address unless listed by address), the worker
//! checks them when it connects (`worker/src/image_fetch/address.rs`).

use url::{Host, Url};

/// The longest URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// One allowed host, with or without a port and a scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: String,
    port: Option<u16>,
    scheme: Option<&'static str>,
}

/// The configured hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowList {
    entries: Vec<Entry>,
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a URL the list could ever allow (syntax, scheme, length).
    #[error("{0}")]
    Invalid(String),
    /// A well-formed URL whose host (or scheme) the list does not allow.
    #[error("{0}")]
    NotAllowed(String),
}

impl HostAllowList {
    /// Parses the entries; `what` names them in errors ("callback host").
    pub fn parse(items: &[String], what: &str) -> Result<HostAllowList, String> {
        let mut entries = Vec::new();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let (scheme, rest) = match item.split_once("://") {
                Some(("http", rest)) => (Some("http"), rest),
                Some(("https", rest)) => (Some("https"), rest),
                Some((other, _)) => {
                    return Err(format!(
                        "{what} {item:?}: scheme {other:?} is not http or https"
                    ));
                }
                None => (None, item),
            };
            let url = Url::parse(&format!("http://{rest}/"))
                .map_err(|err| format!("{what} {item:?} is not HOST or HOST:PORT: {err}"))?;
            let host = url
                .host_str()
                .ok_or_else(|| format!("{what} {item:?} names no host"))?
                .to_ascii_lowercase();
            if url.path() != "/" || !url.username().is_empty() || url.query().is_some() {
                return Err(format!("{what} {item:?} is not HOST or HOST:PORT"));
            }
            let port = url.port().or_else(|| {
                // Url drops a port equal to the scheme's default: keep it.
                rest.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .filter(|_| !rest.ends_with(']'))
            });
            entries.push(Entry { host, port, scheme });
        }
        Ok(HostAllowList { entries })
    }

    /// The entries as written (`[scheme://]host[:port]`), for descriptions.
    pub fn hosts(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|entry| {
                let scheme = entry.scheme.map(|s| format!("{s}://")).unwrap_or_default();
                match entry.port {
                    Some(port) => format!("{scheme}{}:{port}", entry.host),
                    None => format!("{scheme}{}", entry.host),
                }
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `raw` (the value of the field `field`): a URL whose scheme is
    /// its entry's, or one of `default_schemes` for an entry without one,
    /// and whose host and port an entry names.
    pub fn check(&self, raw: &str, field: &str, default_schemes: &[&str]) -> Result<Url, Refusal> {
        let invalid = |message: String| Refusal::Invalid(message);
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(invalid(format!(
                "{field} is longer than {MAX_URL_CHARS} characters"
            )));
        }
        let url = Url::parse(raw).map_err(|err| invalid(format!("{field}: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("{field} must be an http or https URL")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(format!(
                "{field} must not carry a user name or password"
            )));
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return Err(invalid(format!("{field} names no host")));
        };
        let port = url.port_or_known_default();
        let host_listed =
            |entry: &&Entry| entry.host == host && entry.port.is_none_or(|p| Some(p) == port);
        let listed: Vec<&Entry> = self.entries.iter().filter(host_listed).collect();
        if listed.is_empty() {
            return Err(Refusal::NotAllowed(format!(
                "{field}: host {host:?} is not on this server's allow-list"
            )));
        }
        let scheme_ok = listed.iter().any(|entry| match entry.scheme {
            Some(scheme) => scheme == url.scheme(),
            None => default_schemes.contains(&url.scheme()),
        });
        if !scheme_ok {
            return Err(Refusal::NotAllowed(format!(
                "{field}: host {host:?} is not allowed over {} (list it as {}://{host}... to allow that)",
                url.scheme(),
                url.scheme()
            )));
        }
        Ok(url)
    }
}

/// Whether `url` names its host by address (`https://10.0.0.7/`) rather than
/// by name: an address passes [`HostAllowList::check`] only when listed as
/// such, so whoever listed it meant that very address.
pub fn names_an_address(url: &Url) -> bool {
    matches!(url.host(), Some(Host::Ipv4(_) | Host::Ipv6(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[&str] = &["http", "https"];

    fn list(items: &[&str]) -> HostAllowList {
        HostAllowList::parse(
            &items.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "host",
        )
        .unwrap()
    }

    #[test]
    fn only_listed_hosts_and_ports_pass() {
        let list = list(&["hooks.example.com", "127.0.0.1:9000", "[::1]:80"]);
        assert!(
            list.check("https://hooks.example.com/verdicts?x=1", "u", BOTH)
                .is_ok()
        );
        assert!(
            list.check("http://HOOKS.example.com:8080/", "u", BOTH)
                .is_ok()
        );
        assert!(list.check("http://127.0.0.1:9000/hook", "u", BOTH).is_ok());
        assert!(list.check("http://[::1]/hook", "u", BOTH).is_ok());
        let refusal = |url: &str| list.check(url, "u", BOTH).unwrap_err();
        assert!(matches!(
            refusal("http://127.0.0.1:9001/hook"),
            Refusal::NotAllowed(_)
        ));
        assert!(matches!(
            refusal("http://evil.example.com/"),
            Refusal::NotAllowed(_)
        ));
        assert!(matches!(
            refusal("http://hooks.example.com.evil.example/"),
            Refusal::NotAllowed(_)
        ));
        assert!(matches!(
            refusal("ftp://hooks.example.com/"),
            Refusal::Invalid(_)
        ));
        assert!(matches!(refusal("not a url"), Refusal::Invalid(_)));
        assert!(matches!(
            refusal("https://user:pw@hooks.example.com/"),
            Refusal::Invalid(_)
        ));
        let long = format!("http://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(matches!(refusal(&long), Refusal::Invalid(_)));
    }

    #[test]
    fn a_scheme_in_an_entry_pins_it() {
        let list = list(&["img.example.com", "http://127.0.0.1:8080"]);
        let https_only = &["https"];
        assert!(
            list.check("https://img.example.com/a.png", "u", https_only)
                .is_ok()
        );
        assert!(matches!(
            list.check("http://img.example.com/a.png", "u", https_only),
            Err(Refusal::NotAllowed(_))
        ));
        assert!(
            list.check("http://127.0.0.1:8080/a.png", "u", https_only)
                .is_ok()
        );
        assert!(matches!(
            list.check("https://127.0.0.1:8080/a.png", "u", https_only),
            Err(Refusal::NotAllowed(_))
        ));
        assert_eq!(list.hosts(), ["img.example.com", "http://127.0.0.1:8080"]);
        assert!(HostAllowList::parse(&["ftp://x".into()], "host").is_err());
    }

    #[test]
    fn an_empty_list_refuses_everything() {
        let empty = HostAllowList::default();
        assert!(matches!(
            empty.check("http://127.0.0.1/", "u", BOTH),
            Err(Refusal::NotAllowed(_))
        ));
        assert!(HostAllowList::parse(&["host/path".to_string()], "host").is_err());
    }

    #[test]
    fn addresses_are_told_from_names() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(names_an_address(&url("https://10.0.0.7/a.png")));
        assert!(names_an_address(&url("https://[fd00::1]/a.png")));
        assert!(!names_an_address(&url("https://img.example.com/a.png")));
    }
}
