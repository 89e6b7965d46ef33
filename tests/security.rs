//! Security basics of a fleet.
//!
//! - The api token, from `--api-token-file` or from `VERDICT_API_TOKEN` in
//!   `fleet up`'s environment: every `/v1` request without `Authorization:
//!   Bearer <token>` (or with a wrong one) gets 401 with the JSON error
//!   body; health probes stay open; only the api process holds the token,
//!   and no command line shows it.
//! - The home, its directories, sockets, logs and files are private to the
//!   fleet's user (modes checked; when the test runs as root, also tried as
//!   the `nobody` user, who must be refused).
//! - The api listens on 127.0.0.1 unless told otherwise.
//! - Cross-site requests: a page from another origin cannot submit jobs
//!   (`403 cross_origin`), a request naming another host (DNS rebinding)
//!   gets `421 misdirected_host`; the api's own page and non-browser
//!   clients are unaffected, and `--cors-origin` admits a named origin.
//! - A Redis password (in `VERDICT_REDIS_URL`) reaches the api and the
//!   workers in their environment, on no command line, in no log and not in
//!   `fleet status --json`; the callback secret reaches the api alone.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;
use verdict_e2e::ApiClient;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::{Fleet, bin_dir};
use verdict_e2e::reliability::up;

const TOKEN: &str = "s3cret-token-for-the-e2e-test-0123";

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value, Option<String>) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        challenge,
    )
}

/// Every /v1 route refuses without the token and accepts with it.
async fn the_token_is_required(client: &ApiClient) {
    let http = client.http();
    let body = serde_json::json!({
        "image_base64": base64_png(),
        "texts": ["with a token"],
    });
    let some_id = verdict_shared::job::JobId::new().to_string();
    let refused = [
        http.post(client.url("/v1/jobs")).json(&body),
        http.get(client.url(&format!("/v1/jobs/{some_id}"))),
        http.post(client.url(&format!("/v1/jobs/{some_id}/cancel"))),
        http.get(client.url("/v1/dead")),
        http.post(client.url(&format!("/v1/dead/{some_id}/retry"))),
        http.delete(client.url(&format!("/v1/dead/{some_id}"))),
        http.get(client.url("/v1/no-such-route")),
        http.post(client.url("/v1/jobs"))
            .bearer_auth("not-the-token")
            .json(&body),
        http.post(client.url("/v1/jobs"))
            .header("authorization", format!("Basic {TOKEN}"))
            .json(&body),
        http.post(client.url("/v1/jobs"))
            .bearer_auth(&TOKEN[..TOKEN.len() - 1])
            .json(&body),
    ];
    for request in refused {
        let (status, body, challenge) = send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"verdict\""));
    }
    // Probes need no token.
    for path in ["/healthz", "/readyz"] {
        let (status, body, _) = send(http.get(client.url(path))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // With the token (the scheme is case-insensitive) everything works.
    let (status, job, _) = send(
        http.post(client.url("/v1/jobs"))
            .header("authorization", format!("bearer {TOKEN}"))
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("id");
    let (status, job, _) = send(
        http.get(client.url(&format!("/v1/jobs/{id}?wait=30")))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "done", "{job}");
}

fn base64_png() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(png(8, 8))
}

/// The environment of a process, as `NAME=value` strings.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

/// Only the api holds the token, in its environment; no command line shows it.
fn only_the_api_holds_the_token(fleet: &Fleet) {
    let holds = |pid: u32| environ(pid).iter().any(|v| v.contains(TOKEN));
    let api = fleet.pid_in_file("api").expect("api.pid");
    assert!(holds(api), "the api has no token in its environment");
    for name in ["watchdog", "redis", "worker-0"] {
        let pid = fleet.pid_in_file(name).expect("pid");
        assert!(!holds(pid), "{name} has the token in its environment");
    }
    for name in ["watchdog", "redis", "api", "worker-0"] {
        let pid = fleet.pid_in_file(name).expect("pid");
        assert!(
            !cmdline(pid).contains(TOKEN),
            "{name}'s command line shows the token"
        );
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Nothing in the home is open to other users.
fn the_home_is_private(fleet: &Fleet) {
    let home = fleet.home();
    for dir in ["", "run", "logs", "redis"] {
        assert_eq!(mode(&home.join(dir)), 0o700, "{}/{dir}", home.display());
    }
    for entry in walk(home) {
        let m = mode(&entry);
        assert_eq!(m & 0o077, 0, "{} has mode {m:o}", entry.display());
    }
    for socket in ["run/redis.sock", "run/watchdog.sock"] {
        assert_eq!(mode(&home.join(socket)), 0o600, "{socket}");
    }
    // As another user (possible when the test runs as root): refused.
    if !nix::unistd::geteuid().is_root() {
        println!("security: not root, so the access as `nobody` was not tried (modes checked)");
        return;
    }
    let as_nobody = |program: &str, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run as nobody");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let connect = |socket: &Path| {
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint('CONNECTED')";
        as_nobody("python3", &["-c", script, socket.to_str().unwrap()])
    };
    for (what, out) in [
        (
            "reading logs/api.log",
            as_nobody("cat", &[home.join("logs/api.log").to_str().unwrap()]),
        ),
        (
            "listing run/",
            as_nobody("ls", &[home.join("run").to_str().unwrap()]),
        ),
        (
            "connecting to run/redis.sock",
            connect(&home.join("run/redis.sock")),
        ),
        (
            "connecting to run/watchdog.sock",
            connect(&home.join("run/watchdog.sock")),
        ),
    ] {
        assert!(!out.contains("CONNECTED"), "{what} as nobody: {out}");
        assert!(
            out.contains("Permission denied") || out.contains("PermissionError"),
            "{what} as nobody was not refused: {out}"
        );
    }
    println!("security: as `nobody`: logs, run/, the Redis socket and the control socket refused");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn the_token_from_a_file_guards_v1_and_the_home_is_private() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fleet = Fleet::new();
    let token_file = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(token_file.path(), format!("{TOKEN}\n")).expect("write token");
    up(
        &fleet,
        1,
        &[
            "--noop-workers",
            "--api-token-file",
            token_file.path().to_str().unwrap(),
        ],
        &[],
    );
    runtime.block_on(the_token_is_required(&ApiClient::new(&fleet.api_url())));
    only_the_api_holds_the_token(&fleet);
    the_home_is_private(&fleet);
    let config = std::fs::read_to_string(fleet.home().join("run/fleet.json")).unwrap();
    assert!(
        config.contains("api_token"),
        "the token is kept for restarts"
    );
}

#[test]
fn the_token_from_the_environment_guards_v1() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fleet = Fleet::new();
    up(
        &fleet,
        1,
        &["--noop-workers"],
        &[("VERDICT_API_TOKEN", TOKEN)],
    );
    runtime.block_on(the_token_is_required(&ApiClient::new(&fleet.api_url())));
    only_the_api_holds_the_token(&fleet);
}

#[test]
fn without_a_token_v1_is_open_and_the_default_bind_is_loopback() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fleet = Fleet::new();
    up(&fleet, 1, &["--noop-workers"], &[]);
    let client = ApiClient::new(&fleet.api_url());
    runtime.block_on(async {
        let id = client.submit(&png(8, 8), &["no token needed"]).await;
        assert_eq!(
            client
                .wait_end(&id, std::time::Duration::from_secs(30))
                .await["state"],
            "done"
        );
    });
    for (program, args) in [
        ("verdict-api", vec!["--help"]),
        ("fleet", vec!["up", "--help"]),
    ] {
        let output = Command::new(bin_dir().join(program))
            .args(&args)
            .output()
            .expect("--help");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            help.contains("[default: 127.0.0.1:7860]"),
            "{program} does not default to loopback:\n{help}"
        );
    }
}

