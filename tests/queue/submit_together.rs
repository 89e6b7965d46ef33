//! Several jobs submitted in one transaction (`submit_many`, what a batch
//! does): each gets its own answer in its place, a queue that fills part
//! way refuses only the jobs past its limit, and a transaction Redis
//! refuses whole (out of memory) is a Redis error, not corrupt data.

use verdict_shared::job::JobId;
use verdict_shared::queue::QueueError;
use verdict_shared::queue::read::read_jobs;
use verdict_shared::queue::submit::{NewJob, SubmitOptions, Submitted, submit_many};

use crate::{QueueRedis, tiny_image_info, tiny_job};

#[tokio::test(flavor = "multi_thread")]
async fn jobs_submitted_together_are_answered_each_in_its_place() {
    let (_queue, mut conn) = QueueRedis::start().await;
    let texts = vec!["A cup.".to_string()];
    let info = tiny_image_info();
    let ids: Vec<JobId> = (0..4).map(|_| JobId::new()).collect();
    let jobs: Vec<(NewJob<'_>, SubmitOptions<'_>)> = ids
        .iter()
        .map(|&id| {
            let new = NewJob {
                // The queue takes 3: the fourth job finds it full.
                max_queue_depth: 3,
                ..tiny_job(id, &texts, &info)
            };
            (new, SubmitOptions::default())
        })
        .collect();
    let outcomes = submit_many(&mut conn, &jobs)
        .await
        .expect("the transaction");
    assert_eq!(outcomes.len(), 4);
    for (n, outcome) in outcomes.iter().take(3).enumerate() {
        match outcome {
            Ok(Submitted::New(job)) => assert_eq!(job.id, ids[n], "job {n} in its place"),
            other => panic!("job {n}: {other:?}"),
        }
    }
    assert!(
        matches!(
            outcomes[3],
            Err(QueueError::QueueFull { depth: 3, limit: 3 })
        ),
        "{:?}",
        outcomes[3]
    );
    let stored = read_jobs(&mut conn, &ids).await.unwrap();
    assert!(stored[..3].iter().all(Option::is_some), "{stored:?}");
    assert!(stored[3].is_none(), "the refused job left nothing");

    // Out of memory, Redis refuses every write of the transaction: EXEC
    // answers EXECABORT, a Redis error (the api answers 503), never
    // "corrupt" (500).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = submit_many(&mut conn, &jobs[..2]).await;
    match refused {
        Err(QueueError::Redis(err)) => {
            assert!(
                err.to_string().contains("EXECABORT") || err.to_string().contains("OOM"),
                "{err}"
            )
        }
        other => panic!("expected a Redis error: {other:?}"),
    }
}
