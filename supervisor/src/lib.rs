//! The supervisor of a verdict fleet on one machine: the watchdog process
//! that owns Redis, the api and the workers, and what it shares with the
//! `fleet` commands that talk to it.
//!
//! - [`watchdog`]: the watchdog itself: its event loop, the supervisor (a
//!   pure state machine), starting, reaping and probing processes;
//! - [`control`]: the unix-socket channel between `fleet` and the watchdog
//!   (requests, responses, the client end);
//! - [`config`]: the fleet as `fleet up` resolved it (`run/fleet.json`), with
//!   [`job_policy`] (attempts, reclaim, queue limit), [`embedded_redis`] (how
//!   the fleet's own Redis runs) and [`api_token`];
//! - [`home`]: the fleet's directory: PID files, sockets, logs, Redis data;
//! - [`fleet_id`]: the fleet's random id, kept in its home, that makes its
//!   workers' names unique in a shared Redis;
//! - [`names`]: process names and roles, and their order;
//! - [`pidfile`]: one locked PID file per process; [`private_file`]: writing
//!   a 0600 file whole or not at all (the configuration, the fleet id);
//! - [`recovery`]: cleaning up after a fleet that did not stop cleanly;
//! - [`procfs`]: what `/proc` says about a process;
//! - [`durations_and_sizes`]: `30s`, `500ms`, `4G` as operators write them.

pub mod api_token;
pub mod config;
pub mod control;
pub mod durations_and_sizes;
pub mod embedded_redis;
pub mod fleet_id;
pub mod home;
pub mod job_policy;
pub mod names;
pub mod pidfile;
pub mod private_file;
pub mod procfs;
pub mod recovery;
pub mod watchdog;
