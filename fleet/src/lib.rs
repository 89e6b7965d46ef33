//! `fleet`, the operator's command: a thin CLI over the supervisor
//! (`verdict-supervisor`: the watchdog, its configuration and control
//! channel) and the api client (`verdict-client`: `fleet batch`).
//!
//! - [`cli`]: one file per subcommand (`up`, `down`, `status`, `restart`,
//!   `scale`, `logs`, `batch`, `unit`, and the hidden `watchdog`);
//! - [`binaries`]: finding `verdict-api`, `verdict-worker` and `redis-server`;
//! - [`model`]: which model pack the workers load;
//! - [`examples`]: which example photos the api offers on the web page;
//! - [`project_dirs`]: where both are looked for when no flag names them;
//! - [`log_line`]: the processes' JSON log lines, rendered for people;
//! - [`queue_stats`]: the queue figures `fleet status` shows.

pub mod binaries;
pub mod cli;
pub mod examples;
pub mod log_line;
pub mod model;
pub mod project_dirs;
pub mod queue_stats;
