//! Which `callback_url`s a job may name: http(s) URLs whose host (and port,
//! when the entry names one) is on the configured list.
//!
//! Callbacks make the fleet send requests on a client's behalf, so by default
//! there are none: an empty list refuses every `callback_url` at submission.
//! Hosts are compared as written (case-insensitive), not resolved: the list
//! names the receivers an operator trusts.

use reqwest::Url;

use crate::error::ApiError;

/// The longest `callback_url` accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// One allowed host, with or without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: String,
    port: Option<u16>,
}

/// The configured hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Parses `host` and `host:port` entries (`[::1]:8080` for IPv6).
    pub fn parse(items: &[String]) -> Result<AllowList, String> {
        let mut entries = Vec::new();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let url = Url::parse(&format!("http://{item}/"))
                .map_err(|err| format!("callback host {item:?} is not HOST or HOST:PORT: {err}"))?;
            let host = url
                .host_str()
                .ok_or_else(|| format!("callback host {item:?} names no host"))?
                .to_ascii_lowercase();
            if url.path() != "/" || url.username() != "" || url.query().is_some() {
                return Err(format!("callback host {item:?} is not HOST or HOST:PORT"));
            }
            let port = url.port().or_else(|| {
                // Url drops a port equal to the scheme's default: keep it.
                item.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .filter(|_| !item.ends_with(']'))
            });
            entries.push(Entry { host, port });
        }
        Ok(AllowList { entries })
    }

    /// The entries as `host` or `host:port`, for the OpenAPI description.
    pub fn hosts(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|entry| match entry.port {
                Some(port) => format!("{}:{port}", entry.host),
                None => entry.host.clone(),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks a `callback_url`: the parsed URL, or the error to answer.
    pub fn check(&self, raw: &str) -> Result<Url, ApiError> {
        if self.entries.is_empty() {
            return Err(not_allowed(
                "callbacks are not enabled on this server (no --callback-hosts)",
            ));
        }
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(invalid(format!(
                "callback_url is longer than {MAX_URL_CHARS} characters"
            )));
        }
        let url = Url::parse(raw).map_err(|err| invalid(format!("callback_url: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("callback_url must be an http or https URL"));
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return Err(invalid("callback_url names no host"));
        };
        let port = url.port_or_known_default();
        let allowed = self
            .entries
            .iter()
            .any(|entry| entry.host == host && entry.port.is_none_or(|p| Some(p) == port));
        if !allowed {
            return Err(not_allowed(format!(
                "callback host {host:?} is not on this server's allow-list"
            )));
        }
        Ok(url)
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_callback_url", message)
}

fn not_allowed(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("callback_not_allowed", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> AllowList {
        AllowList::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn only_listed_hosts_and_ports_pass() {
        let list = list(&["hooks.example.com", "127.0.0.1:9000", "[::1]:80"]);
        assert!(list.check("https://hooks.example.com/verdicts?x=1").is_ok());
        assert!(list.check("http://HOOKS.example.com:8080/").is_ok());
        assert!(list.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(list.check("http://[::1]/hook").is_ok());
        let code = |url: &str| list.check(url).unwrap_err().code;
        assert_eq!(code("http://127.0.0.1:9001/hook"), "callback_not_allowed");
        assert_eq!(code("http://evil.example.com/"), "callback_not_allowed");
        assert_eq!(
            code("http://hooks.example.com.evil.example/"),
            "callback_not_allowed"
        );
        assert_eq!(code("ftp://hooks.example.com/"), "invalid_callback_url");
        assert_eq!(code("not a url"), "invalid_callback_url");
        let long = format!("http://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(code(&long), "invalid_callback_url");
    }

    #[test]
    fn an_empty_list_refuses_everything() {
        let empty = AllowList::default();
        assert_eq!(
            empty.check("http://127.0.0.1/").unwrap_err().code,
            "callback_not_allowed"
        );
        assert!(AllowList::parse(&["host/path".to_string()]).is_err());
    }
}
