//! A job that ends gets an entry in the callbacks stream exactly when its
//! spec names a `callback_url`. `job_end.lua` decodes a spec only when its
//! text could name one (the key as written, or a `\u` escape that could
//! spell it): the jobs that name one still get their entry, and the others
//! none, whatever their sentences say.

use std::time::Duration;

use redis::AsyncCommands;

use verdict_shared::job::JobId;
use verdict_shared::queue::claim::read_new;
use verdict_shared::queue::finish::{Finishing, finish_all};
use verdict_shared::queue::keys;
use verdict_shared::queue::submit::{SubmitOptions, submit_with};
use verdict_shared::queue::{Finish, Outcome, Start};

use crate::{QueueRedis, tiny_image_info, tiny_job};

async fn submit_one(
    conn: &mut redis::aio::MultiplexedConnection,
    sentence: &str,
    callback_url: Option<&str>,
) -> JobId {
    let id = JobId::new();
    let texts = vec![sentence.to_owned()];
    let info = tiny_image_info();
    submit_with(
        conn,
        tiny_job(id, &texts, &info),
        SubmitOptions {
            callback_url,
            idempotency: None,
        },
    )
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn only_jobs_whose_spec_names_a_callback_are_announced_to_the_senders() {
    let (_queue, mut conn) = QueueRedis::start().await;

    let hook = Some("https://hooks.example/verdict");
    let with_callback = submit_one(&mut conn, "A cup.", hook).await;
    let plain = submit_one(&mut conn, "A cup.", None).await;
    // Its text holds the words but its spec names no callback: decoded, not
    // announced.
    let says_it = submit_one(&mut conn, "A callback_url is \u{e9}crit here.", None).await;
    // A spec whose key is spelled with a JSON escape (verdict's api never
    // writes one; cjson reads it as `callback_url`).
    let escaped = submit_one(&mut conn, "A cup.", None).await;
    let key = keys::job(&escaped);
    let spec: String = conn.hget(&key, "spec").await.unwrap();
    let spec = spec.replacen(
        '{',
        r#"{"callback\u005furl":"https://hooks.example/escaped","#,
        1,
    );
    let _: () = conn.hset(&key, "spec", &spec).await.unwrap();

    let entries = read_new(&mut conn, "w", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(entries.len(), 4);
    for entry in &entries {
        let started = entry.start(&mut conn, "w", 0).await.unwrap();
        assert!(matches!(started, Start::Run(_)), "{started:?}");
    }
    let done = Outcome::Done(Vec::new());
    let jobs: Vec<Finishing<'_>> = entries
        .iter()
        .map(|entry| Finishing {
            job_id: entry.job.unwrap(),
            entry_id: &entry.entry_id,
            outcome: &done,
            metrics: &[],
        })
        .collect();
    let answers = finish_all(&mut conn, "w", &jobs).await.unwrap();
    assert!(
        answers.iter().all(|a| matches!(a, Finish::Finished { .. })),
        "{answers:?}"
    );

    let announced: redis::streams::StreamRangeReply =
        conn.xrange_all(keys::CALLBACKS).await.unwrap();
    let mut ids: Vec<String> = announced
        .ids
        .iter()
        .map(|entry| entry.get::<String>("job").unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![with_callback.to_string(), escaped.to_string()];
    expected.sort();
    assert_eq!(ids, expected, "plain {plain}, says_it {says_it}");
}
