//! Callbacks: POSTing a job's JSON to its `callback_url` when it ends.
//!
//! Who sends, and why exactly once per success: the script that ends a job
//! queues one entry in the stream `verdict:callbacks` in the same atomic step
//! (finish.lua), and the api processes read that stream through one consumer
//! group, so each entry is handed to one api process however many run. That
//! process POSTs the job, signed ([`signature`]), retrying with backoff, and
//! acknowledges the entry after the first 2xx or the last attempt. If it dies
//! in between, the entry stays pending and another api process claims it. A
//! receiver can still see a job twice in one case only: the sender died after
//! the receiver's 2xx and before its acknowledgement; the job id
//! (`X-Verdict-Job`) lets it drop the copy.
//!
//! - [`allow_list`]: which URLs may be called (checked at submission and again
//!   before sending);
//! - [`signature`]: the HMAC header;
//! - [`sender`]: the task that reads the stream and sends.

pub mod allow_list;
pub mod sender;
pub mod signature;

use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::Args;
pub use allow_list::AllowList;

/// The callback settings of this api process.
#[derive(Clone, Default)]
pub struct CallbackConfig {
    pub allow: AllowList,
    /// The HMAC key; empty when callbacks are off.
    pub secret: Arc<Vec<u8>>,
    /// Tries per callback before giving up.
    pub attempts: u32,
}

impl std::fmt::Debug for CallbackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackConfig")
            .field("allow", &self.allow)
            .field("secret", &"***")
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl CallbackConfig {
    /// From the flags: off without hosts; with hosts, a secret is required
    /// (`--callback-secret-file` or `VERDICT_CALLBACK_SECRET`).
    pub fn from_args(args: &Args) -> anyhow::Result<CallbackConfig> {
        let allow = AllowList::parse(&args.callback_hosts).map_err(anyhow::Error::msg)?;
        if allow.is_empty() {
            return Ok(CallbackConfig {
                attempts: args.callback_attempts,
                ..CallbackConfig::default()
            });
        }
        let secret = match (
            &args.callback_secret_file,
            std::env::var("VERDICT_CALLBACK_SECRET"),
        ) {
            (Some(path), _) => std::fs::read(path)
                .with_context(|| format!("cannot read the callback secret {}", path.display()))?
                .trim_ascii()
                .to_vec(),
            (None, Ok(secret)) => secret.trim().as_bytes().to_vec(),
            (None, Err(_)) => bail!(
                "--callback-hosts needs a signing secret: --callback-secret-file FILE or VERDICT_CALLBACK_SECRET"
            ),
        };
        if secret.len() < 16 {
            bail!("the callback secret must be at least 16 bytes");
        }
        Ok(CallbackConfig {
            allow,
            secret: Arc::new(secret),
            attempts: args.callback_attempts,
        })
    }

    pub fn enabled(&self) -> bool {
        !self.allow.is_empty()
    }
}
