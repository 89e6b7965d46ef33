//! What verdict's binaries share.
//!
//! - [`job`]: a job as the api shows it (id, state, sentences, results,
//!   error), and [`verdict`]: one sentence's answer (label, scores,
//!   explanation);
//! - [`queue`]: the Redis queue protocol, one file and one Lua script per step
//!   of a job (`docs/protocol.md`);
//! - [`image_format`]: an image's format named by its magic bytes;
//! - [`image_reference`]: an image a job names (a URL, a path under the
//!   shared image root) instead of carrying it; [`image_source_args`]: the
//!   flags saying which hosts and folder those may be;
//! - [`host_allow_list`]: the hosts the fleet may send requests to for a
//!   client (callbacks, images by URL); [`public_address`],
//!   [`public_resolver`]: the addresses an allowed name may lead to;
//! - [`limits`]: the sizes the api refuses and the worker enforces;
//! - [`text_content`]: what counts as a sentence worth judging;
//! - [`redis_url`], [`redis_pool`]: reaching Redis (TCP, TLS, unix socket,
//!   Sentinel) and pooling connections; [`redis_tls`]: a private CA and
//!   client certificates for TLS; [`redis_sentinel`]: `redis+sentinel://`
//!   URLs and asking the sentinels for the primary; [`redis_failover`]:
//!   recognising, in Redis's answers, a node that is no longer the primary;
//! - [`reconnect`]: how long to wait before reconnecting to Redis;
//! - [`shutdown`]: telling every task of a process to stop;
//! - [`stdout`]: a command's output, ended quietly when its reader goes away;
//! - [`telemetry`]: logging, as JSON or for people;
//! - [`clock`]: the wall clock in milliseconds; [`host`]: this machine's name;
//!   [`unique_id`]: random ids that make names unique where a host name
//!   cannot;
//! - [`heap`]: handing freed memory back to the system.

pub mod clock;
pub mod heap;
pub mod host;
pub mod host_allow_list;
pub mod image_format;
pub mod image_reference;
pub mod image_source_args;
pub mod job;
pub mod limits;
pub mod public_address;
pub mod public_resolver;
pub mod queue;
pub mod reconnect;
pub mod redis_failover;
pub mod redis_pool;
pub mod redis_sentinel;
pub mod redis_tls;
pub mod redis_url;
pub mod shutdown;
pub mod stdout;
pub mod telemetry;
pub mod text_content;
pub mod unique_id;
pub mod verdict;
