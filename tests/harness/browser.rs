//! Headless Chromium for the page tests: Debian's `chromium` and
//! `chromium-driver` (installed by `scripts/test-setup`) driven through
//! WebDriver with fantoccini, and the checks every page test makes: axe-core
//! (`.cache/axe`, also from `scripts/test-setup`) finds no serious or
//! critical violation, every resource came from the api, and a screenshot is
//! saved under `tests/artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::binaries::workspace_root;
use crate::process::ChildGuard;
use crate::redis_server::free_port;

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
/// profile and logs in `dir`. Keep the guard as long as the client.
pub async fn browser(dir: &Path) -> (ChildGuard, fantoccini::Client) {
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

/// Waits up to `within` for the page to show its `#error` box, and returns
/// its text.
pub async fn shown_error(
    browser: &fantoccini::Client,
    within: Duration,
) -> Result<String, fantoccini::error::CmdError> {
    let error = browser
        .wait()
        .at_most(within)
        .for_element(Locator::Css("#error:not([hidden])"))
        .await?;
    error.text().await
}

/// The serious and critical violations axe-core finds in the page as it is
/// now, one line each.
pub async fn axe_violations(
    browser: &fantoccini::Client,
) -> Result<Vec<String>, fantoccini::error::CmdError> {
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

/// Saves the page as `tests/artifacts/{name}.png` and returns the path.
pub async fn save_screenshot(
    browser: &fantoccini::Client,
    name: &str,
) -> Result<PathBuf, fantoccini::error::CmdError> {
    let artifacts = workspace_root().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("tests/artifacts");
    let shot = artifacts.join(format!("{name}.png"));
    std::fs::write(&shot, browser.screenshot().await?).expect("write the screenshot");
    println!("screenshot: {}", shot.display());
    Ok(shot)
}

/// Asserts that everything the page loaded came from `api_url`: no CDN, no
/// other host.
pub async fn assert_loaded_only_from(
    browser: &fantoccini::Client,
    api_url: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let resources = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            Vec::new(),
        )
        .await?;
    let resources = resources.as_array().cloned().unwrap_or_default();
    assert!(!resources.is_empty(), "the page loaded nothing?");
    for resource in &resources {
        assert!(
            resource.as_str().unwrap_or("").starts_with(api_url),
            "loaded from elsewhere: {resource}"
        );
    }
    Ok(())
}
