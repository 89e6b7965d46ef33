//! `verdict-api`: the HTTP front of verdict (the binary is `src/main.rs`,
//! a few lines over [`server::serve`]).
//!
//! It validates submissions cheaply (sizes, magic bytes, sentences), stores
//! them in Redis for the workers, and serves jobs back, long-polling on Redis
//! pub/sub. It never decodes an image or runs the model. See `docs/api.md`
//! for the endpoints and `docs/protocol.md` for what it writes to Redis.
//!
//! - serving: `server` (routes and middleware put together), `connections`
//!   (the accept loop: header timeout, connection cap), `fd_limit`;
//! - guarding a request: `origin` (Host and Origin checks), `auth` (the
//!   token), `body_rate` (a minimum body rate), `body_drain`,
//!   `announced_length` (a body's declared length), `json_body` (a bounded
//!   JSON body), `request_log`;
//! - the endpoints: `routes`, `dashboard` (the operator's snapshot and the
//!   queue sampler behind its charts), `submission` (parsing and checking jobs),
//!   `image_references` (which images a job may name by URL or path),
//!   `enqueue` (with `durability`: when a submission counts as accepted),
//!   `idempotency`, `wait` (long-polls), `callbacks`, `metrics`,
//!   `openapi` (with `openapi_limits`: the refusals written into the spec;
//!   `routes::docs` renders it for people at `/docs`);
//!   `state`, `error`, `redis_deadline`, `cli`;
//! - the web page's example photos: `examples` (`--examples DIR`).
//!
//! The library exists so that the submission parsers can be fuzzed as the
//! server runs them (`fuzz/fuzz_targets/submission_multipart.rs` and `submission_json.rs`): [`submission`] is
//! public with [`server`] and [`cli`] (and [`durability`], a type of its
//! flags); everything else is private.

mod announced_length;
mod auth;
mod body_drain;
mod body_rate;
mod callbacks;
pub mod cli;
mod connections;
mod dashboard;
pub mod durability;
mod enqueue;
pub mod error;
mod examples;
mod fd_limit;
mod idempotency;
mod image_references;
mod json_body;
mod metrics;
mod openapi;
mod openapi_limits;
mod origin;
mod redis_deadline;
mod request_log;
mod routes;
pub mod server;
mod state;
pub mod submission;
mod wait;
