//! The processes also work over `redis://` TCP, not only unix sockets.

use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

use crate::PATIENCE;

#[tokio::test(flavor = "multi_thread")]
async fn a_job_runs_over_a_tcp_redis_url() {
    let mut stack = Stack::start(StackOptions {
        tcp: true,
        ..Default::default()
    })
    .await;
    assert!(stack.redis_url().starts_with("redis://127.0.0.1:"));
    stack.start_workers(&["tcp"], &["--noop"]).await;
    let client = stack.client();
    let id = client.submit(&png(8, 8), &["over tcp"]).await;
    let job = client.wait_end(&id, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["worker"], "tcp");
}
