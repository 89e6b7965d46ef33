//! `bench-image-reference`: what one job costs Redis when it carries its
//! image and when it names it (`image_path` under `--image-root`), side by
//! side, interleaved (inline, by path, inline, by path, ...).
//!
//! Each round submits N jobs while no worker runs (so they all sit in the
//! queue), reads Redis's `used_memory` (memory per queued job), then starts
//! two `--noop` workers and waits until every job is done: Redis's CPU time
//! (`INFO cpu`, user + system) and the bytes it received and sent (`INFO
//! stats`) over the whole life of the jobs, per job. The no-op judge makes
//! the round fast without changing what Redis does: the worker still reads
//! the image (from Redis, or from the folder) before judging. Every job's
//! image is coffee.png (600x400, ~466 KB) with a trailer of its own, as a
//! catalogue's photos are all different.
//!
//! Run it through `scripts/bench-image-reference`, which builds what it
//! needs; with `--write FILE` it replaces the "Images by reference" section
//! of FILE (`docs/benchmarks.md`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use verdict_e2e::bench_report::{cpu_model, write_section};
use verdict_e2e::fixtures::photo;
use verdict_e2e::{Stack, StackOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Inline,
    ByPath,
}

/// What Redis spent on one round, per job.
#[derive(Debug, Clone, Copy)]
struct PerJob {
    memory_bytes: f64,
    cpu_us: f64,
    net_bytes: f64,
    jobs_per_s: f64,
}

struct Redis {
    conn: redis::aio::MultiplexedConnection,
}

impl Redis {
    async fn info(&mut self, section: &str, field: &str) -> anyhow::Result<f64> {
        let info: String = redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.conn)
            .await?;
        info.lines()
            .find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
            .with_context(|| format!("no {field} in INFO {section}"))
    }

    async fn memory(&mut self) -> anyhow::Result<f64> {
        self.info("memory", "used_memory").await
    }

    async fn cpu_s(&mut self) -> anyhow::Result<f64> {
        Ok(self.info("cpu", "used_cpu_user").await? + self.info("cpu", "used_cpu_sys").await?)
    }

    async fn net_bytes(&mut self) -> anyhow::Result<f64> {
        Ok(self.info("stats", "total_net_input_bytes").await?
            + self.info("stats", "total_net_output_bytes").await?)
    }
}

