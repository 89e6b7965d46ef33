//! Headless Chromium for the tests that open a page of the api: Debian's
//! `chromium` and `chromium-driver`, installed by `scripts/test-setup`,
//! driven through WebDriver (fantoccini), with the checks every page gets:
//! axe-core's serious and critical violations, and that nothing was loaded
//! from anywhere but the api.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::binaries::workspace_root;
use crate::process::ChildGuard;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver on a free port, waited for.
fn chromedriver(dir: &Path) -> (ChildGuard, String) {
    let port = free_port();
    let mut cmd = Command::new("chromedriver");
    cmd.arg(format!("--port={port}"));
    let mut driver = ChildGuard::spawn("chromedriver", cmd, &dir.join("chromedriver.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            driver.is_running() && Instant::now() < deadline,
            "chromedriver did not start (install chromium-driver: scripts/test-setup):\n{}",
            driver.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

/// chromedriver and a headless Chromium session driven through it, with its
/// profile and logs in `dir`. Keep the guard for as long as the session.
pub async fn start(dir: &Path) -> (ChildGuard, Client) {
    let (driver, driver_url) = chromedriver(dir);
    let profile = dir.join("profile");
    let capabilities: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=900,1100",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    }))
    .unwrap();
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver_url)
        .await
        .expect("a Chromium session");
    (driver, browser)
}

/// Saves a screenshot of the window as `tests/artifacts/{name}.png`.
pub async fn screenshot(browser: &Client, name: &str) -> Result<PathBuf, CmdError> {
    let artifacts = workspace_root().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("tests/artifacts");
    let shot = artifacts.join(format!("{name}.png"));
    std::fs::write(&shot, browser.screenshot().await?).expect("write the screenshot");
    println!("screenshot: {}", shot.display());
    Ok(shot)
}

/// Everything the page loaded so far came from `api_url`: every resource the
/// browser fetched (scripts, style sheets, images, `fetch` calls) and every
/// image, script, `link` (style sheet, icon) and frame the document names.
/// No CDN, no other host.
pub async fn assert_loaded_only_from(browser: &Client, api_url: &str) -> Result<(), CmdError> {
    let fetched = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            Vec::new(),
        )
        .await?;
    let fetched = fetched.as_array().cloned().unwrap_or_default();
    assert!(!fetched.is_empty(), "the page loaded nothing at all");
    let named = browser
        .execute(
            "return Array.from(document.querySelectorAll('img[src], script[src], link[href], iframe[src], source[src]'))
               .map(e => e.src || e.href);",
            Vec::new(),
        )
        .await?;
    let named = named.as_array().cloned().unwrap_or_default();
    for resource in fetched.iter().chain(&named) {
        let url = resource.as_str().unwrap_or("");
        // Inline data, and files the page itself holds (a picked image's
        // preview), are no load from elsewhere.
        let local = url.starts_with("data:") || url.starts_with(&format!("blob:{api_url}/"));
        assert!(
            url.starts_with(&format!("{api_url}/")) || local,
            "loaded from elsewhere: {resource} (the api is {api_url})"
        );
    }
    Ok(())
}

/// The serious and critical violations axe-core (`.cache/axe`, installed by
/// `scripts/test-setup`) finds in the page as it is now.
pub async fn axe_violations(browser: &Client) -> Result<Vec<String>, CmdError> {
    let script = workspace_root().join(".cache/axe/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&script)
        .unwrap_or_else(|err| panic!("{}: {err} (run scripts/test-setup)", script.display()));
    browser.execute(&source, vec![]).await?;
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then((r) => done(r.violations
               .filter((v) => v.impact === 'serious' || v.impact === 'critical')
               .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)));",
            vec![],
        )
        .await?;
    Ok(found
        .as_array()
        .map(|list| {
            list.iter()
                .map(|v| v.as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default())
}

/// Waits up to `within` for the verdict page to show an error, and returns
/// its text (`code: message`).
pub async fn shown_error(browser: &Client, within: Duration) -> Result<String, CmdError> {
    let error = browser
        .wait()
        .at_most(within)
        .for_element(Locator::Css("#error:not([hidden])"))
        .await?;
    error.text().await
}

/// Clicks the page's Judge button and waits (up to 2 minutes: a real model)
/// for one verdict card per `(sentence, label)`, in order; checks that each
/// card shows its sentence, carries its label and has the matching badge.
/// Returns the cards, for further checks.
pub async fn judge(
    browser: &Client,
    expected: &[(&str, &str)],
) -> Result<Vec<fantoccini::elements::Element>, CmdError> {
    browser.find(Locator::Css("#submit")).await?.click().await?;
    browser
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css(&format!(
            "#results .verdict:nth-child({})",
            expected.len()
        )))
        .await?;
    let cards = browser.find_all(Locator::Css("#results .verdict")).await?;
    assert_eq!(cards.len(), expected.len());
    for (card, (sentence, label)) in cards.iter().zip(expected) {
        assert_eq!(
            card.find(Locator::Css(".sentence")).await?.text().await?,
            *sentence
        );
        assert_eq!(
            card.attr("data-label").await?.as_deref(),
            Some(*label),
            "{sentence}"
        );
        let badge = card.find(Locator::Css(".badge")).await?;
        assert_eq!(badge.text().await?.to_lowercase(), *label);
        assert_eq!(
            badge.attr("class").await?.unwrap_or_default(),
            format!("badge badge-{label}")
        );
    }
    Ok(cards)
}
