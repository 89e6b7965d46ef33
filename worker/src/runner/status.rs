//! What the worker is doing, as its heartbeat reports it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use verdict_shared::job::JobId;

/// Jobs finished and jobs in hand, shared by the job tasks and the heartbeat.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    jobs_done: AtomicU64,
    in_hand: Mutex<Vec<JobId>>,
}

impl WorkerStatus {
    /// A job was started.
    pub fn took(&self, job: JobId) {
        self.lock().push(job);
    }

    /// A job left the worker's hands; `finished` if it was finished (done or
    /// failed) by this worker.
    pub fn released(&self, job: JobId, finished: bool) {
        self.lock().retain(|held| *held != job);
        if finished {
            self.jobs_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn jobs_done(&self) -> u64 {
        self.jobs_done.load(Ordering::Relaxed)
    }

    /// The oldest job in hand, if any.
    pub fn current_job(&self) -> Option<JobId> {
        self.lock().first().copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JobId>> {
        self.in_hand
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_finished_jobs_and_tracks_the_one_in_hand() {
        let status = WorkerStatus::default();
        let (a, b) = (JobId::new(), JobId::new());
        status.took(a);
        status.took(b);
        assert_eq!(status.current_job(), Some(a));
        status.released(a, true);
        assert_eq!(status.current_job(), Some(b));
        status.released(b, false);
        assert_eq!(status.current_job(), None);
        assert_eq!(status.jobs_done(), 1);
    }
}
