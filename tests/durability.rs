//! Durability of the embedded Redis.
//!
//! With `fleet up --durability strict` (appendfsync always) every job the api
//! accepted (202) survives `kill -9` of Redis, sent right after the last
//! acceptance: the watchdog restarts Redis, which reloads its append-only
//! file, and every job still ends done.
//!
//! The same is measured, not asserted, with the default (`normal`,
//! appendfsync everysec): Redis writes the append-only file before it replies
//! in both modes, so killing the Redis process alone loses nothing in either;
//! what `always` adds is an fsync before the reply, which only a crash of the
//! whole machine (or power) would show. The test prints submit latency in
//! both modes: what that fsync costs on this machine's disk.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use verdict_e2e::ApiClient;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::{Fleet, alive, process, wait_for};
use verdict_e2e::reliability::{percentiles_ms, redis, up};

const ACCEPTED: usize = 200;
const PATIENCE: Duration = Duration::from_secs(120);

/// Starts a fleet with `durability`, submits [`ACCEPTED`] jobs one after the
/// other (timing each), kills Redis with SIGKILL right after the last 202,
/// and returns the submit latencies and how many accepted jobs were lost.
fn accept_then_kill_redis(durability: &str) -> (Vec<Duration>, usize) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fleet = Fleet::new();
    // Workers slow enough that most jobs are still queued when Redis dies.
    up(
        &fleet,
        2,
        &[
            "--noop-workers",
            "--worker-arg=--noop-delay-ms=20",
            "--durability",
            durability,
        ],
        &[],
    );
    let appendfsync: Vec<String> = runtime.block_on(async {
        let mut conn = redis(&fleet).await;
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query_async(&mut conn)
            .await
            .expect("CONFIG GET")
    });
    let expected = if durability == "strict" {
        "always"
    } else {
        "everysec"
    };
    assert_eq!(appendfsync, ["appendfsync", expected]);

    let client = ApiClient::new(&fleet.api_url());
    let image = png(8, 8);
    let redis_pid = fleet.pid_in_file("redis").expect("redis.pid");
    let (latencies, ids) = runtime.block_on(async {
        let mut latencies = Vec::with_capacity(ACCEPTED);
        let mut ids = Vec::with_capacity(ACCEPTED);
        for i in 0..ACCEPTED {
            let asked = Instant::now();
            ids.push(client.submit(&image, &[&format!("job {i}")]).await);
            latencies.push(asked.elapsed());
        }
        (latencies, ids)
    });
    kill(Pid::from_raw(redis_pid as i32), Signal::SIGKILL).expect("kill -9 redis");

    // The watchdog brings Redis back (one crash); the fleet is whole again.
    wait_for(Duration::from_secs(30), || {
        fleet
            .pid_in_file("redis")
            .filter(|&pid| pid != redis_pid && alive(pid))
    })
    .expect("Redis was not restarted");
    let lost = runtime.block_on(async {
        let mut lost = 0;
        for id in &ids {
            let deadline = Instant::now() + PATIENCE;
            loop {
                let answer = client.get_job(id, Some(10.0)).await;
                match answer.status.as_u16() {
                    200 if answer.body["state"] == "done" => break,
                    200 | 503 => {}
                    404 => {
                        lost += 1;
                        break;
                    }
                    other => panic!("job {id}: {other} {}", answer.body),
                }
                assert!(Instant::now() < deadline, "job {id} never ended");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        lost
    });
    let (_, status) = fleet.status();
    assert_eq!(process(&status, "redis")["restarts"], 1, "{status:#}");
    assert_eq!(process(&status, "redis")["last_exit"]["signal"], "SIGKILL");
    (latencies, lost)
}

#[test]
fn strict_durability_keeps_every_accepted_job_through_kill_9_of_redis() {
    let started = Instant::now();
    let (mut strict, lost) = accept_then_kill_redis("strict");
    assert_eq!(lost, 0, "{lost} accepted jobs lost with appendfsync always");
    let (mut normal, lost_normal) = accept_then_kill_redis("normal");
    let strict_p = percentiles_ms(&mut strict, &[0.5, 0.9, 0.99]);
    let normal_p = percentiles_ms(&mut normal, &[0.5, 0.9, 0.99]);
    println!(
        "durability: submit latency (one at a time, {ACCEPTED} jobs, 8x8 PNG, p50/p90/p99): \
         strict (always) {:.2}/{:.2}/{:.2} ms, normal (everysec) {:.2}/{:.2}/{:.2} ms",
        strict_p[0], strict_p[1], strict_p[2], normal_p[0], normal_p[1], normal_p[2]
    );
    println!(
        "durability: kill -9 of Redis right after the last 202: lost 0 of {ACCEPTED} (strict), \
         {lost_normal} of {ACCEPTED} (normal); test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
