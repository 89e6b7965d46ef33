//! One client must not take the api down (issue 14, item 1).
//!
//! Against a real verdict-api (and redis-server, and a no-op worker):
//!
//! - 2,000 idle connections, a client that sends its headers one byte a
//!   second and one that sends its body one byte a second do not stop a
//!   normal client's job from being accepted and answered, nor `/healthz`;
//! - the idle and slow connections are closed by the api within its
//!   header timeout (idle, slow headers) or body grace (`408 body_too_slow`);
//! - past `--max-connections`, a new connection gets `503
//!   too_many_connections` with a JSON body, and the connections being
//!   served are not disturbed;
//! - once they have gone, the api's resident memory is back near where it
//!   started.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads until EOF or `limit`; true when the server closed the connection.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> (bool, String) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (true, String::from_utf8_lossy(&got).into_owned()),
        }
    }
    (false, String::from_utf8_lossy(&got).into_owned())
}

async fn normal_job_is_answered(stack: &Stack) {
    let client = stack.client();
    let (status, _) = client.get_path("/healthz").await;
    assert_eq!(status, 200, "/healthz during the flood");
    let answer = client.submit_json(&png(8, 8), &["a test sentence"]).await;
    assert_eq!(
        answer.status, 202,
        "submission during the flood: {}",
        answer.body
    );
    let id = answer.body["id"].as_str().expect("id").to_string();
    let job = client.wait_end(&id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_clients_do_not_stop_a_normal_client() {
    let mut stack = Stack::start(StackOptions {
        api_args: vec![
            "--header-timeout".into(),
            "3".into(),
            "--body-grace".into(),
            "3".into(),
        ],
        ..StackOptions::default()
    })
    .await;
    stack.start_workers(&["w"], &["--noop"]).await;
    let api_pid = stack.api().pid();
    normal_job_is_answered(&stack).await;
    let baseline = rss_kb(api_pid);
    let addr = host_port(&stack.api_url);

    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    // Headers one byte a second.
    let mut slow_headers = TcpStream::connect(&addr).expect("connect");
    let header_addr = addr.clone();
    let header_writer = std::thread::spawn({
        let mut stream = slow_headers.try_clone().unwrap();
        move || {
            let head = format!("GET /healthz HTTP/1.1\r\nHost: {header_addr}\r\nX-Slow: ");
            for byte in head.bytes().chain(std::iter::repeat_n(b'a', 30)) {
                if stream.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    });
    // A body one byte a second.
    let mut slow_body = TcpStream::connect(&addr).expect("connect");
    write!(
        slow_body,
        "POST /v1/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    let body_writer = std::thread::spawn({
        let mut stream = slow_body.try_clone().unwrap();
        move || {
            for _ in 0..30 {
                if stream.write_all(b"{").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    });
    let peak = rss_kb(api_pid);

    normal_job_is_answered(&stack).await;

    let (closed, answer) = closed_within(&mut slow_body, Duration::from_secs(20));
    assert!(closed, "the slow body is still open after 20 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_too_slow"), "{answer}");
    let (closed, _) = closed_within(&mut slow_headers, Duration::from_secs(20));
    assert!(closed, "the slow headers are still open after 20 s");
    let mut idle = idle;
    for stream in idle.iter_mut().step_by(100) {
        let (closed, _) = closed_within(stream, Duration::from_secs(20));
        assert!(closed, "an idle connection is still open after 20 s");
    }
    drop(idle);
    let _ = header_writer.join();
    let _ = body_writer.join();
    normal_job_is_answered(&stack).await;

    // Memory back near the baseline (allocator pages may lag a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = rss_kb(api_pid);
    while now > baseline + 20 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = rss_kb(api_pid);
    }
    println!("api RSS: baseline {baseline} kB, with the flood {peak} kB, after {now} kB");
    assert!(
        now <= baseline + 20 * 1024,
        "api RSS {now} kB after the flood, baseline {baseline} kB (peak {peak} kB)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_connections_a_new_connection_gets_a_json_503() {
    // No worker and no other client: the fifty below are the api's only
    // connections (a pooled client connection would hold a permit, and free
    // it whenever its pool closed it).
    let stack = Stack::start(StackOptions {
        api_args: vec!["--max-connections".into(), "50".into()],
        ..StackOptions::default()
    })
    .await;
    let addr = host_port(&stack.api_url);
    let held: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    // Let the api accept all fifty.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut extra = TcpStream::connect(&addr).expect("connect");
    let _ = write!(extra, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (closed, answer) = closed_within(&mut extra, Duration::from_secs(5));
    assert!(closed, "the connection past the limit was not closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(json["error"]["code"], "too_many_connections", "{json}");

    // The connections being served still are.
    let mut first = held.into_iter().next().unwrap();
    write!(
        first,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (_, answer) = closed_within(&mut first, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
