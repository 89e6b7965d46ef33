//! Dead letters an operator can see and mend, with real processes under the
//! real watchdog: a poison job (the test-only hook `VERDICT_TEST_ABORT_ON_TEXT`,
//! which needs the worker's `test-hooks` feature, on in test builds) and a job
//! that always fails transiently end in the dead-letter stream; `fleet
//! status` counts them and `fleet dead list` shows them; the fleet is started
//! again without the trigger (the cause fixed), `fleet dead retry` queues the
//! poison job again and it is judged; `fleet dead purge` discards the other,
//! which stays readable, failed. The api's `/v1/dead` answers the same, and
//! refuses to retry a job that is not dead-lettered.

use std::time::Duration;

use verdict_e2e::ApiClient;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::Fleet;
use verdict_e2e::reliability::up;

const POISON: &str = "this sentence kills the worker";
const BROKEN: &str = "fails transiently every time";
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_retried_once_fixed_and_purged() {
    let fleet = Fleet::new();
    let transient = format!("99:{BROKEN}");
    up(
        &fleet,
        1,
        &["--noop-workers"],
        &[
            ("VERDICT_TEST_ABORT_ON_TEXT", POISON),
            ("VERDICT_TEST_TRANSIENT_ON_TEXT", &transient),
        ],
    );
    let client = ApiClient::new(&fleet.api_url());
    let image = png(8, 8);
    let poison = client.submit(&image, &[POISON]).await;
    let broken = client.submit(&image, &[BROKEN]).await;
    let fine = client.submit(&image, &["an ordinary sentence"]).await;
    for id in [&poison, &broken] {
        let job = client.wait_end(id, PATIENCE).await;
        assert_eq!(job["error"]["code"], "attempts_exhausted", "{job}");
    }
    assert_eq!(client.wait_end(&fine, PATIENCE).await["state"], "done");

    // fleet status counts them; fleet dead list shows them, newest first.
    let (_, status) = fleet.status();
    assert_eq!(status["queue"]["dead"], 2, "{status:#}");
    let list = fleet.run(&["dead", "list"]);
    assert!(list.ok(), "{}", list.output());
    assert!(
        list.stdout.starts_with("2 dead-lettered job(s)"),
        "{}",
        list.output()
    );
    let lines: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert!(
        lines[0].starts_with(&broken) && lines[0].contains("test_transient"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&poison) && lines[1].contains("worker_lost"),
        "{lines:?}"
    );

    // The api: the same page; a job that is not dead is refused (409), an
    // unknown one is not found (404).
    let (code, page) = client.get_path("/v1/dead?limit=1").await;
    assert_eq!(code.as_u16(), 200, "{page}");
    assert_eq!(page["count"], 2, "{page}");
    assert_eq!(page["dead"][0]["job"], broken.as_str(), "{page}");
    let next = page["next"].as_str().expect("a next page").to_owned();
    let (_, second) = client
        .get_path(&format!("/v1/dead?limit=1&before={next}"))
        .await;
    assert_eq!(second["dead"][0]["job"], poison.as_str(), "{second}");
    let retry_fine = client
        .http()
        .post(client.url(&format!("/v1/dead/{fine}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(retry_fine.status(), 409);
    let body: serde_json::Value = retry_fine.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_dead", "{body}");
    let (code, _) = client.get_path("/v1/dead?limit=0").await;
    assert_eq!(code.as_u16(), 400);

    // The cause is fixed: the fleet starts again without the triggers. Its
    // Redis keeps its data (append-only file), dead letters included.
    let down = fleet.run(&["down"]);
    assert!(down.ok(), "{}", down.output());
    up(&fleet, 1, &["--noop-workers"], &[]);
    let retry = fleet.run(&["dead", "retry", &poison]);
    assert!(retry.ok(), "{}", retry.output());
    // The CLI prints the state the api read just after queuing the job
    // again: a worker may have claimed it already.
    let printed = retry.stdout.trim();
    assert!(
        ["queued", "running", "done"]
            .iter()
            .any(|state| printed == format!("{poison}: {state}")),
        "{}",
        retry.output()
    );
    let client = ApiClient::new(&fleet.api_url());
    let job = client.wait_end(&poison, PATIENCE).await;
    assert_eq!(job["state"], "done", "retried and judged: {job}");
    assert_eq!(job["attempts"], 1, "a fresh start: {job}");

    // The other is purged: out of the stream, still readable, failed.
    let purge = fleet.run(&["dead", "purge"]);
    assert!(purge.ok(), "{}", purge.output());
    assert!(
        purge.stdout.contains("discarded 1 dead-lettered job(s)"),
        "{}",
        purge.output()
    );
    let (code, job) = client.get_path(&format!("/v1/jobs/{broken}")).await;
    assert_eq!(
        (code.as_u16(), job["state"].as_str()),
        (200, Some("failed")),
        "{job}"
    );
    let list = fleet.run(&["dead", "list"]);
    assert!(
        list.stdout.starts_with("0 dead-lettered job(s)"),
        "{}",
        list.output()
    );
    let again = fleet.run(&["dead", "retry", &broken]);
    assert_eq!(again.code, Some(1), "{}", again.output());
    assert!(again.stderr.contains("not_dead"), "{}", again.output());
}
