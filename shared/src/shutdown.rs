//! Telling every task of a process that it is time to stop.
//!
//! In the style of tokio's mini-redis: one [`ShutdownTrigger`] fires once, and
//! any number of [`Shutdown`] listeners (cheap clones) see it. A task checks
//! [`Shutdown::is_shutdown`] between units of work and awaits
//! [`Shutdown::recv`] where it would otherwise wait for something else, so a
//! process stops taking new work but finishes what it holds. One type replaces
//! a scattering of flags and channels.

use std::sync::Arc;

use tokio::sync::watch;

/// Fires the shutdown. Dropping it without firing does not shut anything down.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: Arc<watch::Sender<bool>>,
}

/// Listens for the shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A new trigger and its first listener.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx: Arc::new(tx) }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Tells every listener to stop. Firing twice is harmless.
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    /// Another listener for this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A listener that is never told to stop (for tests and one-shot tools).
    pub fn never() -> Shutdown {
        let (trigger, shutdown) = channel();
        // Keep the sender alive forever so `recv` pends forever.
        std::mem::forget(trigger);
        shutdown
    }

    /// Whether the shutdown has fired.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until the shutdown fires (at once if it already has).
    ///
    /// A trigger dropped without firing leaves this pending forever: losing the
    /// trigger must not stop a process.
    pub async fn recv(&mut self) {
        if self.rx.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A listener fired by SIGTERM or SIGINT (Ctrl-C), for a process's `main`.
///
/// The signal handlers are installed before this returns, so a signal that
/// arrives at any later moment is seen. The handlers stay installed: a second
/// SIGTERM does not kill the process mid-job (SIGKILL does). The trigger is
/// returned too, so that the process can also stop itself (a fatal error).
pub fn on_terminate_signals() -> std::io::Result<(ShutdownTrigger, Shutdown)> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (trigger, shutdown) = channel();
    let fire = trigger.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing the work in hand");
        fire.fire();
    });
    Ok((trigger, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_sees_the_shutdown() {
        let (trigger, mut a) = channel();
        let mut b = a.clone();
        let mut c = trigger.subscribe();
        assert!(!a.is_shutdown());
        trigger.fire();
        a.recv().await;
        b.recv().await;
        c.recv().await;
        assert!(a.is_shutdown() && b.is_shutdown() && c.is_shutdown());
    }

    #[tokio::test]
    async fn dropping_the_trigger_does_not_stop_anything() {
        let (trigger, mut shutdown) = channel();
        drop(trigger);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), shutdown.recv()).await;
        assert!(waited.is_err());
        assert!(!shutdown.is_shutdown());
    }
}
