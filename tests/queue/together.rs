//! Several jobs started in one `start.lua` call, or finished in one
//! `finish.lua` call (a worker's group commit): each job gets its own answer,
//! exactly as if it had been started or finished alone, and the call's
//! counters and metrics count only the jobs it changed.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;

use verdict_shared::job::{JobError, JobId, JobState};
use verdict_shared::queue::cancel::cancel;
use verdict_shared::queue::claim::{StreamEntry, read_new};
use verdict_shared::queue::finish::{Finishing, finish, finish_all};
use verdict_shared::queue::keys;
use verdict_shared::queue::metrics::{Amount, Increment};
use verdict_shared::queue::read::read_job;
use verdict_shared::queue::start::start_all;
use verdict_shared::queue::{Finish, Outcome, Start};

use crate::{QueueRedis, submit_tiny_job};

fn increments(yes: u64, inference: f64) -> Vec<Increment> {
    vec![
        Increment {
            field: "verdicts:yes".into(),
            by: Amount::Count(yes),
        },
        Increment {
            field: "inference:sum".into(),
            by: Amount::Seconds(inference),
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_finished_together_each_get_their_own_ending_and_are_counted_once() {
    let (queue, mut conn) = QueueRedis::start().await;

    // Five jobs, all started by one worker.
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(submit_tiny_job(&mut conn).await);
    }
    let entries: Vec<StreamEntry> = read_new(&mut conn, "w", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(entries.len(), 5);
    for entry in &entries {
        let started = entry.start(&mut conn, "w", 0).await.unwrap();
        assert!(matches!(started, Start::Run(_)), "{started:?}");
    }
    let entry_of = |id: JobId| {
        entries
            .iter()
            .find(|e| e.job == Some(id))
            .unwrap()
            .entry_id
            .clone()
    };

    // Job 3 was already finished by another worker (a reclaim), with its
    // own figures; job 4's record is gone.
    let early = Outcome::Done(Vec::new());
    let early_metrics = increments(10, 1.0);
    let first = finish(
        &mut conn,
        ids[3],
        &entry_of(ids[3]),
        "other",
        &early,
        &early_metrics,
    )
    .await
    .unwrap();
    assert!(matches!(first, Finish::Finished { .. }), "{first:?}");
    let _: () = conn.del(keys::job(&ids[4])).await.unwrap();
    let stats_before: HashMap<String, i64> = conn.hgetall("verdict:stats").await.unwrap();
    let metrics_before: HashMap<String, String> = conn.hgetall("verdict:metrics").await.unwrap();
    assert_eq!(metrics_before["verdicts:yes"], "10");

    let client = redis::Client::open(queue.server.unix_url()).unwrap();
    let mut events = client.get_async_pubsub().await.unwrap();
    events.subscribe("verdict:events").await.unwrap();

    // One call: two done, one failed, the stale one and the missing one.
    let done = Outcome::Done(Vec::new());
    let failed = Outcome::Failed(JobError::new("image_undecodable", "not an image"));
    let late = Outcome::Failed(JobError::new("model_error", "late"));
    let entry_ids: Vec<String> = ids.iter().map(|id| entry_of(*id)).collect();
    let metrics = [
        increments(2, 0.25),
        increments(3, 0.5),
        increments(0, 0.125),
        increments(100, 100.0),
        increments(1000, 1000.0),
    ];
    let outcomes = [&done, &done, &failed, &late, &done];
    let jobs: Vec<Finishing<'_>> = (0..5)
        .map(|i| Finishing {
            job_id: ids[i],
            entry_id: &entry_ids[i],
            outcome: outcomes[i],
            metrics: &metrics[i],
        })
        .collect();
    let answers = finish_all(&mut conn, "w", &jobs).await.unwrap();
    assert_eq!(answers.len(), 5);
    for (i, answer) in answers.iter().enumerate().take(3) {
        assert!(
            matches!(answer, Finish::Finished { .. }),
            "job {i}: {answer:?}"
        );
    }
    assert_eq!(answers[3], Finish::Stale(JobState::Done));
    assert_eq!(answers[4], Finish::Missing);

    // Each finished job holds its own ending, without its image, with its TTL.
    for (i, state) in [JobState::Done, JobState::Done, JobState::Failed]
        .into_iter()
        .enumerate()
    {
        let job = read_job(&mut conn, ids[i]).await.unwrap().unwrap();
        assert_eq!(job.state, state, "job {i}");
        let key = keys::job(&ids[i]);
        let has_image: bool = conn.hexists(&key, "image").await.unwrap();
        assert!(!has_image, "job {i} keeps no image");
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        assert!((1..=600).contains(&ttl), "job {i}'s result TTL: {ttl}");
    }
    let failed_job = read_job(&mut conn, ids[2]).await.unwrap().unwrap();
    assert_eq!(failed_job.error.unwrap().code, "image_undecodable");
    // The stale job kept its first ending.
    let stale = read_job(&mut conn, ids[3]).await.unwrap().unwrap();
    assert_eq!(stale.state, JobState::Done);
    assert_eq!(stale.worker.as_deref(), Some("other"));

    // Every entry is acknowledged and deleted.
    let stream_len: u64 = conn.xlen("verdict:jobs").await.unwrap();
    assert_eq!(stream_len, 0);
    let pending: redis::streams::StreamPendingReply =
        conn.xpending("verdict:jobs", "workers").await.unwrap();
    assert_eq!(pending.count(), 0);

    // Counted once each, and only the jobs this call finished.
    let stats: HashMap<String, i64> = conn.hgetall("verdict:stats").await.unwrap();
    let grew = |field: &str| {
        stats.get(field).copied().unwrap_or(0) - stats_before.get(field).copied().unwrap_or(0)
    };
    assert_eq!(grew("done"), 2);
    assert_eq!(grew("failed"), 1);
    assert_eq!(grew("late_finishes"), 1);
    let metrics_after: HashMap<String, String> = conn.hgetall("verdict:metrics").await.unwrap();
    assert_eq!(
        metrics_after["verdicts:yes"], "15",
        "10 before, then 2 + 3 + 0"
    );
    let inference: f64 = metrics_after["inference:sum"].parse().unwrap();
    assert!(
        (inference - 1.875).abs() < 1e-9,
        "1 + 0.25 + 0.5 + 0.125: {inference}"
    );

    // This minute's activity counts them too, and expires.
    let minutes: Vec<String> = conn.keys("verdict:minute:*").await.unwrap();
    assert_eq!(minutes.len(), 1, "{minutes:?}");
    let minute: HashMap<String, String> = conn.hgetall(&minutes[0]).await.unwrap();
    assert_eq!(minute["jobs:done"], "3", "job 3 alone, then two");
    assert_eq!(minute["jobs:failed"], "1");
    assert_eq!(minute["verdicts:yes"], "15");
    let minute_ttl: i64 = conn.ttl(&minutes[0]).await.unwrap();
    assert!(
        minute_ttl > 0,
        "the minute's activity expires: {minute_ttl}"
    );

    // The failure is among the recent failures; the late one is not.
    let failures: Vec<String> = conn.lrange("verdict:failures", 0, -1).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains(&ids[2].to_string()), "{failures:?}");

    // One event for each job this call ended, in order.
    let mut announced = Vec::new();
    let mut messages = events.on_message();
    while announced.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("an event for each finished job")
            .unwrap();
        announced.push(message.get_payload::<String>().unwrap());
    }
    let expected: Vec<String> = ids[..3].iter().map(ToString::to_string).collect();
    assert_eq!(announced, expected);
    let extra = tokio::time::timeout(Duration::from_millis(300), messages.next()).await;
    assert!(
        extra.is_err(),
        "no event for the stale or missing job: {extra:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_finish_is_refused_whole_and_changes_nothing() {
    let (_queue, mut conn) = QueueRedis::start().await;
    let id = submit_tiny_job(&mut conn).await;
    let entries = read_new(&mut conn, "w", 10, Duration::from_millis(100))
        .await
        .unwrap();
    let started = entries[0].start(&mut conn, "w", 0).await.unwrap();
    assert!(matches!(started, Start::Run(_)), "{started:?}");

    // A metric that is not a number, in the second job of the call: the
    // script refuses before it writes anything, so the first job is not
    // finished either.
    let done = Outcome::Done(Vec::new());
    let good = increments(1, 0.1);
    let bad = vec![Increment {
        field: "inference:sum".into(),
        by: Amount::Seconds(f64::NAN),
    }];
    let jobs = [
        Finishing {
            job_id: id,
            entry_id: &entries[0].entry_id,
            outcome: &done,
            metrics: &good,
        },
        Finishing {
            job_id: JobId::new(),
            entry_id: "1-1",
            outcome: &done,
            metrics: &bad,
        },
    ];
    let refused = finish_all(&mut conn, "w", &jobs).await;
    assert!(refused.is_err(), "{refused:?}");
    let job = read_job(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Running);
    let metrics: HashMap<String, String> = conn.hgetall("verdict:metrics").await.unwrap();
    assert!(metrics.is_empty(), "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_started_together_each_get_their_own_answer() {
    let (_queue, mut conn) = QueueRedis::start().await;

    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(submit_tiny_job(&mut conn).await);
    }
    let entries: Vec<StreamEntry> = read_new(&mut conn, "w", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(entries.len(), 6);
    // 0: new. 1: started once before (a rerun). 2: cancelled after the read.
    // 3: its record is gone. 4: started as often as allowed. 5: its record
    // lost its spec (corrupt).
    let _: () = conn.hset(keys::job(&ids[1]), "attempts", 1).await.unwrap();
    cancel(&mut conn, ids[2]).await.unwrap();
    let _: () = conn.del(keys::job(&ids[3])).await.unwrap();
    let _: () = conn.hset(keys::job(&ids[4]), "attempts", 3).await.unwrap();
    let _: () = conn.hdel(keys::job(&ids[5]), "spec").await.unwrap();
    let reruns_before: Option<i64> = conn.hget("verdict:stats", "reruns").await.unwrap();

    let jobs: Vec<(&str, JobId)> = entries
        .iter()
        .map(|e| (e.entry_id.as_str(), e.job.unwrap()))
        .collect();
    assert_eq!(
        jobs.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        ids,
        "read in submission order"
    );
    let answers = start_all(&mut conn, "w", 3, &jobs).await.unwrap();
    assert_eq!(answers.len(), 6);
    let mut answers = answers.into_iter();

    let Some(Ok(Start::Run(first))) = answers.next() else {
        panic!("job 0 runs");
    };
    assert_eq!(first.job.id, ids[0]);
    assert_eq!(first.job.attempts, 1);
    assert_eq!(first.image, b"\x89PN", "each job gets its own image");
    assert_eq!(first.entry_id, entries[0].entry_id);
    let Some(Ok(Start::Run(second))) = answers.next() else {
        panic!("job 1 runs again");
    };
    assert_eq!((second.job.id, second.job.attempts), (ids[1], 2));
    assert_eq!(second.image, b"\x89PN");
    let skipped = answers.next().unwrap().unwrap();
    assert!(
        matches!(skipped, Start::Skip(JobState::Cancelled)),
        "{skipped:?}"
    );
    let missing = answers.next().unwrap().unwrap();
    assert!(matches!(missing, Start::Missing), "{missing:?}");
    let exhausted = answers.next().unwrap().unwrap();
    assert!(
        matches!(exhausted, Start::Exhausted { attempts: 3 }),
        "{exhausted:?}"
    );
    let corrupt = answers.next().unwrap();
    assert!(
        matches!(&corrupt, Err(err) if err.to_string().contains("lacks spec")),
        "{corrupt:?}"
    );

    for (i, state) in [
        (0, JobState::Running),
        (1, JobState::Running),
        (2, JobState::Cancelled),
    ] {
        let job = read_job(&mut conn, ids[i]).await.unwrap().unwrap();
        assert_eq!(job.state, state, "job {i}");
    }
    // The exhausted and the corrupt jobs are left as they were.
    for i in [4, 5] {
        let state: Option<String> = conn.hget(keys::job(&ids[i]), "state").await.unwrap();
        assert_eq!(state.as_deref(), Some("queued"), "job {i}");
    }
    let attempts: Option<u32> = conn.hget(keys::job(&ids[4]), "attempts").await.unwrap();
    assert_eq!(attempts, Some(3));
    let reruns: Option<i64> = conn.hget("verdict:stats", "reruns").await.unwrap();
    assert_eq!(
        reruns.unwrap_or(0) - reruns_before.unwrap_or(0),
        1,
        "job 1 alone"
    );
    // The missing job's entry is dropped (the cancelled one's was dropped by
    // the cancel); the running, exhausted and corrupt ones stay pending.
    let pending: redis::streams::StreamPendingReply =
        conn.xpending("verdict:jobs", "workers").await.unwrap();
    assert_eq!(pending.count(), 4);
    let stream_len: u64 = conn.xlen("verdict:jobs").await.unwrap();
    assert_eq!(stream_len, 4);
}
