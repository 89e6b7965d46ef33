//! The served OpenAPI description matches the routes: every documented
//! operation answers (not the "no route" fallback) with one of its documented
//! statuses, every other method on a documented path is refused as not
//! allowed (so no undocumented operation hides there), errors use the one
//! error schema, every `$ref` resolves, and no operation id is used twice.

use reqwest::Method;
use serde_json::Value;
use verdict_e2e::{Stack, StackOptions};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref"
                    && let Some(r) = v.as_str()
                {
                    out.push(r.to_owned());
                }
                refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_description_matches_the_routes() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let (status, spec) = client.get_path("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        spec["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{spec}"
    );
    let paths = spec["paths"].as_object().expect("paths");
    for expected in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/batches",
        "/v1/jobs/wait",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/",
        "/docs",
        "/examples",
        "/examples/{image}",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    // Operation ids name one operation each (OpenAPI requires it; clients
    // generated from the description name their methods after them).
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().into_iter().flat_map(|m| m.values()))
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    assert!(ids.len() >= 10, "operation ids: {ids:?}");
    ids.sort_unstable();
    let repeated: Vec<&str> = ids
        .windows(2)
        .filter(|pair| pair[0] == pair[1])
        .map(|pair| pair[0])
        .collect();
    assert!(
        repeated.is_empty(),
        "operation ids used twice: {repeated:?}"
    );

    let mut all_refs = Vec::new();
    refs(&spec, &mut all_refs);
    for r in &all_refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("local schema ref");
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }

    let mut checked = 0;
    for (path, item) in paths {
        let url_path = path.replace("{id}", "0193a6d2-7c1e-7cc3-9f5e-1a2b3c4d5e6f");
        for method in METHODS {
            let request = client.http().request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                client.url(&url_path),
            );
            // Bodies that every POST refuses cheaply: the answer must still be documented.
            let request = if method == "post" {
                request
                    .header("content-type", "application/json")
                    .body("{}")
            } else {
                request
            };
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match item.get(method) {
                Some(operation) => {
                    let documented = operation["responses"].as_object().expect("responses");
                    assert!(
                        documented.contains_key(&status.to_string()),
                        "{method} {path} answered {status}, not among {:?}: {body}",
                        documented.keys().collect::<Vec<_>>()
                    );
                    assert!(
                        !body["error"]["message"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("no route"),
                        "{method} {path} fell through to the fallback"
                    );
                    for (code, response) in documented {
                        if code.starts_with('4') || code.starts_with('5') {
                            let schema = &response["content"]["application/json"]["schema"]["$ref"];
                            if path != "/readyz" || code != "503" {
                                assert_eq!(
                                    schema, "#/components/schemas/ErrorBody",
                                    "{method} {path} {code}"
                                );
                            }
                        }
                    }
                    checked += 1;
                }
                None => {
                    assert_eq!(
                        status, 405,
                        "{method} {path} answers {status} but is not documented: {body}"
                    );
                    assert_eq!(body["error"]["code"], "method_not_allowed");
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} operations checked");
    // An undocumented path is the fallback's 404, in the error shape.
    let (status, body) = client.get_path("/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

/// schemathesis (`--checks all`: no server error, every status, header and
/// body as documented, schema-valid requests accepted, schema-invalid ones
/// refused, ...) against the served description finds nothing. Every limit
/// the api enforces is in the spec (`api/src/openapi_limits.rs`), or the
/// "valid data rejected" and "invalid data accepted" checks would fail.
/// `tests/schemathesis_hooks.py` drops four findings that are the tool's
/// (multipart fields have no types on the wire, a file's bytes have no
/// schema, a reused idempotency key is a documented 422, letters of other
/// scripts that an ECMA-262 pattern cannot name), and nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure_of_any_check() {
    let schemathesis =
        verdict_e2e::binaries::workspace_root().join(".cache/venv-schemathesis/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run scripts/test-setup (it installs the pinned schemathesis)",
        schemathesis.display()
    );
    // A no-op worker ends jobs at once, so long-polls of schemathesis' own
    // jobs answer in moments.
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.start_workers(&["st"], &["--noop"]).await;
    let spec_url = format!("{}/openapi.json", stack.api_url);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&schemathesis)
            .args(["run", &spec_url, "--checks", "all", "--max-examples", "60"])
            .args([
                "--seed",
                "20261202",
                "--request-timeout",
                "70",
                "--workers",
                "1",
            ])
            .env("NO_COLOR", "1")
            // The tool's own false positives, each named and explained there.
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env(
                "PYTHONPATH",
                verdict_e2e::binaries::workspace_root().join("tests"),
            )
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}):\n{report}",
        out.status.code()
    );
    assert!(report.contains("passed"), "no test case ran:\n{report}");
}
