//! The protocol's guarantee that issue 6 builds on: a finished job is never
//! moved again. A second finish (a late result from a worker presumed dead)
//! is refused and counted; a redelivered entry of a finished job is skipped.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use verdict_shared::job::{JobError, JobState};
use verdict_shared::queue::claim::read_new;
use verdict_shared::queue::finish::finish;
use verdict_shared::queue::metrics::{Amount, Increment};
use verdict_shared::queue::read::read_job;
use verdict_shared::queue::{Finish, Outcome, Start};

use crate::{QueueRedis, submit_tiny_job};

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_job_is_never_moved_again() {
    let (_queue, mut conn) = QueueRedis::start().await;

    let id = submit_tiny_job(&mut conn).await;

    let entries = read_new(&mut conn, "first", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.job, Some(id));
    let Start::Run(started) = entry.start(&mut conn, "first", 0).await.unwrap() else {
        panic!("the job should start");
    };
    assert_eq!(started.job.state, JobState::Running);
    assert_eq!(started.job.attempts, 1);
    assert_eq!(started.image, b"\x89PN");

    // The first finish wins, and adds its metrics with it.
    let done = Outcome::Done(Vec::new());
    let metrics = [
        Increment {
            field: "verdicts:yes".into(),
            by: Amount::Count(2),
        },
        Increment {
            field: "inference:sum".into(),
            by: Amount::Seconds(0.25),
        },
    ];
    let first = finish(&mut conn, id, &entry.entry_id, "first", &done, &metrics)
        .await
        .unwrap();
    assert!(matches!(first, Finish::Finished { .. }), "{first:?}");
    let after_first = read_job(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(after_first.state, JobState::Done);
    let counted: HashMap<String, String> = conn.hgetall("verdict:metrics").await.unwrap();
    let expected: HashMap<String, String> = [("verdicts:yes", "2"), ("inference:sum", "0.25")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(counted, expected);

    // A late finish with another outcome is refused and changes nothing.
    let late = Outcome::Failed(JobError::new("model_error", "late"));
    let second = finish(
        &mut conn,
        id,
        &entry.entry_id,
        "presumed-dead",
        &late,
        &metrics,
    )
    .await
    .unwrap();
    assert_eq!(second, Finish::Stale(JobState::Done));
    let after_second = read_job(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(after_second, after_first, "the job was not touched");
    let late_finishes: Option<u64> = conn.hget("verdict:stats", "late_finishes").await.unwrap();
    assert_eq!(late_finishes, Some(1));
    let counted_after: HashMap<String, String> = conn.hgetall("verdict:metrics").await.unwrap();
    assert_eq!(counted_after, expected, "a late finish adds no metrics");

    // Starting it again (a redelivered entry) is refused too.
    let again = entry.start(&mut conn, "second", 0).await.unwrap();
    assert!(matches!(again, Start::Skip(JobState::Done)), "{again:?}");
    let after_start = read_job(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(after_start, after_first);
    assert_eq!(after_start.attempts, 1);
}
