//! The api token: when `VERDICT_API_TOKEN` is set, every `/v1` request must
//! carry `Authorization: Bearer <token>`; others get `401 unauthorized` with
//! the usual error body. `/healthz`, `/readyz` and anything outside `/v1`
//! stay open (probes and the web page need no secret).
//!
//! The token is read from the environment only, never from a flag, so that it
//! does not show in `ps`. It is compared in constant time: both sides are
//! hashed with SHA-256 and the digests compared without an early exit, so the
//! time taken says nothing about how much of a guess was right, or about the
//! token's length.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The environment variable that holds the token.
pub const TOKEN_ENV: &str = "VERDICT_API_TOKEN";

/// The expected token, kept only as its digest.
#[derive(Clone)]
pub struct ApiToken {
    digest: Arc<[u8; 32]>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl ApiToken {
    pub fn new(token: &str) -> ApiToken {
        ApiToken {
            digest: Arc::new(Sha256::digest(token.as_bytes()).into()),
        }
    }

    /// The token named by [`TOKEN_ENV`]: `None` when unset; an error when set
    /// but empty or not printable ASCII (an accident that would otherwise
    /// leave the api open, or a token no client can send in a header).
    pub fn from_env() -> anyhow::Result<Option<ApiToken>> {
        let Some(raw) = std::env::var_os(TOKEN_ENV) else {
            return Ok(None);
        };
        let Some(token) = raw.to_str() else {
            anyhow::bail!("{TOKEN_ENV} is not UTF-8");
        };
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            anyhow::bail!(
                "{TOKEN_ENV} is set but empty or not printable ASCII without spaces; \
                 unset it to run without a token"
            );
        }
        Ok(Some(ApiToken::new(token)))
    }

    /// Whether `presented` is the token, in time independent of both.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest = Sha256::digest(presented);
        let diff = digest
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// The middleware: passes requests outside `/v1`, and `/v1` requests with the
/// right bearer token; answers 401 to the rest.
pub async fn require_token(
    State(token): State<Option<ApiToken>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path != "/v1" && !path.starts_with("/v1/") {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()));
    let refusal = match presented {
        Some(presented) if token.matches(presented) => return next.run(req).await,
        Some(_) => "the bearer token is not the api token",
        None => "this api needs a token: send Authorization: Bearer <token>",
    };
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", refusal).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"verdict\""),
    );
    response
}

/// The credentials of `Bearer <credentials>` (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    Some(&rest[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = ApiToken::new("s3cret-token");
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-toke"));
        assert!(!token.matches(b"s3cret-token "));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "ApiToken(***)");
    }

    #[test]
    fn reads_bearer_credentials() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }
}
