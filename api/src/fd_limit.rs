//! The api's open-file limit, raised as far as the system allows.
//!
//! Every connection is a file handle. The soft limit a process inherits is
//! often far below the hard one; [`raise`] lifts it to the hard limit and
//! returns it, so `--max-connections` can be checked against what the
//! process may really open.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Handles kept for everything but client connections (Redis, logs, the
/// listener, callbacks).
pub const RESERVED: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit
/// in force afterwards (None if it cannot be read).
pub fn raise() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(error = %err, soft, hard, "cannot raise the open-file limit");
            return Some(soft);
        }
        return Some(hard);
    }
    Some(soft)
}
