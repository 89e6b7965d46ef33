//! The web page at `/`, driven in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/test-setup`) through WebDriver:
//! upload coffee.png with three sentences while no worker runs (the page says
//! so; the queued job is cancelled from the page), then with a worker: wait
//! for the verdicts, check each badge, bars and explanation, save a
//! screenshot under `tests/artifacts/`; pick a file that is not an image (the
//! page refuses it plainly and keeps the verdicts); send it again with a
//! premise (which the default model refuses: its error is shown); Clear.
//! Every resource the page loaded came from the api.

use std::time::Duration;

use fantoccini::Locator;
use verdict_e2e::binaries::workspace_root;
use verdict_e2e::browser::{self, axe_violations, shown_error};
use verdict_e2e::fixtures::model_dir;
use verdict_e2e::{Stack, StackOptions};

const SENTENCES: [(&str, &str); 3] = [
    ("This is a ceramic coffee cup.", "yes"),
    ("This is a stainless steel thermos.", "no"),
    ("This is an everyday item.", "maybe"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_page_judges_coffee_png_in_headless_chromium() {
    let model = model_dir();
    let mut stack = Stack::start(StackOptions::default()).await;
    let browser_dir = tempfile::tempdir().unwrap();
    let (_driver, browser) = browser::start(browser_dir.path()).await;

    // No worker yet: the page says so while the job waits, then the
    // worker starts and the job is judged.
    let waiting = submit_coffee(&browser, &stack.api_url).await;
    if waiting.is_ok() {
        stack
            .start_workers(&["page"], &["--model", model.to_str().expect("UTF-8 path")])
            .await;
    }
    let result = match waiting {
        Ok(()) => drive(&browser, &stack.api_url).await,
        Err(err) => Err(err),
    };
    let _ = browser.close().await;
    result.unwrap();

    // Every submission the page made carried an Idempotency-Key (issue 14,
    // item 7): the api stored one record per accepted job (the coffee job and
    // the one with a premise; the text file was refused before that).
    let mut conn = stack.redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("verdict:idempotency:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(keys.len() >= 2, "idempotency records: {keys:?}");
}

/// Opens the page, sends coffee.png with the three sentences while no worker
/// runs, and waits for the page to say that no worker is running.
async fn submit_coffee(
    browser: &fantoccini::Client,
    api_url: &str,
) -> Result<(), fantoccini::error::CmdError> {
    browser.goto(&format!("{api_url}/")).await?;
    assert_eq!(
        browser.title().await?,
        "verdict: does the image support the sentence?"
    );
    let coffee = workspace_root().join(".cache/photos/coffee.png");
    assert!(coffee.is_file(), "run scripts/fetch-test-photos");
    browser
        .find(Locator::Css("#image"))
        .await?
        .send_keys(coffee.to_str().unwrap())
        .await?;
    let texts: Vec<&str> = SENTENCES.iter().map(|(t, _)| *t).collect();
    browser
        .find(Locator::Css("#texts"))
        .await?
        .send_keys(&texts.join("\n"))
        .await?;
    browser.find(Locator::Css("#submit")).await?.click().await?;
    let status = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(
            "//*[@id='status'][contains(., 'no worker is running')]",
        ))
        .await?;
    let said = status.text().await?;
    assert!(said.starts_with("queued…"), "{said}");
    // The queued job can be cancelled from the page.
    browser.find(Locator::Css("#cancel")).await?.click().await?;
    let message = shown_error(browser, Duration::from_secs(30)).await?;
    assert!(message.starts_with("cancelled:"), "{message}");
    let cancel = browser.find(Locator::Css("#cancel")).await?;
    assert!(
        cancel.attr("hidden").await?.is_some(),
        "the cancel button goes once the job has ended"
    );
    Ok(())
}

/// Sends [`submit_coffee`]'s image and sentences again, now that a worker
/// runs, waits for the verdicts and checks the page.
async fn drive(
    browser: &fantoccini::Client,
    api_url: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let cards = browser::judge(browser, &SENTENCES).await?;
    for card in &cards {
        let bars = card.find_all(Locator::Css(".bar")).await?;
        assert_eq!(bars.len(), 3, "three score bars");
        for bar in &bars {
            // A share of 1, read out as a percentage (not 0.87 of 100).
            assert_eq!(bar.attr("aria-valuemax").await?.as_deref(), Some("1"));
            let text = bar.attr("aria-valuetext").await?.unwrap_or_default();
            assert!(text.ends_with('%'), "{text}");
        }
        let mut total = 0.0;
        for bar in &bars {
            total += bar
                .attr("aria-valuenow")
                .await?
                .unwrap_or_default()
                .parse::<f64>()
                .unwrap_or(-1.0);
        }
        assert!((total - 1.0).abs() < 0.01, "scores sum to 1: {total}");
        let why = card.find(Locator::Css(".why")).await?.text().await?;
        assert!(why.contains("The image looks like:"), "{why}");
        assert!(why.contains("The sentence is closest to:"), "{why}");
        // The summary does not say it again.
        assert_eq!(why.matches("The image looks like").count(), 1, "{why}");
    }
    assert_eq!(
        browser.find(Locator::Css("#status")).await?.text().await?,
        "done"
    );

    browser::screenshot(browser, "web_page").await?;

    // Everything the page loaded came from the api: no CDN, no other host.
    browser::assert_loaded_only_from(browser, api_url).await?;

    // axe-core finds no serious or critical accessibility violation in the
    // page with its verdicts on it.
    let violations = axe_violations(browser).await?;
    assert!(violations.is_empty(), "axe-core: {violations:#?}");

    // A file that is not an image: refused in the page, said plainly, and
    // the image and verdicts on the page stay.
    let not_image =
        std::env::temp_dir().join(format!("verdict-not-an-image-{}.txt", std::process::id()));
    std::fs::write(&not_image, "plain text").unwrap();
    browser
        .find(Locator::Css("#image"))
        .await?
        .send_keys(not_image.to_str().unwrap())
        .await?;
    let message = shown_error(browser, Duration::from_secs(30)).await?;
    let _ = std::fs::remove_file(&not_image);
    assert!(
        message.starts_with("not_an_image:") && message.contains("is not an image"),
        "{message}"
    );
    let cards = browser.find_all(Locator::Css("#results .verdict")).await?;
    assert_eq!(cards.len(), 3, "the verdicts stay");
    let hint = browser
        .find(Locator::Css("#drop-hint"))
        .await?
        .text()
        .await?;
    assert!(
        hint.starts_with("coffee.png"),
        "the picked image stays: {hint}"
    );

    // A premise goes with the job as its `premise` part: the default model
    // cannot use one, and the page shows the job's error saying so.
    browser
        .find(Locator::Css("#premise"))
        .await?
        .send_keys("Steam rises from the cup.")
        .await?;
    browser.find(Locator::Css("#submit")).await?.click().await?;
    let message = shown_error(browser, Duration::from_secs(120)).await?;
    assert!(message.starts_with("premise_unsupported:"), "{message}");
    browser
        .find(Locator::Css("#premise"))
        .await?
        .clear()
        .await?;

    // The check can fail: an image without a text alternative is found.
    browser
        .execute(
            "const img = document.createElement('img'); img.src = '/static/none.png'; \
             document.querySelector('main').append(img);",
            vec![],
        )
        .await?;
    let violations = axe_violations(browser).await?;
    assert!(
        violations.iter().any(|v| v.contains("image-alt")),
        "axe-core missed an image without alt: {violations:?}"
    );

    // An image pasted on the page is picked like a dropped one.
    browser
        .execute(
            "const canvas = document.createElement('canvas'); canvas.width = 8; canvas.height = 8; \
             canvas.toBlob((blob) => { const data = new DataTransfer(); \
               data.items.add(new File([blob], 'pasted.png', { type: 'image/png' })); \
               document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data })); });",
            vec![],
        )
        .await?;
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//*[@id='drop-hint'][starts-with(., 'pasted.png')]",
        ))
        .await?;

    // Clear: no image, no sentences, no verdicts.
    browser.find(Locator::Css("#clear")).await?.click().await?;
    assert!(
        browser
            .find_all(Locator::Css("#results .verdict"))
            .await?
            .is_empty()
    );
    assert_eq!(
        browser
            .find(Locator::Css("#texts"))
            .await?
            .prop("value")
            .await?
            .as_deref(),
        Some("")
    );
    assert!(
        browser
            .find(Locator::Css("#preview"))
            .await?
            .attr("hidden")
            .await?
            .is_some()
    );
    Ok(())
}

