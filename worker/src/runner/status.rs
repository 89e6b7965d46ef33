//! What the worker is doing, as its heartbeat reports it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use verdict_shared::job::JobId;

/// Jobs finished and jobs in hand (with their stream entries, which the
/// heartbeat renews so that no other worker reclaims them), shared by the job
/// tasks and the heartbeat.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    jobs_done: AtomicU64,
    in_hand: Mutex<Vec<(JobId, String)>>,
}

impl WorkerStatus {
    /// A job was started from the stream entry `entry_id`.
    pub fn took(&self, job: JobId, entry_id: &str) {
        self.lock().push((job, entry_id.to_owned()));
    }

    /// A job left the worker's hands; `finished` if it was finished (done or
    /// failed) by this worker.
    pub fn released(&self, job: JobId, finished: bool) {
        self.lock().retain(|(held, _)| *held != job);
        if finished {
            self.jobs_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The stream entries of the jobs in hand.
    pub fn entries_in_hand(&self) -> Vec<String> {
        self.lock().iter().map(|(_, entry)| entry.clone()).collect()
    }

    pub fn jobs_done(&self) -> u64 {
        self.jobs_done.load(Ordering::Relaxed)
    }

    /// The oldest job in hand, if any.
    pub fn current_job(&self) -> Option<JobId> {
        self.lock().first().map(|(job, _)| *job)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(JobId, String)>> {
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
        status.took(a, "1-0");
        status.took(b, "2-0");
        assert_eq!(status.current_job(), Some(a));
        assert_eq!(status.entries_in_hand(), ["1-0", "2-0"]);
        status.released(a, true);
        assert_eq!(status.current_job(), Some(b));
        status.released(b, false);
        assert_eq!(status.current_job(), None);
        assert!(status.entries_in_hand().is_empty());
        assert_eq!(status.jobs_done(), 1);
    }
}
