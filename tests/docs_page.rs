//! `/docs`, the API reference, in headless Chromium: reached from the web
//! page's footer, Swagger UI (compiled into the api) renders the served
//! `/openapi.json`: every documented operation, `POST /v1/jobs` with its
//! summary. Everything the page loaded came from the api, and a screenshot
//! is saved as `tests/artifacts/docs_page.png`.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::error::CmdError;
use serde_json::Value;
use verdict_e2e::browser;
use verdict_e2e::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_renders_every_operation_of_the_served_description() {
    let stack = Stack::start(StackOptions::default()).await;
    let (status, spec) = stack.client().get_path("/openapi.json").await;
    assert_eq!(status, 200);
    let browser_dir = tempfile::tempdir().unwrap();
    let (_driver, browser) = browser::start(browser_dir.path()).await;
    let result = drive(&browser, &stack.api_url, &spec).await;
    let _ = browser.close().await;
    result.unwrap();
}

async fn drive(browser: &fantoccini::Client, api_url: &str, spec: &Value) -> Result<(), CmdError> {
    // The web page's footer leads to the reference.
    browser.goto(&format!("{api_url}/")).await?;
    browser
        .find(Locator::LinkText("API reference"))
        .await?
        .click()
        .await?;
    let submit = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(
            "//*[contains(@class, 'opblock-post')][.//*[@data-path='/v1/jobs']]",
        ))
        .await?;
    assert_eq!(
        browser.current_url().await?.as_str(),
        format!("{api_url}/docs")
    );
    assert_eq!(browser.title().await?, "verdict API reference");

    // POST /v1/jobs is shown, with the summary the description gives it.
    let summary = spec["paths"]["/v1/jobs"]["post"]["summary"]
        .as_str()
        .expect("POST /v1/jobs has a summary");
    let shown = submit.text().await?;
    assert!(
        shown.contains("POST") && shown.contains("/v1/jobs") && shown.contains(summary),
        "{shown:?} does not show POST /v1/jobs: {summary}"
    );

    // Every operation of the description has its block, and no other.
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    let mut rendered = Vec::new();
    for block in browser.find_all(Locator::Css(".opblock")).await? {
        let method = block
            .find(Locator::Css(".opblock-summary-method"))
            .await?
            .text()
            .await?;
        let path = block
            .find(Locator::Css(".opblock-summary-path"))
            .await?
            .attr("data-path")
            .await?
            .unwrap_or_default();
        rendered.push(format!("{method} {path}"));
    }
    documented.sort();
    rendered.sort();
    assert_eq!(rendered, documented);

    browser::screenshot(browser, "docs_page").await?;
    browser::assert_loaded_only_from(browser, api_url).await?;
    Ok(())
}
