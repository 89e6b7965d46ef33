//! The requests waiting for jobs to end, by job id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use verdict_shared::job::JobId;

/// The waiters of each job: (registration token, its inbox).
type ByJob = HashMap<JobId, Vec<(u64, Arc<Inbox>)>>;

/// Who waits for which job.
#[derive(Debug, Default)]
pub struct Waiters {
    by_job: Mutex<ByJob>,
    next_token: AtomicU64,
    /// Live [`Waiter`]s: the requests waiting now.
    requests: AtomicUsize,
}

/// Where a waiting request is told which of its jobs had an event.
#[derive(Debug, Default)]
struct Inbox {
    notify: Notify,
    /// The jobs with an event since the request last looked.
    woken: Mutex<Vec<JobId>>,
}

/// One waiting request, for one job or several; unregisters itself when
/// dropped.
#[derive(Debug)]
pub struct Waiter {
    waiters: Arc<Waiters>,
    /// Each job waited for, with its registration's token.
    jobs: Vec<(JobId, u64)>,
    inbox: Arc<Inbox>,
}

impl Waiters {
    /// Registers a waiter for `job`. Any event for `job` from now on wakes it,
    /// even one that arrives before it starts waiting.
    pub fn register(self: &Arc<Self>, job: JobId) -> Waiter {
        self.register_all(&[job])
    }

    /// Registers one waiter for every job of `jobs`: an event for any of
    /// them wakes it, and [`Waiter::take_woken`] says which.
    pub fn register_all(self: &Arc<Self>, jobs: &[JobId]) -> Waiter {
        let inbox = Arc::new(Inbox::default());
        let mut map = self.lock();
        let jobs = jobs
            .iter()
            .map(|&job| {
                let token = self.next_token.fetch_add(1, Ordering::Relaxed);
                map.entry(job).or_default().push((token, inbox.clone()));
                (job, token)
            })
            .collect();
        drop(map);
        self.requests.fetch_add(1, Ordering::Relaxed);
        Waiter {
            waiters: self.clone(),
            jobs,
            inbox,
        }
    }

    /// Wakes the waiters of `job` (its state changed).
    pub fn notify(&self, job: &JobId) {
        if let Some(list) = self.lock().get(job) {
            for (_, inbox) in list {
                inbox.wake(*job);
            }
        }
    }

    /// Wakes every waiter (events may have been missed: read again).
    pub fn wake_all(&self) {
        for (job, list) in self.lock().iter() {
            for (_, inbox) in list {
                inbox.wake(*job);
            }
        }
    }

    /// How many requests are waiting (one for several jobs counts once).
    pub fn len(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, ByJob> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every change is a single push or retain), so poisoning is ignored.
        self.by_job
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inbox {
    fn wake(&self, job: JobId) {
        lock(&self.woken).push(job);
        self.notify.notify_one();
    }
}

impl Waiter {
    /// Waits for the next event for one of its jobs (returns at once if one
    /// came since the last call).
    pub async fn changed(&self) {
        self.inbox.notify.notified().await;
    }

    /// The jobs that had an event since the last call, each once.
    pub fn take_woken(&self) -> Vec<JobId> {
        let mut woken = std::mem::take(&mut *lock(&self.inbox.woken));
        woken.sort_unstable();
        woken.dedup();
        woken
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.waiters.requests.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.waiters.lock();
        for (job, token) in &self.jobs {
            if let Some(list) = map.get_mut(job) {
                list.retain(|(t, _)| t != token);
                if list.is_empty() {
                    map.remove(job);
                }
            }
        }
    }
}

/// Locks an inbox's list; a panic while holding it cannot leave a `Vec`
/// half-changed, so poisoning is ignored.
fn lock(woken: &Mutex<Vec<JobId>>) -> MutexGuard<'_, Vec<JobId>> {
    woken
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    #[tokio::test]
    async fn one_waiter_for_several_jobs_learns_which_had_events() {
        let waiters = Arc::new(Waiters::default());
        let (a, b, c) = (JobId::new(), JobId::new(), JobId::new());
        let other = waiters.register(b);
        let waiter = waiters.register_all(&[a, b, c]);
        assert_eq!(waiters.len(), 2, "two requests wait");
        assert!(waiter.take_woken().is_empty());
        waiters.notify(&c);
        waiters.notify(&a);
        waiters.notify(&c);
        tokio::time::timeout(Duration::from_secs(1), waiter.changed())
            .await
            .expect("woken");
        let mut expected = vec![a, c];
        expected.sort_unstable();
        assert_eq!(waiter.take_woken(), expected);
        assert!(waiter.take_woken().is_empty(), "each event is told once");
        waiters.wake_all();
        assert_eq!(waiter.take_woken().len(), 3);
        assert_eq!(other.take_woken(), vec![b]);
        drop(waiter);
        assert_eq!(waiters.len(), 1);
        assert_eq!(waiters.lock().len(), 1, "dropping unregisters every job");
        drop(other);
        assert_eq!(waiters.len(), 0);
        assert!(waiters.lock().is_empty());
    }
}
