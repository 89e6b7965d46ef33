//! The requests waiting for jobs to end, by job id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use verdict_shared::job::JobId;

/// Who waits for which job.
#[derive(Debug, Default)]
pub struct Waiters {
    by_job: Mutex<HashMap<JobId, Vec<(u64, Arc<Notify>)>>>,
    next_token: AtomicU64,
}

/// One waiting request; unregisters itself when dropped.
#[derive(Debug)]
pub struct Waiter {
    waiters: Arc<Waiters>,
    job: JobId,
    token: u64,
    notify: Arc<Notify>,
}

impl Waiters {
    /// Registers a waiter for `job`. Any event for `job` from now on wakes it,
    /// even one that arrives before it starts waiting.
    pub fn register(self: &Arc<Self>, job: JobId) -> Waiter {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        self.lock()
            .entry(job)
            .or_default()
            .push((token, notify.clone()));
        Waiter {
            waiters: self.clone(),
            job,
            token,
            notify,
        }
    }

    /// Wakes the waiters of `job` (its state changed).
    pub fn notify(&self, job: &JobId) {
        if let Some(list) = self.lock().get(job) {
            for (_, notify) in list {
                notify.notify_one();
            }
        }
    }

    /// Wakes every waiter (events may have been missed: read again).
    pub fn wake_all(&self) {
        for list in self.lock().values() {
            for (_, notify) in list {
                notify.notify_one();
            }
        }
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Vec<(u64, Arc<Notify>)>>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every change is a single push or retain), so poisoning is ignored.
        self.by_job
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Waiter {
    /// Waits for the next event for this job (returns at once if one came
    /// since the last call).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut map = self.waiters.lock();
        if let Some(list) = map.get_mut(&self.job) {
            list.retain(|(token, _)| *token != self.token);
            if list.is_empty() {
                map.remove(&self.job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn an_event_before_the_wait_is_not_lost() {
        let waiters = Arc::new(Waiters::default());
        let job = JobId::new();
        let waiter = waiters.register(job);
        waiters.notify(&job);
        tokio::time::timeout(Duration::from_secs(1), waiter.changed())
            .await
            .expect("the stored wake-up is seen");
    }

    #[tokio::test]
    async fn only_the_jobs_waiters_wake_and_drop_unregisters() {
        let waiters = Arc::new(Waiters::default());
        let (a, b) = (JobId::new(), JobId::new());
        let wa = waiters.register(a);
        let wb = waiters.register(b);
        assert_eq!(waiters.len(), 2);
        waiters.notify(&a);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), wb.changed())
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), wa.changed())
                .await
                .is_ok()
        );
        drop(wa);
        assert_eq!(waiters.len(), 1);
        waiters.wake_all();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), wb.changed())
                .await
                .is_ok()
        );
        drop(wb);
        assert_eq!(waiters.len(), 0);
    }
}
