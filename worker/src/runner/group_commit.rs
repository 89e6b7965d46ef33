//! Group commit: one Redis call for the requests that came together. A
//! worker starts and finishes the jobs of one read concurrently; a request
//! (start this job, finish that one) made while another call of the same
//! kind is in flight waits for it, then goes out with every request that
//! came meanwhile, in one call (`start.lua` and `finish.lua` each take
//! several jobs). A request made while no call is in flight goes out at
//! once, alone: nothing ever waits for a group to fill.
//!
//! Each request still gets its own answer. A Redis error reaches every
//! request of the call ([`QueueError::duplicate`]), and each caller handles
//! it as if its own call had failed (both scripts are safe to retry).

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use verdict_shared::queue::QueueError;

/// A request waiting for a call, and where its answer goes.
struct Waiting<T, R> {
    request: T,
    answer: oneshot::Sender<Result<R, QueueError>>,
}

/// Requests of one kind (`T`, answered by an `R` each), grouped.
pub(crate) struct GroupCommit<T, R> {
    /// The requests that no call has taken yet.
    waiting: Mutex<Vec<Waiting<T, R>>>,
    /// Held by the caller whose call is in flight; the others queue on it.
    turn: tokio::sync::Mutex<()>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        GroupCommit {
            waiting: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T, R> GroupCommit<T, R> {
    /// Answers `request`: in a call `run` makes for it and the requests that
    /// came while the previous call was in flight, or in a call made by
    /// another caller. `run` answers the requests it is given one for one,
    /// in order.
    pub(crate) async fn call(
        &self,
        request: T,
        run: impl AsyncFnOnce(&[T]) -> Result<Vec<R>, QueueError>,
    ) -> Result<R, QueueError> {
        let (answer, mut answered) = oneshot::channel();
        self.waiting().push(Waiting { request, answer });
        let _turn = self.turn.lock().await;
        match answered.try_recv() {
            // A call made while this one waited for its turn took it.
            Ok(answer) => return answer,
            Err(oneshot::error::TryRecvError::Closed) => return Err(dropped_in_flight()),
            // Not taken yet: it is still waiting, and this call takes it.
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let (requests, answers): (Vec<T>, Vec<_>) = std::mem::take(&mut *self.waiting())
            .into_iter()
            .map(|waiting| (waiting.request, waiting.answer))
            .unzip();
        match run(&requests).await {
            Ok(replies) if replies.len() == requests.len() => {
                for (answer, reply) in answers.into_iter().zip(replies) {
                    let _ = answer.send(Ok(reply));
                }
            }
            Ok(replies) => {
                let err = QueueError::Corrupt(format!(
                    "{} answers for {} requests",
                    replies.len(),
                    requests.len()
                ));
                for answer in answers {
                    let _ = answer.send(Err(err.duplicate()));
                }
            }
            Err(err) => {
                for answer in answers {
                    let _ = answer.send(Err(err.duplicate()));
                }
            }
        }
        answered.await.unwrap_or_else(|_| Err(dropped_in_flight()))
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<Waiting<T, R>>> {
        // Pushing and taking are single moves: a panic elsewhere while the
        // lock was held cannot leave the list half-changed.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The call that took a request was dropped before it answered (the worker
/// is being torn down): the request is handled like one Redis did not get.
fn dropped_in_flight() -> QueueError {
    QueueError::Redis(redis::RedisError::from(std::io::Error::other(
        "the call that took this request was dropped before it answered",
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_come_during_a_call_share_the_next_one() {
        let grouped = Arc::new(GroupCommit::<u32, u32>::default());
        let calls = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        // The first request's call is held in flight until released.
        let first = tokio::spawn({
            let (grouped, calls, mut released) = (grouped.clone(), calls.clone(), released.clone());
            async move {
                grouped
                    .call(0, async |requests: &[u32]| {
                        calls.lock().unwrap().push(requests.to_vec());
                        released.wait_for(|r| *r).await.unwrap();
                        Ok(requests.iter().map(|r| r * 10).collect())
                    })
                    .await
            }
        });
        while calls.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let others: Vec<_> = (1..=5)
            .map(|n| {
                let (grouped, calls) = (grouped.clone(), calls.clone());
                tokio::spawn(async move {
                    grouped
                        .call(n, async |requests: &[u32]| {
                            calls.lock().unwrap().push(requests.to_vec());
                            Ok(requests.iter().map(|r| r * 10).collect())
                        })
                        .await
                })
            })
            .collect();
        while grouped.waiting().len() < 5 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 0);
        for (n, other) in (1..=5).zip(others) {
            assert_eq!(other.await.unwrap().unwrap(), n * 10, "each its own answer");
        }
        let calls = calls.lock().unwrap().clone();
        assert_eq!(
            calls.len(),
            2,
            "one call alone, then one for the rest: {calls:?}"
        );
        assert_eq!(calls[0], vec![0]);
        let mut second = calls[1].clone();
        second.sort_unstable();
        assert_eq!(second, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn an_error_reaches_every_request_of_the_call_and_a_short_answer_is_refused() {
        let grouped = GroupCommit::<u32, u32>::default();
        let failed = grouped
            .call(1, async |_: &[u32]| {
                Err(QueueError::Corrupt("the script refused".into()))
            })
            .await;
        assert!(
            matches!(&failed, Err(QueueError::Corrupt(what)) if what == "the script refused"),
            "{failed:?}"
        );
        let short = grouped.call(2, async |_: &[u32]| Ok(Vec::new())).await;
        assert!(matches!(short, Err(QueueError::Corrupt(_))), "{short:?}");
        // Nothing is left waiting: the next call is made for its own request.
        let next = grouped
            .call(3, async |requests: &[u32]| Ok(requests.to_vec()))
            .await;
        assert_eq!(next.unwrap(), 3);
    }
}
