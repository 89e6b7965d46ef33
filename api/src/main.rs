//! `verdict-api`: the HTTP front of verdict.
//!
//! It validates submissions cheaply (sizes, magic bytes, sentences), stores
//! them in Redis for the workers, and serves jobs back, long-polling on Redis
//! pub/sub. It never decodes an image or runs the model. See `docs/api.md`
//! for the endpoints and `docs/protocol.md` for what it writes to Redis.
//!
//! - serving: `server` (routes and middleware put together), `connections`
//!   (the accept loop: header timeout, connection cap), `fd_limit`;
//! - guarding a request: `origin` (Host and Origin checks), `auth` (the
//!   token), `body_rate` (a minimum body rate), `body_drain`, `request_log`;
//! - the endpoints: `routes`, `submission` (parsing and checking jobs),
//!   `enqueue`, `idempotency`, `wait` (long-polls), `callbacks`, `metrics`,
//!   `openapi` (with `openapi_limits`: the refusals written into the spec);
//!   `state`, `error`, `redis_deadline`, `cli`.

mod auth;
mod body_drain;
mod body_rate;
mod callbacks;
mod cli;
mod connections;
mod enqueue;
mod error;
mod fd_limit;
mod idempotency;
mod metrics;
mod openapi;
mod openapi_limits;
mod origin;
mod redis_deadline;
mod request_log;
mod routes;
mod server;
mod state;
mod submission;
mod wait;

use std::process::ExitCode;

use clap::Parser;
use verdict_shared::{shutdown, telemetry};

fn main() -> ExitCode {
    let args = cli::Args::parse();
    telemetry::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (_trigger, shutdown) = shutdown::on_terminate_signals()?;
        server::serve(args, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "verdict-api failed");
            ExitCode::FAILURE
        }
    }
}
