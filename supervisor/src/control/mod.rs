//! The control channel between `fleet` commands and the running watchdog.
//!
//! A unix socket, `run/watchdog.sock` (mode 0600 in a 0700 home: only the
//! fleet's user can talk to it), carrying JSON lines: a command connects,
//! writes one request line, reads one response line and closes. One request
//! per connection keeps both ends trivial and lets a slow request (`down`
//! waits for every process to stop) block nobody else.

pub mod client;
pub mod protocol;
