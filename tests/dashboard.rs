//! The operator's dashboard at `/dashboard` (issue 17), driven in headless
//! Chromium against real processes: a real redis-server, api and workers
//! (the default model; one worker with the test-only transient-failure
//! trigger, which needs the worker's `test-hooks` feature, on in test
//! builds).
//!
//! With no worker, a queued job is listed and cancelled from the page, and
//! the page says that no worker runs. Then a faulty worker judges good
//! jobs, fails an undecodable image and dead-letters two jobs that fail
//! transiently every time: the page shows the worker, the throughput and
//! latency of the last hour, the recent failures with their codes and the
//! dead letters; one is discarded from the page, and once a healthy worker
//! replaces the faulty one the other is retried from the page and judged.
//! `GET /v1/dashboard` says the same in JSON. axe-core finds no serious or
//! critical violation, everything comes from the api, and a screenshot is
//! saved under `tests/artifacts/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use nix::sys::signal::Signal;
use serde_json::Value;
use verdict_e2e::browser::{self, assert_loaded_only_from, axe_violations, screenshot};
use verdict_e2e::fixtures::{model_dir, photo, truncated_png};
use verdict_e2e::{Stack, StackOptions};

const BROKEN: &str = "this sentence fails every time";
const PATIENCE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_fleet_and_mends_it_in_headless_chromium() {
    let model = model_dir();
    let model = model.to_str().expect("UTF-8 path");
    let mut stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let browser_dir = tempfile::tempdir().unwrap();
    let (_driver, browser) = browser::start(browser_dir.path()).await;
    let url = format!("{}/dashboard", stack.api_url);

    let result = async {
        // No worker: the queued job is listed; Cancel withdraws it.
        let waiting = client.submit(&photo("coffee.png"), &["A cup."]).await;
        browser.goto(&url).await?;
        assert_eq!(browser.title().await?, "verdict: fleet dashboard");
        wait_for_text(&browser, "#workers tbody", "No worker is running").await?;
        assert_eq!(text_of(&browser, "#tile-workers").await?, "0");
        click(&browser, &format!("Cancel job {waiting}")).await?;
        status_says(&browser, &format!("Job {waiting} cancelled.")).await?;
        assert_eq!(
            client.wait_end(&waiting, PATIENCE).await["state"],
            "cancelled"
        );

        // A faulty worker: good jobs done, an undecodable image failed, two
        // jobs dead-lettered after their two attempts.
        let transient = format!("99:{BROKEN}");
        stack.spawn_worker_with_env(
            "faulty",
            &["--model", model, "--max-attempts", "2"],
            &[("VERDICT_TEST_TRANSIENT_ON_TEXT", &transient)],
        );
        stack.wait_ready(&["faulty"]).await;
        let mut good = Vec::new();
        for _ in 0..3 {
            good.push(
                client
                    .submit(&photo("coffee.png"), &["This is a ceramic coffee cup."])
                    .await,
            );
        }
        let unreadable = client.submit(&truncated_png(), &["A cup."]).await;
        let doomed = client.submit(&photo("coffee.png"), &[BROKEN]).await;
        let rescued = client
            .submit(&photo("chelsea.png"), &[BROKEN, "This is a cat."])
            .await;
        for id in &good {
            assert_eq!(client.wait_end(id, PATIENCE).await["state"], "done");
        }
        let failed = client.wait_end(&unreadable, PATIENCE).await;
        let unreadable_code = failed["error"]["code"].as_str().unwrap_or("").to_owned();
        assert_eq!(failed["state"], "failed", "{failed}");
        for id in [&doomed, &rescued] {
            let job = client.wait_end(id, PATIENCE).await;
            assert_eq!(job["error"]["code"], "attempts_exhausted", "{job}");
        }

        // The JSON the page draws.
        let (code, snapshot) = client.get_path("/v1/dashboard").await;
        assert_eq!(code.as_u16(), 200, "{snapshot}");
        check_snapshot(
            &snapshot,
            &unreadable,
            &unreadable_code,
            [&doomed, &rescued],
        );

        // The page: the worker, the tiles, the charts, failures, dead letters.
        browser.goto(&url).await?;
        wait_for_text(&browser, "#workers tbody", "faulty").await?;
        let worker_row = text_of(&browser, "#workers tbody tr").await?;
        assert!(
            worker_row.contains("idle") || worker_row.contains("busy"),
            "{worker_row}"
        );
        assert_eq!(text_of(&browser, "#tile-dead").await?, "2");
        let ended: u64 = text_of(&browser, "#tile-throughput")
            .await?
            .parse()
            .unwrap_or(0);
        assert!(
            ended >= 6,
            "3 done + 3 failed in the last 5 minutes: {ended}"
        );
        assert_ne!(text_of(&browser, "#tile-latency").await?, "–");
        for chart in ["#chart-throughput", "#chart-latency", "#chart-queue"] {
            let svg = browser.find(Locator::Css(&format!("{chart} svg"))).await?;
            let label = svg.attr("aria-label").await?.unwrap_or_default();
            assert!(label.starts_with("Largest"), "{chart}: {label}");
            let lines = browser
                .find_all(Locator::Css(&format!("{chart} svg circle")))
                .await?;
            assert!(!lines.is_empty(), "{chart} draws its points");
        }
        let failures = text_of(&browser, "#failures tbody").await?;
        assert!(
            failures.contains(&unreadable) && failures.contains(&unreadable_code),
            "{failures}"
        );
        assert!(
            failures.contains("attempts_exhausted") && failures.contains("(dead-lettered)"),
            "{failures}"
        );
        let dead = text_of(&browser, "#dead tbody").await?;
        assert!(
            dead.contains(&doomed) && dead.contains(&rescued) && dead.contains("test_transient"),
            "{dead}"
        );

        let violations = axe_violations(&browser).await?;
        assert!(violations.is_empty(), "axe-core: {violations:#?}");
        assert_loaded_only_from(&browser, &stack.api_url).await?;
        screenshot(&browser, "dashboard").await?;

        // Discard one dead letter: out of the stream, the job stays failed.
        click(&browser, &format!("Discard job {doomed}")).await?;
        status_says(&browser, &format!("Job {doomed} discarded.")).await?;
        let (_, page) = client.get_path("/v1/dead").await;
        assert_eq!(page["count"], 1, "{page}");
        assert_eq!(page["dead"][0]["job"], rescued.as_str(), "{page}");

        // The cause fixed (a healthy worker instead of the faulty one),
        // Retry queues the other again and it is judged.
        stack.worker("faulty").signal(Signal::SIGTERM);
        assert!(
            stack
                .worker("faulty")
                .wait_exit(Duration::from_secs(30))
                .is_some()
        );
        stack.start_workers(&["healthy"], &["--model", model]).await;
        wait_for_text(&browser, "#workers tbody", "healthy").await?;
        click(&browser, &format!("Retry job {rescued}")).await?;
        status_says(&browser, &format!("Job {rescued} queued again.")).await?;
        let judged = client.wait_end(&rescued, PATIENCE).await;
        assert_eq!(judged["state"], "done", "{judged}");
        wait_for_text(&browser, "#dead tbody", "No dead letters.").await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
}

/// `GET /v1/dashboard` after the faulty worker's run.
fn check_snapshot(snapshot: &Value, unreadable: &str, unreadable_code: &str, dead: [&String; 2]) {
    let workers = snapshot["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 1, "{snapshot:#}");
    assert_eq!(workers[0]["name"], "faulty");
    // jobs_done lags by up to a heartbeat (2 s); the state does not.
    assert!(
        ["idle", "busy"].contains(&workers[0]["state"].as_str().unwrap_or("")),
        "{snapshot:#}"
    );
    let queue = &snapshot["queue"];
    assert_eq!(queue["dead"], 2, "{queue}");
    assert_eq!(queue["queued"], 0, "{queue}");
    assert_eq!(queue["cancelled"], 1, "{queue}");
    let minutes = snapshot["minutes"].as_array().expect("minutes");
    assert_eq!(minutes.len(), 60, "the last hour, minute by minute");
    let total = |field: &str| -> u64 { minutes.iter().filter_map(|m| m[field].as_u64()).sum() };
    assert_eq!(total("done"), 3, "{minutes:#?}");
    assert_eq!(total("failed"), 3, "{minutes:#?}");
    assert!(
        minutes
            .iter()
            .any(|m| m["end_to_end_p95_s"].as_f64().is_some_and(|s| s > 0.0)),
        "a latency was recorded"
    );
    assert!(
        minutes.iter().any(|m| m["queued"].as_u64().is_some()),
        "the api sampled the queue"
    );
    let failures = snapshot["recent_failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 3, "{failures:#?}");
    let codes: Vec<(&str, &str, bool)> = failures
        .iter()
        .map(|f| {
            (
                f["job"].as_str().unwrap_or(""),
                f["code"].as_str().unwrap_or(""),
                f["dead_lettered"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    // Newest first: the two dead letters came after the unreadable image.
    assert_eq!(codes[2], (unreadable, unreadable_code, false), "{codes:?}");
    for (job, code, dead_lettered) in &codes[..2] {
        assert!(dead.iter().any(|d| d.as_str() == *job), "{codes:?}");
        assert_eq!((*code, *dead_lettered), ("attempts_exhausted", true));
    }
    let listed: Vec<&str> = snapshot["dead"]
        .as_array()
        .expect("dead")
        .iter()
        .filter_map(|d| d["job"].as_str())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
}

async fn text_of(browser: &Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    browser.find(Locator::Css(css)).await?.text().await
}

/// Waits (the page refreshes every 2 s) until `css` contains `text`.
async fn wait_for_text(
    browser: &Client,
    css: &str,
    text: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = text_of(browser, css).await.unwrap_or_default();
        if now.contains(text) {
            return Ok(());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never showed {text:?}; it shows {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clicks the button whose accessible name is `label`.
async fn click(browser: &Client, label: &str) -> Result<(), fantoccini::error::CmdError> {
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!("button[aria-label='{label}']")))
        .await?
        .click()
        .await
}

async fn status_says(browser: &Client, text: &str) -> Result<(), fantoccini::error::CmdError> {
    wait_for_text(browser, "#status", text).await
}
