//! Putting the api together: routes, middleware, the events task, serving.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use verdict_shared::redis_url;
use verdict_shared::shutdown::Shutdown;

use crate::auth::{self, ApiToken};
use crate::body_drain;
use crate::body_rate::{self, BodyRate};
use crate::callbacks::{self, CallbackConfig};
use crate::cli::Args;
use crate::connections::{self, ConnectionLimits};
use crate::examples::Examples;
use crate::fd_limit;
use crate::image_references::ImageReferences;
use crate::origin::{self, OriginPolicy};
use crate::request_log;
use crate::routes;
use crate::state::{AppState, BatchLimits};
use crate::submission::Limits;
use crate::wait::{Waiters, subscriber};

/// Connections in the Redis pool. Each is multiplexed, so a few carry many
/// concurrent requests.
pub(crate) const POOL_SIZE: usize = 16;

/// The router with its middleware. With a token, every `/v1` route needs it
/// (checked before the body is read).
pub fn app(
    state: AppState,
    token: Option<ApiToken>,
    rate: BodyRate,
    origins: OriginPolicy,
) -> Router {
    let max_body = state.limits.max_body_bytes;
    // The largest body any route takes: a batch may be larger than a job.
    let largest_body = max_body.max(state.batch.max_bytes);
    routes::router()
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(origins, origin::check))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn(request_log::log_request)),
        )
        .layer(axum::middleware::from_fn(move |req, next| {
            body_drain::drain_unread(largest_body, req, next)
        }))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |req, next| {
            body_rate::enforce(rate, req, next)
        }))
        .with_state(state)
}

/// Serves until `shutdown` fires, then lets requests in flight finish.
pub async fn serve(mut args: Args, shutdown: Shutdown) -> anyhow::Result<()> {
    args.redis = args.redis.with_tls(&args.redis_tls)?;
    let token = ApiToken::from_env()?;
    // Checked before anything starts: a bad examples directory stops the
    // api with the reason, as a bad flag does.
    let examples = match &args.examples {
        Some(dir) => Examples::load(dir, args.max_image_bytes)
            .with_context(|| format!("--examples {}", dir.display()))?,
        None => Examples::default(),
    };
    let example_count = examples.list().len();
    let pool = args
        .redis
        .pool(POOL_SIZE)
        .with_context(|| format!("cannot use Redis at {}", args.redis))?;
    let waiters = Arc::new(Waiters::default());
    let subscribed = Arc::new(subscriber::Subscribed::default());
    let events = tokio::spawn(subscriber::run(
        args.redis.clone(),
        waiters.clone(),
        subscribed.clone(),
        shutdown.clone(),
    ));
    let callbacks = CallbackConfig::from_args(&args)?;
    // Callbacks are sent by the api processes, one consumer each (see
    // `crate::callbacks`); only those configured for callbacks send.
    let sender = callbacks.enabled().then(|| {
        tokio::spawn(callbacks::sender::run(
            args.redis.clone(),
            pool.clone(),
            callbacks.clone(),
            // A random id, not the PID: two machines may share a host name
            // and a PID (containers), and one consumer name would then be
            // two senders.
            format!(
                "api-{}-{}",
                verdict_shared::host::name_for_ids(),
                verdict_shared::unique_id::short()
            ),
            shutdown.clone(),
        ))
    });
    let sampler = tokio::spawn(crate::dashboard::sampler::run(
        pool.clone(),
        shutdown.clone(),
    ));
    let state = AppState {
        pool,
        waiters,
        subscribed,
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_image_bytes: args.max_image_bytes,
        },
        result_ttl: Duration::from_secs(args.result_ttl),
        shutdown: shutdown.clone(),
        callbacks: callbacks.clone(),
        batch: BatchLimits {
            max_bytes: args.max_batch_bytes,
            max_jobs: args.max_batch_jobs,
        },
        max_queue_depth: args.max_queue_depth,
        redis_timeout: Duration::from_millis(args.redis_timeout_ms),
        images: ImageReferences {
            hosts: args.images.allow_list().map_err(anyhow::Error::msg)?,
            root: args.images.image_root.clone(),
        },
        durability: args.durability,
        examples: Arc::new(examples),
    };
    let open_files = fd_limit::raise();
    let mut max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    if let Some(limit) = open_files {
        let room = usize::try_from(limit.saturating_sub(fd_limit::RESERVED)).unwrap_or(usize::MAX);
        if room.max(1) < max_connections {
            tracing::warn!(
                max_connections,
                open_file_limit = limit,
                lowered_to = room.max(1),
                "--max-connections is more than the open-file limit allows"
            );
            max_connections = room.max(1);
        }
    }
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(args.header_timeout),
        max_connections,
    };
    let rate = BodyRate {
        min_bytes_per_s: args.body_min_rate,
        grace: Duration::from_secs(args.body_grace),
    };
    let origins = OriginPolicy::new(args.bind, &args.allowed_hosts, &args.cors_origins);
    if origins.any_host() {
        tracing::warn!(
            bind = %args.bind,
            "bound to every address without --allowed-host: any Host header is accepted (give --allowed-host NAME to refuse DNS-rebinding requests)"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr().context("no local address")?;
    tracing::info!(
        addr = %addr,
        redis = %args.redis,
        transport = redis_url::transport(&args.redis),
        max_body_bytes = args.max_body_bytes,
        result_ttl_s = args.result_ttl,
        callbacks = callbacks.enabled(),
        max_queue_depth = args.max_queue_depth,
        redis_timeout_ms = args.redis_timeout_ms,
        durability = ?args.durability,
        api_token = token.is_some(),
        header_timeout_s = args.header_timeout,
        body_min_rate = args.body_min_rate,
        max_connections,
        open_file_limit = open_files,
        examples = example_count,
        "listening"
    );
    let mut stop = shutdown.clone();
    connections::serve(
        listener,
        app(state, token, rate, origins),
        limits,
        async move {
            stop.recv().await;
        },
    )
    .await;
    events.abort();
    sampler.abort();
    if let Some(sender) = sender {
        sender.abort();
    }
    tracing::info!("stopped");
    Ok(())
}
