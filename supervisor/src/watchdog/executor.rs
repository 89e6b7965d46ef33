//! Carrying out what the supervisor decided: starting processes, sending
//! signals, removing PID files, saving the configuration, logging and
//! answering `fleet` commands.
//!
//! This is the only place where the supervisor's decisions touch the world.
//! A start's result goes back to the supervisor at once, as
//! [`Event::Spawned`], and what it decides then is carried out before the rest.

use std::collections::VecDeque;
use std::path::Path;

use crate::pidfile;
use nix::unistd::Pid;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::control::protocol::Response;

use super::child;
use super::event::{Action, Event, Level, Moment};
use super::supervisor::Supervisor;

/// Hands `event` to the supervisor and carries out every action it leads to.
/// A [`Action::Reply`] goes to `reply`, when the event came with one.
pub fn dispatch(
    supervisor: &mut Supervisor,
    event: Event,
    mut reply: Option<oneshot::Sender<Response>>,
) {
    let mut queue: VecDeque<Action> = supervisor.handle(event, Moment::current()).into();
    while let Some(action) = queue.pop_front() {
        let Some(event) = carry_out(action, &mut reply) else {
            continue;
        };
        let next = supervisor.handle(event, Moment::current());
        for action in next.into_iter().rev() {
            queue.push_front(action);
        }
    }
}

/// Does one action; a start returns the event that reports its result.
fn carry_out(action: Action, reply: &mut Option<oneshot::Sender<Response>>) -> Option<Event> {
    match action {
        Action::Spawn { name, launch } => {
            let result = child::spawn(&launch).map_err(|err| err.to_string());
            return Some(Event::Spawned { name, result });
        }
        Action::Signal { name, pid, signal } => {
            if let Err(err) = nix::sys::signal::kill(Pid::from_raw(pid as i32), signal) {
                debug!(name = %name, pid, error = %err, "cannot send {signal} to {name}");
            }
        }
        Action::ClearPidFile { name, path } => clear_pid_file(&name, &path),
        Action::SaveConfig { path, config } => {
            if let Err(err) = config.save(&path) {
                warn!(error = %err, "cannot record the new worker count in {}", path.display());
            }
        }
        Action::Log {
            level,
            name,
            pid,
            message,
        } => log(level, name.as_deref(), pid, &message),
        Action::Reply(response) => {
            if let Some(reply) = reply.take() {
                let _ = reply.send(response);
            }
        }
    }
    None
}

/// The process is gone, so its lock is free: remove the file, unless a fork
/// of it (Redis's rewrite child) still holds it.
fn clear_pid_file(name: &str, path: &Path) {
    match pidfile::remove_if_stale(path) {
        Ok(pidfile::Probe::Running { .. }) => warn!(
            name = %name,
            "{name} exited but its PID file is still locked (by a child of it?)"
        ),
        Ok(_) => {}
        Err(err) => warn!(name = %name, error = %err, "cannot remove the PID file"),
    }
}

fn log(level: Level, name: Option<&str>, pid: Option<u32>, message: &str) {
    match (level, name) {
        (Level::Debug, _) => debug!(pid, "{message}"),
        (Level::Info, Some(name)) => info!(name, pid, "{message}"),
        (Level::Info, None) => info!("{message}"),
        (Level::Warn, Some(name)) => warn!(name, pid, "{message}"),
        (Level::Warn, None) => warn!("{message}"),
        (Level::Error, Some(name)) => error!(name, pid, "{message}"),
        (Level::Error, None) => error!("{message}"),
    }
}
