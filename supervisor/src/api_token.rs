//! The api token a fleet's api requires (`VERDICT_API_TOKEN`).
//!
//! `fleet up` takes it from `--api-token-file FILE` (the first line) or, if
//! that is not given, from its own `VERDICT_API_TOKEN`; it stores it in
//! `run/fleet.json` (0600, in the 0700 home) so that restarts keep it, and the
//! watchdog hands it to the api in its environment only: never on a command
//! line (`ps` shows those), never to the workers or Redis.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The variable the api reads (and `fleet up` reads when no file is given).
pub const ENV: &str = "VERDICT_API_TOKEN";

/// A token; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl ApiToken {
    /// The token itself, for the api's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// From `file` if given, else from [`ENV`] if set, else none.
    pub fn resolve(file: Option<&Path>) -> anyhow::Result<Option<ApiToken>> {
        let raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the api token file {}", path.display())
                })?;
                text.lines().next().unwrap_or("").trim().to_owned()
            }
            None => match std::env::var(ENV) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => return Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => bail!("{ENV} is not UTF-8"),
            },
        };
        Self::check(raw).map(Some)
    }

    fn check(raw: String) -> anyhow::Result<ApiToken> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "the api token must be printable ASCII without spaces, and not empty \
                 (unset {ENV} to run without one)"
            );
        }
        if raw.len() < 16 {
            bail!(
                "the api token is {} characters long: use at least 16",
                raw.len()
            );
        }
        Ok(ApiToken(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_line_of_a_file_and_hides_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef-token\nignored\n").unwrap();
        let token = ApiToken::resolve(Some(&path)).unwrap().unwrap();
        assert_eq!(token.expose(), "0123456789abcdef-token");
        assert_eq!(format!("{token:?}"), "ApiToken(***)");
    }

    #[test]
    fn refuses_empty_short_and_spaced_tokens() {
        assert!(ApiToken::check(String::new()).is_err());
        assert!(ApiToken::check("short".into()).is_err());
        assert!(ApiToken::check("has a space in it, long enough".into()).is_err());
        assert!(ApiToken::check("a-long-enough-token".into()).is_ok());
    }
}
