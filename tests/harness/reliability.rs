//! Helpers for the reliability tests (issue 6): a fleet started with any
//! flags and environment (real model or no-op workers), its Redis for
//! reading counters and the dead-letter stream, small photos with known
//! verdicts, and timing figures.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verdict_shared::queue::dead_letter::{self, DeadLetterEntry};
use verdict_shared::queue::stats::{QueueStats, read_stats};

use crate::fixtures::{model_dir, photo};
use crate::fleet::{Fleet, Run};

/// Runs `cmd` to completion (killed after `limit`).
pub fn run_command(mut cmd: Command, limit: Duration) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run fleet");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `fleet up --allow-root --workers N --bind 127.0.0.1:PORT --timeout 120s
/// EXTRA...` with `env` added to its environment (the watchdog, and through
/// it every process, inherits it). Panics with the output if it fails.
pub fn up(fleet: &Fleet, workers: usize, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let workers = workers.to_string();
    let bind = format!("127.0.0.1:{}", fleet.port);
    let mut args = vec![
        "up",
        "--allow-root",
        "--workers",
        &workers,
        "--bind",
        &bind,
        "--timeout",
        "120s",
    ];
    args.extend_from_slice(extra);
    let mut cmd = fleet.command(&args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let run = run_command(cmd, Duration::from_secs(180));
    assert!(run.ok(), "fleet up failed:\n{}", run.output());
    run
}

/// `--model DIR` for the real model pack, as owned strings.
pub fn model_args() -> Vec<String> {
    vec![
        "--model".into(),
        model_dir().to_str().expect("UTF-8 model path").into(),
    ]
}

/// The fleet's embedded Redis.
pub async fn redis(fleet: &Fleet) -> redis::aio::MultiplexedConnection {
    let url = format!("unix://{}", fleet.home().join("run/redis.sock").display());
    redis::Client::open(url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects to the fleet's redis")
}

/// The queue counters.
pub async fn stats(conn: &mut redis::aio::MultiplexedConnection) -> QueueStats {
    read_stats(conn).await.expect("read verdict:stats")
}

/// The dead-letter stream, newest first.
pub async fn dead_letters(conn: &mut redis::aio::MultiplexedConnection) -> Vec<DeadLetterEntry> {
    dead_letter::newest(conn, 1000)
        .await
        .expect("read verdict:dead")
}

/// A photo from `.cache/photos/`, scaled to fit 256x256 and stored as a
/// JPEG (quality 90): a few kB instead of hundreds, so a thousand jobs do
/// not push hundreds of MB through Redis, and the model (which looks at
/// 224x224) sees nearly the same picture.
pub fn small_photo(name: &str) -> Vec<u8> {
    let image = image::load_from_memory(&photo(name)).expect("the test photo decodes");
    let small = image.resize(256, 256, image::imageops::FilterType::Triangle);
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    small
        .to_rgb8()
        .write_with_encoder(encoder)
        .expect("encode jpeg");
    out
}

/// Percentiles of a list of durations (sorted here), in milliseconds.
pub fn percentiles_ms(samples: &mut [Duration], wanted: &[f64]) -> Vec<f64> {
    samples.sort();
    wanted
        .iter()
        .map(|p| {
            let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples
                .get(index)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        })
        .collect()
}

/// Where a test may leave files worth keeping (`target/reliability/`).
pub fn artifacts_dir() -> PathBuf {
    let dir = crate::binaries::workspace_root().join("target/reliability");
    std::fs::create_dir_all(&dir).expect("create target/reliability");
    dir
}