/// The same page with an `ofa-ve` pack (the tiny random-init one): the page
/// knows no model kind, so it shows OFA's verdicts, with a premise, as it
/// shows the default pack's. Random weights: the labels are not asserted,
/// only that each card shows a label, three bars summing to 1 and OFA's
/// explanation of the premise prompt.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_an_ofa_packs_verdicts_with_a_premise() {
    let model = verdict_e2e::fixtures::ofa_tiny_dir();
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .start_workers(
            &["page-ofa"],
            &["--model", model.to_str().expect("UTF-8 path")],
        )
        .await;
    let browser_dir = tempfile::tempdir().unwrap();
    let (_driver, browser) = browser::start(browser_dir.path()).await;
    let result = drive_ofa(&browser, &stack.api_url).await;
    let _ = browser.close().await;
    result.unwrap();
}

async fn drive_ofa(
    browser: &fantoccini::Client,
    api_url: &str,
) -> Result<(), fantoccini::error::CmdError> {
    browser.goto(&format!("{api_url}/")).await?;
    let coffee = workspace_root().join(".cache/photos/coffee.png");
    browser
        .find(Locator::Css("#image"))
        .await?
        .send_keys(coffee.to_str().unwrap())
        .await?;
    let texts = ["The drink is hot.", "The cup is empty."];
    browser
        .find(Locator::Css("#texts"))
        .await?
        .send_keys(&texts.join("\n"))
        .await?;
    browser
        .find(Locator::Css("#premise"))
        .await?
        .send_keys("Steam rises from the cup.")
        .await?;
    browser.find(Locator::Css("#submit")).await?.click().await?;
    browser
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css("#results .verdict:nth-child(2)"))
        .await?;
    let cards = browser.find_all(Locator::Css("#results .verdict")).await?;
    assert_eq!(cards.len(), 2);
    for (card, sentence) in cards.iter().zip(texts) {
        assert_eq!(
            card.find(Locator::Css(".sentence")).await?.text().await?,
            sentence
        );
        let label = card.attr("data-label").await?.unwrap_or_default();
        assert!(["yes", "no", "maybe"].contains(&label.as_str()), "{label}");
        let badge = card.find(Locator::Css(".badge")).await?;
        assert_eq!(badge.text().await?.to_lowercase(), label);
        let bars = card.find_all(Locator::Css(".bar")).await?;
        assert_eq!(bars.len(), 3, "three score bars");
        let mut total = 0.0;
        for bar in &bars {
            total += bar
                .attr("aria-valuenow")
                .await?
                .unwrap_or_default()
                .parse::<f64>()
                .unwrap_or(-1.0);
        }
        assert!((total - 1.0).abs() < 0.01, "scores sum to 1: {total}");
        let why = card.find(Locator::Css(".why")).await?.text().await?;
        assert!(why.contains("OFA answered"), "{why}");
        assert!(why.contains("steam rises from the cup."), "{why}");
    }
    browser::screenshot(browser, "web_page_ofa").await?;
    Ok(())
}
