//! The web page's example photos: `verdict-api --examples DIR` with the
//! manifest `scripts/fetch-test-photos` writes in `.cache/photos`.
//!
//! - Over HTTP: `GET /examples` lists the manifest, each photo is served with
//!   its content type and bytes, and nothing else in the directory or outside
//!   it is reachable by any name; an api given a manifest that names a path
//!   outside its directory refuses to start, saying so.
//! - In headless Chromium: the thumbnails are buttons named by their alt
//!   text; the coffee one, pressed with the keyboard, puts the photo (with its
//!   preview) and its sentences in the form, and Judge, with a real worker and
//!   the default model, answers yes, no and maybe. axe-core finds no serious
//!   or critical violation, nothing is loaded from elsewhere, a screenshot is
//!   saved; an api without examples shows no row.
//! - `fleet up --examples DIR` passes them to its api.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fantoccini::Locator;
use fantoccini::error::CmdError;
use fantoccini::key::Key;
use serde_json::Value;
use verdict_e2e::binaries::{binary, workspace_root};
use verdict_e2e::browser::{self, axe_violations};
use verdict_e2e::fixtures::model_dir;
use verdict_e2e::fleet::{Fleet, http};
use verdict_e2e::{Stack, StackOptions};

/// The coffee example's sentences and the default model's answers.
const COFFEE: [(&str, &str); 3] = [
    ("This is a ceramic coffee cup.", "yes"),
    ("This is a stainless steel thermos.", "no"),
    ("This is an everyday item.", "maybe"),
];

/// `.cache/photos`, with the manifest.
fn photos_dir() -> PathBuf {
    let dir = workspace_root().join(".cache/photos");
    assert!(
        dir.join("examples.json").is_file(),
        "{} has no examples.json: run scripts/fetch-test-photos",
        dir.display()
    );
    dir
}