async fn round(
    stack: &mut Stack,
    redis: &mut Redis,
    mode: Mode,
    round: usize,
    jobs: usize,
    image_dir: &Path,
) -> anyhow::Result<PerJob> {
    let client = stack.client();
    let base = photo("coffee.png");
    let bodies: Vec<serde_json::Value> = (0..jobs)
        .map(|n| {
            let mut bytes = base.clone();
            bytes.extend_from_slice(format!("bench-{mode:?}-{round}-{n}").as_bytes());
            let text = ["This is a ceramic coffee cup."];
            match mode {
                Mode::Inline => {
                    use base64::Engine;
                    json!({"image_base64": base64::engine::general_purpose::STANDARD.encode(&bytes), "texts": text})
                }
                Mode::ByPath => {
                    let name = format!("r{round}-{n}.png");
                    std::fs::write(image_dir.join(&name), &bytes).expect("write an image");
                    json!({"image_path": name, "texts": text})
                }
            }
        })
        .collect();

    let memory_before = redis.memory().await?;
    let cpu_before = redis.cpu_s().await?;
    let net_before = redis.net_bytes().await?;
    let began = Instant::now();
    let ids: Vec<String> = futures::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            async move {
                let answer = client
                    .http()
                    .post(client.url("/v1/jobs"))
                    .json(&body)
                    .send()
                    .await
                    .context("POST /v1/jobs")?;
                let status = answer.status();
                let body: serde_json::Value = answer.json().await?;
                if status != 202 {
                    bail!("submit refused: {status} {body}");
                }
                Ok(body["id"].as_str().context("an id")?.to_owned())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<anyhow::Result<String>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let memory_queued = redis.memory().await?;

    let names = [
        format!("r{round}-{mode:?}-a"),
        format!("r{round}-{mode:?}-b"),
    ];
    let root = image_dir.to_str().context("a UTF-8 folder")?.to_owned();
    for name in &names {
        stack.spawn_worker(
            name,
            &["--noop", "--batch-size", "16", "--image-root", &root],
        );
    }
    let ended: Vec<serde_json::Value> = futures::stream::iter(ids)
        .map(|id| {
            let client = client.clone();
            async move { client.wait_end(&id, Duration::from_secs(600)).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = began.elapsed().as_secs_f64();
    if let Some(job) = ended.iter().find(|job| job["state"] != "done") {
        bail!("a job did not end done: {job}");
    }
    for name in &names {
        let worker = stack.worker(name);
        worker.signal(nix::sys::signal::Signal::SIGTERM);
        worker.wait_exit(Duration::from_secs(30));
    }
    let n = jobs as f64;
    Ok(PerJob {
        memory_bytes: (memory_queued - memory_before) / n,
        cpu_us: (redis.cpu_s().await? - cpu_before) * 1e6 / n,
        net_bytes: (redis.net_bytes().await? - net_before) / n,
        jobs_per_s: n / elapsed,
    })
}

fn spread(values: &[f64], unit: &str, scale: f64, digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min) / scale;
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max) / scale;
    format!("{min:.digits$} to {max:.digits$} {unit}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut jobs = 200;
    let mut rounds = 3;
    let mut write = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--jobs" => jobs = value()?.parse()?,
            "--rounds" => rounds = value()?.parse()?,
            "--write" => write = Some(value()?),
            "--help" | "-h" => {
                println!(
                    "bench-image-reference [--jobs N] [--rounds N] [--write docs/benchmarks.md]"
                );
                return Ok(());
            }
            other => bail!("unknown flag {other}"),
        }
    }
    let images = tempfile::tempdir()?;
    let root = images.path().canonicalize()?;
    let mut stack = Stack::start(StackOptions {
        api_args: vec![
            "--max-queue-depth".into(),
            "0".into(),
            "--image-root".into(),
            root.to_str().context("a UTF-8 folder")?.into(),
        ],
        ..StackOptions::default()
    })
    .await;
    let mut redis = Redis {
        conn: stack.redis.connection().await,
    };
    let mut inline = Vec::new();
    let mut by_path = Vec::new();
    for r in 0..rounds {
        for mode in [Mode::Inline, Mode::ByPath] {
            let figures = round(&mut stack, &mut redis, mode, r, jobs, &root).await?;
            eprintln!("round {r} {mode:?}: {figures:?}");
            match mode {
                Mode::Inline => inline.push(figures),
                Mode::ByPath => by_path.push(figures),
            }
        }
    }
    let column = |rows: &[PerJob], pick: fn(&PerJob) -> f64, unit: &str, scale: f64, digits| {
        spread(
            &rows.iter().map(pick).collect::<Vec<_>>(),
            unit,
            scale,
            digits,
        )
    };
    let row = |what: &str, pick: fn(&PerJob) -> f64, unit: &str, scale: f64, digits: usize| {
        format!(
            "| {what} | {} | {} |\n",
            column(&inline, pick, unit, scale, digits),
            column(&by_path, pick, unit, scale, digits)
        )
    };
    let section = format!(
        "## Images by reference\n\n\
         Measured by `scripts/bench-image-reference` on {date}: {cpu}, {cpus} CPUs (shared); \
         the dev build (what the tests run); Redis on a unix socket, one `verdict-api`, two `verdict-worker --noop --batch-size 16`; \
         {rounds} rounds of {jobs} jobs each way, interleaved; every job a different 600x400 PNG \
         ({bytes} bytes plus a trailer) and one sentence. Memory: Redis's `used_memory` with the \
         round's jobs all queued (no worker yet) less before, per job. CPU and traffic: Redis's \
         `used_cpu_user + used_cpu_sys` and `total_net_input_bytes + total_net_output_bytes` from \
         the first submission until every job is done, per job (the api's reads of the results \
         included). Jobs/s: the whole round, submission included, no-op judge. 1-minute load \
         average {load} when it ended (other builds on this shared machine count in it).\n\n\
         | per job | image inline (`image_base64`) | by path (`image_path`) |\n| --- | --- | --- |\n\
         {memory}{cpu_row}{net}{rate}\n\
         A job by reference keeps the image's bytes out of Redis altogether: what Redis holds and \
         moves for it is the job's JSON and the reference, so a fleet's Redis is no longer what \
         caps it at 500 KB a photo; the workers then need the shared folder (or the image \
         server) to keep up instead.\n",
        date = time::OffsetDateTime::now_utc().date(),
        load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned()),
        cpu = cpu_model(),
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        bytes = photo("coffee.png").len(),
        memory = row(
            "Redis memory while queued",
            |p| p.memory_bytes,
            "KB",
            1000.0,
            1
        ),
        cpu_row = row("Redis CPU, submit to done", |p| p.cpu_us, "µs", 1.0, 0),
        net = row(
            "Redis network traffic, in + out",
            |p| p.net_bytes,
            "KB",
            1000.0,
            1
        ),
        rate = row("jobs/s (no-op judge)", |p| p.jobs_per_s, "jobs/s", 1.0, 0),
    );
    println!("{section}");
    if let Some(path) = &write {
        write_section(path, &section)?;
        eprintln!("wrote the Images by reference section of {path}");
    }
    Ok(())
}
