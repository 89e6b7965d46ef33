//! The watchdog: the one process that owns a fleet.
//!
//! It holds `run/watchdog.pid` for its life, starts every process as its child
//! (see [`child`]), learns of their deaths from SIGCHLD ([`reaper`]), watches
//! readiness and heartbeats ([`health`]), and answers `fleet` commands on its
//! control socket ([`control`]). Each of those is an [`event::Event`] for the
//! [`supervisor`], a pure state machine that keeps one
//! [`supervisor::slot::Slot`] per process, in a [`supervisor::phase::Phase`],
//! and decides restarts ([`backoff`]) and `down`; the [`executor`] carries out its
//! [`event::Action`]s.
//!
//! It runs on a single-threaded tokio runtime on the main thread. That is not
//! a performance choice: `PR_SET_PDEATHSIG` fires when the *thread* that forked
//! a child exits, so children must be forked by a thread that lives exactly as
//! long as the process. It also keeps `fork` in a process with one thread.
//!
//! Signals: SIGTERM and SIGINT stop the fleet in order (like `fleet down`);
//! SIGHUP is ignored (closing a terminal must not stop a fleet). If the
//! watchdog is killed outright, every child gets SIGTERM from the kernel; see
//! `docs/fleet.md` for what happens then and how `fleet up` recovers.

pub mod backoff;
pub mod child;
pub mod control;
pub mod event;
pub mod executor;
pub mod health;
pub mod reaper;
pub mod roles;
pub mod supervisor;

use std::time::Duration;

use crate::pidfile::{AcquireError, PidFile};
use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::config::FleetConfig;
use crate::control::protocol::{Request, Response};
use crate::home::Home;
use crate::recovery;

use self::event::{Event, Moment};
use self::executor::dispatch;
use self::health::{HealthReport, Prober, Targets};
use self::supervisor::Supervisor;