/// The manifest's examples.
fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(photos_dir().join("examples.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["examples"].as_array().cloned().unwrap_or_default()
}

fn with_examples() -> StackOptions {
    StackOptions {
        api_args: vec![
            "--examples".into(),
            photos_dir().to_str().expect("UTF-8 path").into(),
        ],
        ..StackOptions::default()
    }
}

/// The status line of a raw `GET path` sent as written: no client between
/// the test and the api resolves `..` or decodes anything.
fn raw_get_status(api_url: &str, path: &str) -> String {
    let addr = api_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_serves_the_manifests_photos_and_nothing_else() {
    let stack = Stack::start(with_examples()).await;
    let client = stack.client();
    let (status, listed) = client.get_path("/examples").await;
    assert_eq!(status, 200);
    let listed = listed["examples"].as_array().cloned().unwrap_or_default();
    let manifest = manifest();
    assert!(!manifest.is_empty());
    assert_eq!(listed.len(), manifest.len(), "{listed:#?}");
    for (item, entry) in listed.iter().zip(&manifest) {
        let image = entry["image"].as_str().unwrap();
        assert_eq!(item["image"], image);
        assert_eq!(item["alt"], entry["alt"]);
        assert_eq!(item["texts"], entry["texts"]);
        assert_eq!(item["url"], format!("/examples/{image}"));
        let response = client
            .http()
            .get(client.url(item["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{image}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if image.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        assert_eq!(content_type, expected, "{image}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(
            bytes.as_ref(),
            std::fs::read(photos_dir().join(image)).unwrap(),
            "{image}"
        );
    }

    // A photo of the directory that the manifest does not name, the
    // manifests, and paths out of the directory, however written: not found.
    for path in [
        "/examples/camera.png",
        "/examples/photos.json",
        "/examples/examples.json",
        "/examples/..%2Fphotos%2Fphotos.json",
        "/examples/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/examples/%2Fetc%2Fpasswd",
        "/examples/coffee.png%00",
    ] {
        let (status, body) = client.get_path(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    for path in [
        "/examples/../photos.json",
        "/examples/../../../../etc/passwd",
        "/examples/./coffee.png/../photos.json",
    ] {
        let status = raw_get_status(&stack.api_url, path);
        assert!(status.contains(" 404 "), "{path}: {status}");
    }
    assert!(raw_get_status(&stack.api_url, "/examples/coffee.png").contains(" 200 "));

    // A manifest that names a file outside its directory: the api does not
    // start, and says why.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("examples.json"),
        r#"{"examples": [{"image": "../photos.json", "alt": "A list", "texts": ["A list of photos."]}]}"#,
    )
    .unwrap();
    let out = Command::new(binary("verdict-api"))
        .args(["--redis", stack.redis_url(), "--bind", "127.0.0.1:0"])
        .arg("--examples")
        .arg(dir.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("--examples") && said.contains("not a plain file name"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_example_fills_the_form_and_is_judged_in_headless_chromium() {
    let model = model_dir();
    let mut stack = Stack::start(with_examples()).await;
    stack
        .start_workers(
            &["examples"],
            &["--model", model.to_str().expect("UTF-8 path")],
        )
        .await;
    let bare = Stack::start(StackOptions::default()).await;
    let browser_dir = tempfile::tempdir().unwrap();
    let (_driver, browser) = browser::start(browser_dir.path()).await;
    let mut result = drive(&browser, &stack.api_url).await;
    if result.is_ok() {
        result = no_row_without_examples(&browser, &bare.api_url).await;
    }
    let _ = browser.close().await;
    result.unwrap();
}

async fn drive(browser: &fantoccini::Client, api_url: &str) -> Result<(), CmdError> {
    browser.goto(&format!("{api_url}/")).await?;
    let manifest = manifest();
    let selector = format!(
        "#examples:not([hidden]) button.example:nth-child({})",
        manifest.len()
    );
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&selector))
        .await?;
    // One button per example, named by the photo's alt text, and nothing
    // in the form yet.
    let buttons = browser.find_all(Locator::Css("button.example")).await?;
    assert_eq!(buttons.len(), manifest.len());
    for (button, entry) in buttons.iter().zip(&manifest) {
        let name = button
            .find(Locator::Css("img"))
            .await?
            .attr("alt")
            .await?
            .unwrap_or_default();
        assert_eq!(name, entry["alt"].as_str().unwrap());
        assert_eq!(button.attr("type").await?.as_deref(), Some("button"));
    }
    let coffee = manifest
        .iter()
        .position(|e| e["image"] == "coffee.png")
        .expect("the manifest offers coffee.png");
    let texts: Vec<&str> = COFFEE.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        manifest[coffee]["texts"],
        serde_json::json!(texts),
        "the coffee example's sentences"
    );

    // Pressed with the keyboard: the photo goes into the form, previewed as
    // if picked, with its sentences.
    buttons[coffee]
        .send_keys(&String::from(char::from(Key::Enter)))
        .await?;
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(
            "//*[@id='drop-hint'][starts-with(., 'coffee.png (')]",
        ))
        .await?;
    let preview = browser.find(Locator::Css("#preview")).await?;
    assert!(preview.is_displayed().await?, "the preview shows");
    assert!(
        preview
            .attr("src")
            .await?
            .unwrap_or_default()
            .starts_with("blob:")
    );
    let filled = browser
        .find(Locator::Css("#texts"))
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    assert_eq!(filled, texts.join("\n"));

    browser::judge(browser, &COFFEE).await?;

    browser::screenshot(browser, "page_examples").await?;
    browser::assert_loaded_only_from(browser, api_url).await?;
    let violations = axe_violations(browser).await?;
    assert!(violations.is_empty(), "axe-core: {violations:#?}");
    Ok(())
}

/// An api started without `--examples`: once the page has asked for them,
/// no row and no button.
async fn no_row_without_examples(
    browser: &fantoccini::Client,
    api_url: &str,
) -> Result<(), CmdError> {
    browser.goto(&format!("{api_url}/")).await?;
    let settled = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const asked = () => performance.getEntriesByType('resource')
               .some((e) => new URL(e.name).pathname === '/examples');
             const look = () => asked()
               ? setTimeout(() => done({
                   hidden: document.getElementById('examples').hidden,
                   buttons: document.querySelectorAll('button.example').length,
                 }), 200)
               : setTimeout(look, 50);
             look();",
            vec![],
        )
        .await?;
    assert_eq!(settled["hidden"], true, "{settled}");
    assert_eq!(settled["buttons"], 0, "{settled}");
    assert!(
        !browser
            .find(Locator::Css("#examples"))
            .await?
            .is_displayed()
            .await?
    );
    Ok(())
}

#[test]
fn fleet_up_passes_the_examples_to_its_api() {
    let fleet = Fleet::new();
    let photos = photos_dir();
    let up = fleet.up(1, &["--examples", photos.to_str().unwrap()]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let resolved = photos.canonicalize().unwrap();
    assert!(
        up.stdout
            .contains(&format!("page examples     {}", resolved.display())),
        "{}",
        up.output()
    );
    let url = format!("{}/examples", fleet.api_url());
    let (status, listed) = http(move |client| client.get(url));
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["examples"].as_array().map(Vec::len),
        Some(manifest().len()),
        "{listed}"
    );

    // A directory without a manifest is refused before anything starts.
    let empty = tempfile::tempdir().unwrap();
    let other = Fleet::new();
    let refused = other.up(1, &["--examples", empty.path().to_str().unwrap()]);
    assert!(!refused.ok(), "{}", refused.output());
    assert!(
        refused.stderr.contains("no examples.json"),
        "{}",
        refused.output()
    );
}
