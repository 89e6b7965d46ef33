//! Which `callback_url`s a job may name: http(s) URLs whose host (and port,
//! when the entry names one) is on `--callback-hosts`.
//!
//! Callbacks make the fleet send requests on a client's behalf, so by default
//! there are none: an empty list refuses every `callback_url` at submission.
//! The list itself is [`verdict_shared::host_allow_list`]; this module gives
//! its refusals the callback's error codes.

use reqwest::Url;
use verdict_shared::host_allow_list::{HostAllowList, Refusal};

use crate::error::ApiError;

pub use verdict_shared::host_allow_list::MAX_URL_CHARS;

/// The configured callback hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: HostAllowList,
}

impl AllowList {
    /// Parses `host` and `host:port` entries (`[::1]:8080` for IPv6).
    pub fn parse(items: &[String]) -> Result<AllowList, String> {
        Ok(AllowList {
            hosts: HostAllowList::parse(items, "callback host")?,
        })
    }

    /// The entries as `host` or `host:port`, for the OpenAPI description.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.hosts()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Checks a `callback_url`: the parsed URL, or the error to answer.
    pub fn check(&self, raw: &str) -> Result<Url, ApiError> {
        if self.hosts.is_empty() {
            return Err(not_allowed(
                "callbacks are not enabled on this server (no --callback-hosts)",
            ));
        }
        self.hosts
            .check(raw, "callback_url", &["http", "https"])
            .map_err(|refusal| match refusal {
                Refusal::Invalid(message) => invalid(message),
                Refusal::NotAllowed(message) => not_allowed(message),
            })
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
    fn refusals_carry_the_callback_codes() {
        let list = list(&["hooks.example.com", "127.0.0.1:9000"]);
        assert!(list.check("https://hooks.example.com/verdicts?x=1").is_ok());
        assert!(list.check("http://127.0.0.1:9000/hook").is_ok());
        let code = |url: &str| list.check(url).unwrap_err().code;
        assert_eq!(code("http://127.0.0.1:9001/hook"), "callback_not_allowed");
        assert_eq!(code("http://evil.example.com/"), "callback_not_allowed");
        assert_eq!(code("ftp://hooks.example.com/"), "invalid_callback_url");
        assert_eq!(code("not a url"), "invalid_callback_url");
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