/// How often the health probe runs.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Why the watchdog could not run.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("a fleet is already running in {home} (watchdog PID {pid})")]
    AlreadyRunning { home: String, pid: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Runs a watchdog for `config` until the fleet is down. Blocks.
pub fn run(home: Home, config: FleetConfig) -> Result<(), WatchdogError> {
    let pid_file = match PidFile::acquire(&home.pid_file("watchdog")) {
        Ok(pid_file) => pid_file,
        Err(AcquireError::Running { pid }) => {
            return Err(WatchdogError::AlreadyRunning {
                home: home.root().display().to_string(),
                pid: pid.map_or_else(|| "unknown".into(), |p| p.to_string()),
            });
        }
        Err(err) => return Err(anyhow::Error::from(err).into()),
    };
    info!(pid = std::process::id(), home = %home.root().display(), "watchdog started");

    // Grandchildren whose parent dies (a Redis fork) are reparented to us and
    // reaped, instead of to init.
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        warn!(error = %err, "cannot become a child subreaper");
    }

    let sweep = recovery::sweep(&home, config.policy.stop_timeout())
        .context("cannot clean up the run directory")?;
    for line in sweep.lines() {
        warn!("{line}");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(event_loop(home.clone(), config));
    // Whatever happened, leave no socket behind; the PID file goes with `pid_file`.
    let _ = std::fs::remove_file(home.control_socket());
    drop(pid_file);
    result.map_err(WatchdogError::Other)
}

async fn event_loop(home: Home, config: FleetConfig) -> anyhow::Result<()> {
    // Signal handlers first: a child that dies before we listen for SIGCHLD
    // would otherwise wait for the next death to be noticed.
    let mut sigchld = signal(SignalKind::child()).context("cannot listen for SIGCHLD")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;

    let listener = control::bind(&home.control_socket())?;
    let (request_tx, mut requests) = mpsc::channel::<control::Incoming>(16);
    tokio::spawn(control::serve(listener, request_tx));

    let stop_timeout = config.policy.stop_timeout();
    let mut supervisor = Supervisor::new(config.clone(), home, Moment::current());
    dispatch(&mut supervisor, Event::Start, None);

    let (targets_tx, targets_rx) = watch::channel(supervisor.probe_targets());
    let (health_tx, mut health) = mpsc::channel::<HealthReport>(4);
    tokio::spawn(probe_loop(
        Prober::new(config.redis(), &config.api_url()),
        targets_rx,
        health_tx,
    ));

    let mut down_waiters: Vec<oneshot::Sender<Response>> = Vec::new();
    let far_future = || tokio::time::Instant::now() + Duration::from_secs(3600);

    loop {
        let deadline = supervisor
            .next_deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(far_future);
        tokio::select! {
            _ = sigchld.recv() => {
                for (pid, exit) in reaper::reap_all() {
                    dispatch(&mut supervisor, Event::Exited { pid, exit }, None);
                }
            }
            _ = sigterm.recv() => {
                info!("SIGTERM: stopping the fleet");
                dispatch(&mut supervisor, Event::Down { timeout: stop_timeout }, None);
            }
            _ = sigint.recv() => {
                info!("SIGINT: stopping the fleet");
                dispatch(&mut supervisor, Event::Down { timeout: stop_timeout }, None);
            }
            _ = sighup.recv() => {
                info!("SIGHUP ignored: the fleet keeps running (use `fleet down` to stop it)");
            }
            _ = tokio::time::sleep_until(deadline) => {
                dispatch(&mut supervisor, Event::Tick, None);
            }
            Some(report) = health.recv() => {
                dispatch(&mut supervisor, Event::Health(report), None);
            }
            Some((request, reply)) = requests.recv() => {
                if let Some(waiter) = on_request(&mut supervisor, request, reply) {
                    down_waiters.push(waiter);
                }
            }
        }
        // Workers come and go, the api becomes ready: keep the probe current.
        let targets = supervisor.probe_targets();
        if *targets_tx.borrow() != targets {
            let _ = targets_tx.send(targets);
        }
        if supervisor.is_down() {
            break;
        }
    }

    report_down(&supervisor, down_waiters).await;
    Ok(())
}

/// Answers a `fleet` command, or hands it to the supervisor; a `down`'s
/// answer waits for the end, so its reply channel is returned to be kept.
fn on_request(
    supervisor: &mut Supervisor,
    request: Request,
    reply: oneshot::Sender<Response>,
) -> Option<oneshot::Sender<Response>> {
    let event = match request {
        Request::Status => {
            let _ = reply.send(Response::Status(supervisor.status(Moment::current())));
            return None;
        }
        Request::Restart {
            target,
            all_at_once,
        } => Event::Restart {
            target,
            all_at_once,
        },
        Request::Scale { workers } => Event::Scale { workers },
        Request::Down { timeout_ms } => {
            info!(timeout_ms, "down requested");
            let timeout = Duration::from_millis(timeout_ms);
            dispatch(supervisor, Event::Down { timeout }, None);
            return Some(reply);
        }
    };
    dispatch(supervisor, event, Some(reply));
    None
}

/// Logs how each process stopped and answers every `fleet down` waiting.
async fn report_down(supervisor: &Supervisor, down_waiters: Vec<oneshot::Sender<Response>>) {
    let report = supervisor.down_report();
    for entry in &report.stopped {
        info!(name = %entry.name, "{}: {}", entry.name, entry.how);
    }
    for waiter in down_waiters {
        let _ = waiter.send(Response::Down(report.clone()));
    }
    // Give the control tasks a moment to write the answers out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left = supervisor.live_pids();
    if !left.is_empty() {
        error!(?left, "exiting with processes still running");
    }
    info!("watchdog exiting");
}

async fn probe_loop(
    mut prober: Prober,
    targets: watch::Receiver<Targets>,
    reports: mpsc::Sender<HealthReport>,
) {
    let mut interval = tokio::time::interval(PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let current = targets.borrow().clone();
        let report = prober.probe(&current).await;
        if reports.send(report).await.is_err() {
            return;
        }
    }
}
