//! `?wait=` returns as soon as the job ends, and at its deadline otherwise.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_returns_when_the_job_finishes_not_at_the_deadline() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .start_workers(&["slow"], &["--noop", "--noop-delay-ms", "1500"])
        .await;
    let client = stack.client();

    let id = client.submit(&png(16, 16), &["A cup."]).await;
    let asked = Instant::now();
    let answer = client.get_job(&id, Some(30.0)).await;
    let answered_at = OffsetDateTime::now_utc();
    let waited = asked.elapsed();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["state"], "done", "{}", answer.body);
    // It waited for the job (1.5 s of simulated inference) ...
    assert!(
        waited >= Duration::from_millis(1000),
        "returned before the job could finish: {waited:?}"
    );
    // ... and returned right after it finished, far from the 30 s deadline.
    let finished_at =
        OffsetDateTime::parse(answer.body["finished_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let lag = answered_at - finished_at;
    assert!(
        lag < time::Duration::seconds(2),
        "answered {lag} after the job finished"
    );
    assert!(
        waited < Duration::from_secs(15),
        "long-poll took {waited:?}"
    );

    // A job that cannot finish in time: the answer comes at the deadline,
    // with the job as it is.
    let first = client.submit(&png(16, 16), &["first"]).await;
    let second = client.submit(&png(16, 16), &["second"]).await;
    let asked = Instant::now();
    let answer = client.get_job(&second, Some(0.5)).await;
    let waited = asked.elapsed();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        matches!(answer.body["state"].as_str(), Some("queued" | "running")),
        "{}",
        answer.body
    );
    assert!(
        waited >= Duration::from_millis(450),
        "returned before the deadline: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "deadline overshot: {waited:?}"
    );

    // wait=0 answers at once.
    let asked = Instant::now();
    let answer = client.get_job(&second, Some(0.0)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(asked.elapsed() < Duration::from_secs(5));

    // Both end done eventually.
    for id in [first, second] {
        let job = client.wait_end(&id, crate::PATIENCE).await;
        assert_eq!(job["state"], "done");
    }

    // Many concurrent waiters on one job are all answered by one event.
    let id = client.submit(&png(16, 16), &["many waiters"]).await;
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            let id = id.clone();
            tokio::spawn(async move { client.get_job(&id, Some(30.0)).await })
        })
        .collect();
    let asked = Instant::now();
    for waiter in waiters {
        let answer = waiter.await.unwrap();
        assert_eq!(answer.body["state"], "done", "{}", answer.body);
    }
    assert!(asked.elapsed() < Duration::from_secs(15));
}
