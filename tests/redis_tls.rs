//! TLS to Redis with a private CA (issue 19, item 3), against a real
//! `redis-server` serving TLS only, with a CA, server and client
//! certificates the test makes (mutual TLS: `tls-auth-clients yes`).
//!
//! - The api and a worker given the CA and the client certificate
//!   (`VERDICT_REDIS_CA`, `VERDICT_REDIS_CERT`, `VERDICT_REDIS_KEY`, the
//!   environment of `--redis-ca`, `--redis-cert`, `--redis-key`) judge jobs
//!   over `rediss://`.
//! - Trust is not given to any CA: an api that trusts another CA, or that
//!   shows no client certificate, gets no connection (503 on submit), and
//!   its log says why.
//! - The flags are refused with a plain `redis://` URL and with a file that
//!   is not PEM, before anything starts.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use verdict_e2e::binaries::binary;
use verdict_e2e::fixtures::png;
use verdict_e2e::process::ChildGuard;
use verdict_e2e::tls::TestPki;
use verdict_e2e::{ApiClient, Stack, StackOptions};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn api_and_workers_reach_a_redis_whose_certificate_a_private_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let mut stack = Stack::start(StackOptions {
        tls: Some(pki.clone()),
        ..Default::default()
    })
    .await;
    assert!(stack.redis_url().starts_with("rediss://localhost:"));
    stack.start_workers(&["tls"], &["--noop"]).await;
    let client = stack.client();
    let id = client.submit(&png(8, 8), &["over TLS"]).await;
    let job = client.wait_end(&id, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["worker"], "tls", "{job}");

    // Another api trusting another CA, or trusting the right one but showing
    // no client certificate, is refused by the TLS handshake.
    for (what, env) in [
        (
            "another CA",
            vec![
                ("VERDICT_REDIS_CA", pki.other_ca_cert.display().to_string()),
                ("VERDICT_REDIS_CERT", pki.client_cert.display().to_string()),
                ("VERDICT_REDIS_KEY", pki.client_key.display().to_string()),
            ],
        ),
        (
            "no client certificate",
            vec![("VERDICT_REDIS_CA", pki.ca_cert.display().to_string())],
        ),
    ] {
        let (mut api, url) = api_with(stack.redis_url(), &env, dir.path(), what);
        let answer = ApiClient::new(&url)
            .submit_json(&png(8, 8), &["refused"])
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            answer.body
        );
        assert_eq!(answer.body["error"]["code"], "redis_unavailable", "{what}");
        api.signal(nix::sys::signal::Signal::SIGTERM);
        api.wait_exit(Duration::from_secs(10));
        let log = api.log();
        assert!(
            log.contains("certificate") || log.contains("UnknownIssuer") || log.contains("tls"),
            "{what}: the log does not say why:\n{log}"
        );
    }
}

#[test]
fn tls_flags_are_refused_where_they_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let not_pem = dir.path().join("ca.der");
    std::fs::write(&not_pem, [0x30u8, 0x82, 0x01, 0x0a]).unwrap();
    for (url, ca, expected) in [
        (
            "redis://127.0.0.1:1",
            pki.ca_cert.clone(),
            "need a rediss:// URL",
        ),
        ("rediss://localhost:1", not_pem, "not a PEM file"),
    ] {
        for program in ["verdict-api", "verdict-worker"] {
            let mut cmd = Command::new(binary(program));
            if program == "verdict-worker" {
                cmd.args(["run", "--noop"]);
            }
            let output = cmd
                .args(["--redis", url, "--log-format", "json"])
                .arg("--redis-ca")
                .arg(&ca)
                .output()
                .expect("runs");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(!output.status.success(), "{program} {url}: {text}");
            assert!(text.contains(expected), "{program} {url}: {text}");
        }
    }
}

/// A second verdict-api against the same Redis with `env`, on a free port.
fn api_with(
    redis_url: &str,
    env: &[(&str, String)],
    dir: &std::path::Path,
    what: &str,
) -> (ChildGuard, String) {
    let port = verdict_e2e::redis_server::free_port();
    let mut cmd = Command::new(binary("verdict-api"));
    cmd.args(["--redis", redis_url, "--log-format", "json"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--redis-timeout-ms", "3000"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info");
    let log = dir.join(format!("api-{}.log", what.replace(' ', "-")));
    let api = ChildGuard::spawn("verdict-api", cmd, &log);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the api did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (api, url)
}

/// `fleet up --redis rediss://... --redis-ca --redis-cert --redis-key`: the
/// watchdog's probes, the api, the workers and `fleet status` all reach the
/// TLS-only Redis with the private CA and the client certificate.
#[test]
fn a_fleet_runs_against_a_redis_behind_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let redis = verdict_e2e::RedisServer::start_tls(dir.path(), &pki);
    let fleet = verdict_e2e::fleet::Fleet::new();
    let url = redis.tls_url();
    let (ca, cert, key) = (
        pki.ca_cert.display().to_string(),
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
    );
    verdict_e2e::reliability::up(
        &fleet,
        1,
        &[
            "--noop-workers",
            "--redis",
            &url,
            "--redis-ca",
            &ca,
            "--redis-cert",
            &cert,
            "--redis-key",
            &key,
        ],
        &[],
    );
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(
        status["queue"]["depth"], 0,
        "fleet status read the queue: {status:#}"
    );
    let id = fleet.submit();
    assert_eq!(fleet.wait_job(&id, PATIENCE)["state"], "done");

    // Without the CA the same URL is refused by the handshake, and said so.
    let other = verdict_e2e::fleet::Fleet::new();
    let bind = format!("127.0.0.1:{}", other.port);
    let refused = other.run(&[
        "up",
        "--allow-root",
        "--noop-workers",
        "--redis",
        &url,
        "--bind",
        &bind,
        "--timeout",
        "10s",
    ]);
    assert!(!refused.ok(), "{}", refused.output());
    let log = other.log("api");
    assert!(
        refused.output().contains("certificate")
            || log.contains("certificate")
            || log.contains("UnknownIssuer"),
        "nothing says why:\n{}\n{log}",
        refused.output()
    );
}