#[test]
fn the_redis_password_and_the_callback_secret_reach_only_the_processes_that_need_them() {
    const PASSWORD: &str = "redis-pw-3a9c1e77";
    const SECRET: &str = "callback-secret-5d20b4aa";
    let scratch = tempfile::tempdir().expect("tempdir");
    let redis = verdict_e2e::RedisServer::start_tcp_with_password(scratch.path(), PASSWORD);
    let url = redis
        .tcp_url()
        .replace("redis://", &format!("redis://:{PASSWORD}@"));
    let fleet = Fleet::new();
    up(
        &fleet,
        1,
        &["--noop-workers"],
        &[
            ("VERDICT_REDIS_URL", &url),
            ("VERDICT_CALLBACK_SECRET", SECRET),
        ],
    );
    // The fleet works through the password: a job is answered.
    let job = fleet.submit();
    let answer = fleet.wait_job(&job, std::time::Duration::from_secs(60));
    assert_eq!(answer["state"], "done", "{answer}");

    for name in ["watchdog", "api", "worker-0"] {
        let pid = fleet.pid_in_file(name).expect("pid");
        assert!(
            !cmdline(pid).contains(PASSWORD),
            "{name}'s command line shows the Redis password: {}",
            cmdline(pid)
        );
    }
    let has = |pid: u32, needle: &str| environ(pid).iter().any(|v| v.contains(needle));
    let api = fleet.pid_in_file("api").expect("api.pid");
    let worker = fleet.pid_in_file("worker-0").expect("worker-0.pid");
    assert!(
        has(api, PASSWORD) && has(worker, PASSWORD),
        "the URL travels in the environment"
    );
    assert!(
        has(api, SECRET),
        "the api signs callbacks: it needs the secret"
    );
    assert!(
        !has(worker, SECRET),
        "a worker sends no callbacks: it must not hold the secret"
    );

    let (_, status) = fleet.status();
    assert!(
        !status.to_string().contains(PASSWORD),
        "fleet status --json: {status}"
    );
    for log in ["watchdog", "api", "worker-0"] {
        assert!(
            !fleet.log(log).contains(PASSWORD),
            "{log}.log holds the Redis password"
        );
    }
    assert!(fleet.run(&["down"]).ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_requests_and_other_hosts_are_refused() {
    let stack = verdict_e2e::Stack::start(verdict_e2e::StackOptions {
        api_args: vec!["--cors-origin".into(), "https://tools.example".into()],
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let jobs = format!("{}/v1/jobs", stack.api_url);
    let own_origin = stack.api_url.clone();
    let form = || {
        reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(png(8, 8))
                    .file_name("x.png")
                    .mime_str("image/png")
                    .unwrap(),
            )
            .text("text", "a small test image")
    };
    // A page on another site posting a form: refused, nothing enqueued.
    let (status, body, _) = send(
        http.post(&jobs)
            .header("Origin", "http://evil.example")
            .multipart(form()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "cross_origin", "{body}");
    // A rebound name: refused whatever the method.
    let (status, body, _) = send(
        http.get(format!("{}/healthz", stack.api_url))
            .header("Host", "evil.example:7860"),
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "misdirected_host", "{body}");
    // The api's own page, an allowed origin and a client without Origin.
    for origin in [
        Some(own_origin.as_str()),
        Some("https://tools.example"),
        None,
    ] {
        let mut request = http.post(&jobs).multipart(form());
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let (status, body, _) = send(request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{origin:?}: {body}");
    }
}
