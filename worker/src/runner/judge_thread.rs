//! The worker's one judging slot: a thread of its own that judges the jobs
//! handed to it one after another, in the order they come.
//!
//! A worker judges one job at a time (what runs in parallel is the model's
//! own threads, `--threads`). The jobs of a read wait their turn in this
//! thread's queue. Before, each took the one permit and then a thread of
//! tokio's blocking pool, so every job cost two thread wake-ups in a row (the
//! pool thread's, then the run loop's to hand the permit on) with nothing
//! judged in between; here the thread takes the next job as soon as it ends
//! one, and sleeps only when its queue is empty.
//!
//! A judge that panics fails (or retries) that job only
//! ([`super::outcome::unjudged`]); the thread goes on with the next one.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

type Work = Box<dyn FnOnce() + Send>;

/// Hands work to the judge thread. Dropping it ends the thread once the work
/// already handed over is done.
pub struct JudgeThread {
    work: mpsc::Sender<Work>,
}

/// Why a piece of work gave no answer.
pub enum Unjudged {
    /// It panicked, with this payload.
    Panicked(Box<dyn Any + Send>),
    /// The thread is gone (it could not take the work, or dropped it).
    Gone,
}

/// A piece of work's answer, and how long the thread spent on it (zero when
/// it never ran).
pub struct Judged<T> {
    pub answer: Result<T, Unjudged>,
    pub took: Duration,
}

impl JudgeThread {
    /// Starts the thread (named `judge`).
    pub fn start() -> std::io::Result<JudgeThread> {
        let (work, queue) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("judge".to_owned())
            .spawn(move || {
                for work in queue {
                    work();
                }
            })?;
        Ok(JudgeThread { work })
    }

    /// Runs `work` on the thread after the work handed over before it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Judged<T> {
        let (answer, answered) = oneshot::channel();
        let job: Work = Box::new(move || {
            let began = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(work));
            // The asker may have stopped waiting: nothing to tell then.
            let _ = answer.send((result, began.elapsed()));
        });
        if self.work.send(job).is_err() {
            return Judged {
                answer: Err(Unjudged::Gone),
                took: Duration::ZERO,
            };
        }
        match answered.await {
            Ok((result, took)) => Judged {
                answer: result.map_err(Unjudged::Panicked),
                took,
            },
            Err(_) => Judged {
                answer: Err(Unjudged::Gone),
                took: Duration::ZERO,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn work_runs_in_the_order_handed_over_and_a_panic_ends_only_its_own() {
        let thread = JudgeThread::start().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let note = |i: u32| {
            let order = order.clone();
            move || {
                order.lock().unwrap().push(i);
                i * 10
            }
        };
        let panics = || -> u32 { std::panic::panic_any("boom") };
        let (a, b, c, d) = tokio::join!(
            thread.run(note(1)),
            thread.run(panics),
            thread.run(note(2)),
            thread.run(note(3)),
        );
        assert_eq!(a.answer.ok(), Some(10));
        match b.answer {
            Err(Unjudged::Panicked(payload)) => {
                assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
            }
            _ => panic!("the panic is handed back"),
        }
        assert_eq!(c.answer.ok(), Some(20));
        assert_eq!(d.answer.ok(), Some(30));
        assert_eq!(*order.lock().unwrap(), [1, 2, 3]);
        // All on one thread, not the asker's.
        let names = thread
            .run(|| std::thread::current().name().map(str::to_owned))
            .await;
        assert_eq!(names.answer.ok().flatten().as_deref(), Some("judge"));
    }
}
