//! Who may talk to the api from a browser: the `Host` and `Origin` checks.
//!
//! Without them any web page a user opened could POST jobs to a local api (a
//! cross-site multipart POST needs no preflight), and a page on a domain
//! rebound to 127.0.0.1 (DNS rebinding) could read results.
//!
//! - **Host**: a request must name this api in `Host`: a loopback name
//!   (`localhost`, `127.0.0.1`, `[::1]`), the address it is bound to, or one
//!   of `--allowed-host` (names or addresses, any port). An api bound to every
//!   address (`0.0.0.0`) without `--allowed-host` cannot know its own names
//!   and accepts any `Host` (it says so at start); give `--allowed-host` to
//!   close that. Refused: `421 misdirected_host`.
//! - **Origin**: a state-changing request (anything but GET, HEAD, OPTIONS)
//!   that carries an `Origin` must come from the api's own origin (the
//!   scheme, host and port the request names) or one of `--cors-origin`.
//!   Clients that are not browsers send no `Origin` and are not affected.
//!   Refused: `403 cross_origin`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// What the checks accept.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Host names (lowercase, without port) a request may name; None: any.
    hosts: Option<Arc<Vec<String>>>,
    /// Origins (`scheme://host[:port]`, lowercase) allowed to change state.
    origins: Arc<Vec<String>>,
}

impl OriginPolicy {
    pub fn new(
        bind: SocketAddr,
        allowed_hosts: &[String],
        cors_origins: &[String],
    ) -> OriginPolicy {
        let hosts = if bind.ip().is_unspecified() && allowed_hosts.is_empty() {
            None
        } else {
            let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
                .iter()
                .map(|h| h.to_string())
                .collect();
            if !bind.ip().is_unspecified() {
                hosts.push(bind.ip().to_string());
            }
            hosts.extend(
                allowed_hosts
                    .iter()
                    .map(|h| strip_port(&h.to_ascii_lowercase())),
            );
            Some(Arc::new(hosts))
        };
        OriginPolicy {
            hosts,
            origins: Arc::new(
                cors_origins
                    .iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    /// Whether any `Host` is accepted (bound to every address, no names given).
    pub fn any_host(&self) -> bool {
        self.hosts.is_none()
    }

    fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            None => true,
            Some(hosts) => {
                let name = strip_port(&host.to_ascii_lowercase());
                hosts.contains(&name)
            }
        }
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        // The api's own origin: the page it serves posts to it.
        let Some(host) = host else { return false };
        let host = host.to_ascii_lowercase();
        origin == format!("http://{host}") || origin == format!("https://{host}")
    }
}

/// `host:port`, `[v6]:port`, `host` -> the host alone, brackets dropped.
fn strip_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    if host.parse::<IpAddr>().is_ok() {
        return host.to_string();
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
        .to_string()
}

/// The middleware.
pub async fn check(State(policy): State<OriginPolicy>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match &host {
        Some(host) if policy.host_allowed(host) => {}
        _ if policy.any_host() => {}
        _ => {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected_host",
                format!(
                    "this api does not answer to the host {:?}: use its address, or start it with --allowed-host",
                    host.unwrap_or_default()
                ),
            )
            .into_response();
        }
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(origin) = req.headers().get(header::ORIGIN).filter(|_| changes_state) {
        let origin = origin.to_str().unwrap_or_default().to_string();
        if !policy.origin_allowed(&origin, host.as_deref()) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                format!(
                    "a page from {origin:?} may not change anything here: only this api's own page, or an origin given with --cors-origin"
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bind: &str, hosts: &[&str], origins: &[&str]) -> OriginPolicy {
        OriginPolicy::new(
            bind.parse().unwrap(),
            &hosts.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &origins.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn loopback_binds_answer_only_to_their_names() {
        let p = policy("127.0.0.1:7860", &[], &[]);
        for ok in [
            "127.0.0.1:7860",
            "localhost:7860",
            "LOCALHOST",
            "[::1]:7860",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7860",
            "127.0.0.1.evil.example:7860",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        let p = policy("0.0.0.0:7860", &[], &[]);
        assert!(p.any_host() && p.host_allowed("anything:1"));
        let p = policy("0.0.0.0:7860", &["verdict.internal"], &[]);
        assert!(p.host_allowed("verdict.internal:7860") && !p.host_allowed("evil.example"));
    }

    #[test]
    fn only_the_own_origin_and_the_configured_ones_change_state() {
        let p = policy("127.0.0.1:7860", &[], &["https://tools.example"]);
        assert!(p.origin_allowed("http://127.0.0.1:7860", Some("127.0.0.1:7860")));
        assert!(p.origin_allowed("https://tools.example/", Some("127.0.0.1:7860")));
        assert!(!p.origin_allowed("http://evil.example", Some("127.0.0.1:7860")));
        assert!(!p.origin_allowed("null", Some("127.0.0.1:7860")));
        assert!(!p.origin_allowed("http://127.0.0.1:7861", Some("127.0.0.1:7860")));
    }
}
