//! `bench-queue`: jobs per second and submit-to-done latency through the
//! whole path — HTTP submit, Redis, worker processes, finish script, pub/sub
//! wake-up, HTTP answer — on this machine, with real processes.
//!
//! Run it through `scripts/bench-queue`, which builds what it needs. Two
//! phases:
//! 1. latency: jobs one at a time (submit, then long-poll until done), so
//!    the figures are the path's own cost, not queueing behind other jobs;
//! 2. throughput: many jobs submitted by concurrent clients; jobs/s from the
//!    first submission to the last finish, and latency from each job's
//!    submission (client clock) to its `finished_at` (Redis clock; the same
//!    host, so the same clock).
//!
//! With the no-op judge every job carries the same tiny PNG: the figures are
//! the queue's own. With `--model` every job carries coffee.png (600x400)
//! with a different trailer after its end chunk, so each job's bytes are new
//! to the worker's image cache and each job really decodes and runs the image
//! encoder (the sentence, a catalogue rule, is the same for all, as in a
//! moderation run).
//!
//! With `--write FILE` it replaces this mode's section of FILE
//! (`docs/benchmarks.md`: "## Queue (no-op judge)" or "## Queue (default
//! model)") with the results and keeps the other sections.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use verdict_e2e::bench_report::{cpu_model, write_section};
use verdict_e2e::fixtures::{photo, png};
use verdict_e2e::{ApiClient, Stack, StackOptions};

#[derive(Debug, Clone)]
struct Options {
    jobs: usize,
    latency_jobs: usize,
    concurrency: usize,
    workers: usize,
    batch_size: usize,
    /// The workers' `--read-ahead`: while a read's jobs run, read the jobs
    /// queued behind them (up to twice `batch_size` in hand).
    read_ahead: bool,
    /// Jobs per `POST /v1/batches` request in the throughput phase (the
    /// path `fleet batch` takes); 0: one `POST /v1/jobs` a job.
    submit_batch: usize,
    /// Job ids per `POST /v1/jobs/wait` request when the throughput phase
    /// reads its results; 0: one `GET /v1/jobs/{id}?wait=` a job.
    read_batch: usize,
    model: Option<String>,
    write: Option<String>,
    json: Option<String>,
    /// Log every Redis command of the throughput phase (`SLOWLOG` with no
    /// threshold) and write, in `--json`, the microseconds a job each step's
    /// script and each plain command took.
    slowlog: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        jobs: 20_000,
        latency_jobs: 500,
        concurrency: 64,
        workers: 2,
        batch_size: 16,
        read_ahead: true,
        submit_batch: 0,
        read_batch: 0,
        model: None,
        write: None,
        json: None,
        slowlog: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--jobs" => options.jobs = value()?.parse()?,
            "--latency-jobs" => options.latency_jobs = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--workers" => options.workers = value()?.parse()?,
            "--batch-size" => options.batch_size = value()?.parse()?,
            "--read-ahead" => options.read_ahead = value()?.parse()?,
            "--submit-batch" => options.submit_batch = value()?.parse()?,
            "--read-batch" => options.read_batch = value()?.parse()?,
            "--model" => options.model = Some(value()?),
            "--write" => options.write = Some(value()?),
            "--json" => options.json = Some(value()?),
            "--slowlog" => options.slowlog = true,
            "--help" | "-h" => {
                println!(
                    "bench-queue [--jobs N] [--latency-jobs N] [--concurrency N] [--workers N] \
                     [--batch-size N] [--read-ahead true|false] [--submit-batch N] [--read-batch N] [--model DIR] \
                     [--write docs/benchmarks.md] [--json FILE] [--slowlog]\n\
                     Without --model the workers run --noop (the queue alone). --json writes \
                     the throughput phase's figures, with Redis's CPU time and commands per \
                     job (for scripts/bench-bullmq). --submit-batch N sends the throughput \
                     phase's jobs N at a time through POST /v1/batches (the catalogue path \
                     of `fleet batch`) instead of one POST /v1/jobs each. --read-batch N reads \
                     its results N ids a request through POST /v1/jobs/wait instead of one \
                     GET /v1/jobs/{{id}}?wait= each (--concurrency requests at once). --slowlog logs every \
                     Redis command of the throughput phase (SLOWLOG, no threshold: it costs Redis \
                     time of its own, so keep its jobs/s apart) and adds to --json the \
                     microseconds a job by script step (submit, start, finish, ...) and by plain \
                     command."
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

/// The jobs submitted, with the client's clock when each was sent.
type Submitted = Arc<std::sync::Mutex<Vec<(String, OffsetDateTime)>>>;

/// The throughput phase's submissions, one `POST /v1/jobs` a job from
/// `--concurrency` clients at once.
async fn submit_one_by_one(
    client: &ApiClient,
    options: &Options,
    image_for: &(dyn Fn(usize) -> Vec<u8> + Sync),
    text: &[&str],
    submitted_at: &Submitted,
) {
    futures::stream::iter(0..options.jobs)
        .for_each_concurrent(options.concurrency, |n| {
            let client = client.clone();
            let image = image_for(options.latency_jobs + n);
            let submitted_at = submitted_at.clone();
            async move {
                let t0 = now();
                let answer = client.submit_json(&image, text).await;
                if answer.status == 202 {
                    if let Some(id) = answer.body["id"].as_str() {
                        submitted_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((id.to_owned(), t0));
                    }
                } else {
                    eprintln!("submit refused: {} {}", answer.status, answer.body);
                }
            }
        })
        .await;
}

/// The throughput phase's submissions through `POST /v1/batches`,
/// `--submit-batch` jobs a request, `--concurrency` requests at once.
async fn submit_in_batches(
    client: &ApiClient,
    options: &Options,
    image_for: &(dyn Fn(usize) -> Vec<u8> + Sync),
    text: &[&str],
    submitted_at: &Submitted,
) -> anyhow::Result<()> {
    use base64::Engine;
    let starts: Vec<usize> = (0..options.jobs).step_by(options.submit_batch).collect();
    let answers: Vec<anyhow::Result<()>> = futures::stream::iter(starts)
        .map(|start| {
            let end = (start + options.submit_batch).min(options.jobs);
            let jobs: Vec<serde_json::Value> = (start..end)
                .map(|n| {
                    serde_json::json!({
                        "image_base64": base64::engine::general_purpose::STANDARD
                            .encode(image_for(options.latency_jobs + n)),
                        "texts": text,
                    })
                })
                .collect();
            let body = serde_json::json!({ "jobs": jobs });
            async move {
                let t0 = now();
                let response = client
                    .http()
                    .post(client.url("/v1/batches"))
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let answer: serde_json::Value = response.json().await?;
                if !status.is_success() {
                    bail!("POST /v1/batches answered {status}: {answer}");
                }
                let mut ids = Vec::new();
                for item in answer["jobs"].as_array().into_iter().flatten() {
                    match (item["status"].as_u64(), item["job"]["id"].as_str()) {
                        (Some(202), Some(id)) => ids.push((id.to_owned(), t0)),
                        _ => bail!(
                            "job {} of the batch was refused: {} {}",
                            item["index"],
                            item["status"],
                            item["error"]
                        ),
                    }
                }
                submitted_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(ids);
                Ok(())
            }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    answers.into_iter().collect()
}

/// An ended job: when it finished, its latency from submission (ms), and
/// whether it is `done`.
type Ended = anyhow::Result<(OffsetDateTime, f64, bool)>;

fn ended(job: &serde_json::Value, t0: OffsetDateTime) -> Ended {
    let finished = stamp(job, "finished_at")?;
    Ok((finished, ms_between(t0, finished), job["state"] == "done"))
}

/// The throughput phase's results, one `GET /v1/jobs/{id}?wait=` a job
/// from `--concurrency` clients at once.
async fn read_one_by_one(
    client: &ApiClient,
    options: &Options,
    submitted: Vec<(String, OffsetDateTime)>,
) -> Vec<Ended> {
    futures::stream::iter(submitted)
        .map(|(id, t0)| {
            let client: ApiClient = client.clone();
            async move { ended(&client.wait_end(&id, Duration::from_secs(600)).await, t0) }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await
}

/// The throughput phase's results through `POST /v1/jobs/wait`,
/// `--read-batch` ids a request, `--concurrency` requests at once; a
/// request's jobs that have not ended when its wait runs out are asked
/// for again.
async fn read_in_batches(
    client: &ApiClient,
    options: &Options,
    submitted: Vec<(String, OffsetDateTime)>,
) -> Vec<Ended> {
    let groups: Vec<Vec<(String, OffsetDateTime)>> = submitted
        .chunks(options.read_batch)
        .map(<[_]>::to_vec)
        .collect();
    let answers: Vec<Vec<Ended>> = futures::stream::iter(groups)
        .map(|mut group| async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut out = Vec::new();
            while !group.is_empty() {
                if Instant::now() > deadline {
                    out.push(Err(anyhow::anyhow!(
                        "{} jobs not ended after 600 s",
                        group.len()
                    )));
                    break;
                }
                let ids: Vec<&str> = group.iter().map(|(id, _)| id.as_str()).collect();
                let answer = match wait_jobs(client, &ids).await {
                    Ok(answer) => answer,
                    Err(err) => {
                        out.push(Err(err));
                        break;
                    }
                };
                let mut pending = Vec::new();
                for ((id, t0), item) in group.into_iter().zip(answer) {
                    match item["job"]["state"].as_str() {
                        Some("done" | "failed" | "cancelled") => out.push(ended(&item["job"], t0)),
                        Some(_) => pending.push((id, t0)),
                        None => out.push(Err(anyhow::anyhow!("job {id}: {item}"))),
                    }
                }
                group = pending;
            }
            out
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    answers.into_iter().flatten().collect()
}

/// `POST /v1/jobs/wait` with a 60-second wait: its items, in order.
async fn wait_jobs(client: &ApiClient, ids: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let response = client
        .http()
        .post(client.url("/v1/jobs/wait"))
        .json(&serde_json::json!({ "ids": ids, "wait": 60 }))
        .send()
        .await?;
    let status = response.status();
    let mut answer: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("POST /v1/jobs/wait answered {status}: {answer}");
    }
    let items = match answer["jobs"].take() {
        serde_json::Value::Array(items) if items.len() == ids.len() => items,
        other => bail!("POST /v1/jobs/wait: {} ids, answered {other}", ids.len()),
    };
    Ok(items)
}

/// Percentile (nearest rank) of sorted milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&ms, 50.0),
        pct(&ms, 90.0),
        pct(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    )
}

fn stamp(job: &serde_json::Value, field: &str) -> anyhow::Result<OffsetDateTime> {
    let text = job[field]
        .as_str()
        .with_context(|| format!("{field} missing in {job}"))?;
    Ok(OffsetDateTime::parse(text, &Rfc3339)?)
}

fn ms_between(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (b - a).as_seconds_f64() * 1000.0
}

fn now() -> OffsetDateTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    OffsetDateTime::from_unix_timestamp_nanos(since.as_nanos() as i128)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    // No backpressure: the throughput phase submits far more jobs than the
    // api's default queue limit, on purpose (the limit is tested elsewhere).
    let mut stack = Stack::start(StackOptions {
        api_args: vec!["--max-queue-depth".into(), "0".into()],
        ..StackOptions::default()
    })
    .await;
    let names: Vec<String> = (0..options.workers).map(|i| format!("bench-{i}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let batch = options.batch_size.to_string();
    let read_ahead = options.read_ahead.to_string();
    let mut worker_args = vec![
        "--batch-size",
        batch.as_str(),
        "--read-ahead",
        read_ahead.as_str(),
    ];
    match &options.model {
        Some(model) => worker_args.extend(["--model", model.as_str()]),
        None => worker_args.push("--noop"),
    }
    stack.start_workers(&name_refs, &worker_args).await;
    let client = stack.client();
    let text = ["This is a ceramic coffee cup."];
    let (mode, base_image) = if options.model.is_some() {
        ("default model", photo("coffee.png"))
    } else {
        ("no-op judge", png(64, 64))
    };
    let real_model = options.model.is_some();
    // Job n's image: the same picture, and with the real model bytes of its
    // own (a trailer after the PNG's end that decoders ignore), so the
    // worker's image cache never answers for it.
    let image_for = |n: usize| -> Vec<u8> {
        let mut bytes = base_image.clone();
        if real_model {
            bytes.extend_from_slice(format!("bench-job-{n}").as_bytes());
        }
        bytes
    };
    eprintln!(
        "bench-queue: {mode}, {} workers, batch size {}",
        options.workers, options.batch_size
    );

    // Phase 1: one job at a time.
    let mut round_trip = Vec::new();
    let mut server_side = Vec::new();
    let mut queue_wait = Vec::new();
    for n in 0..options.latency_jobs {
        let image = image_for(n);
        let began = Instant::now();
        let id = client.submit(&image, &text).await;
        let job = client.wait_end(&id, Duration::from_secs(60)).await;
        round_trip.push(began.elapsed().as_secs_f64() * 1000.0);
        if job["state"] != "done" {
            bail!("job ended {}: {job}", job["state"]);
        }
        server_side.push(ms_between(
            stamp(&job, "submitted_at")?,
            stamp(&job, "finished_at")?,
        ));
        queue_wait.push(ms_between(
            stamp(&job, "submitted_at")?,
            stamp(&job, "started_at")?,
        ));
    }
    eprintln!("latency phase done");

    // Phase 2: throughput.
    let mut redis = stack.redis.connection().await;
    if options.slowlog {
        Slowlog::start(&mut redis, options.jobs).await?;
    }
    let redis_before = RedisUsage::read(&mut redis).await?;
    let submitted_at = Arc::new(std::sync::Mutex::new(Vec::with_capacity(options.jobs)));
    let began = Instant::now();
    let first_submit = now();
    if options.submit_batch > 0 {
        submit_in_batches(&client, &options, &image_for, &text, &submitted_at).await?;
    } else {
        submit_one_by_one(&client, &options, &image_for, &text, &submitted_at).await;
    }
    let submit_secs = began.elapsed().as_secs_f64();
    let submitted: Vec<(String, OffsetDateTime)> =
        std::mem::take(&mut *submitted_at.lock().unwrap_or_else(|p| p.into_inner()));
    if submitted.len() != options.jobs {
        bail!(
            "only {} of {} submissions accepted",
            submitted.len(),
            options.jobs
        );
    }
    let ended = if options.read_batch > 0 {
        read_in_batches(&client, &options, submitted).await
    } else {
        read_one_by_one(&client, &options, submitted).await
    };
    let mut latencies = Vec::new();
    let mut last_finish = first_submit;
    let mut not_done = 0;
    for result in ended {
        let (finished, latency, done) = result?;
        latencies.push(latency);
        last_finish = last_finish.max(finished);
        if !done {
            not_done += 1;
        }
    }
    if not_done > 0 {
        bail!("{not_done} jobs did not end done");
    }
    let total_secs = (last_finish - first_submit).as_seconds_f64();
    let jobs_per_s = options.jobs as f64 / total_secs;
    let redis_used = RedisUsage::read(&mut redis).await?.since(&redis_before);
    let by_step = if options.slowlog {
        Some(Slowlog::read(&stack.redis.unix_url()).await?)
    } else {
        None
    };
    if let Some(path) = &options.json {
        let mut figures = serde_json::json!({
            "mode": if real_model { "model" } else { "noop" },
            "jobs": options.jobs,
            "workers": options.workers,
            "concurrency": options.concurrency,
            "batch_size": options.batch_size,
            "read_ahead": options.read_ahead,
            "submit_batch": options.submit_batch,
            "read_batch": options.read_batch,
            "jobs_per_s": jobs_per_s,
            "total_s": total_secs,
            "submit_s": submit_secs,
            // Everything Redis did meanwhile: the api's submissions and
            // result reads, the workers' claims and finishes, the bench's
            // INFO.
            "redis_cpu_s": redis_used.cpu_s,
            "redis_cpu_us_per_job": redis_used.cpu_s * 1e6 / options.jobs as f64,
            "redis_calls_per_job": redis_used.calls() as f64 / options.jobs as f64,
            "redis_calls_per_job_by_command": redis_used
                .by_command
                .iter()
                .map(|(command, used)| (command.clone(), used.calls as f64 / options.jobs as f64))
                .collect::<std::collections::BTreeMap<_, _>>(),
            // evalsha's time holds its scripts' commands, which are counted
            // on their own lines too.
            "redis_us_per_job_by_command": redis_used
                .by_command
                .iter()
                .map(|(command, used)| (command.clone(), used.usec as f64 / options.jobs as f64))
                .collect::<std::collections::BTreeMap<_, _>>(),
        });
        if let Some(by_step) = &by_step {
            // Each script call under its step's name, its time including the
            // commands it calls, which are also logged on their own lines;
            // each plain command under its own name (Redis does not log
            // EXEC, only the commands inside it).
            let per_job = |amount: fn(&CommandUsage) -> u64| -> serde_json::Value {
                by_step
                    .iter()
                    .map(|(step, used)| {
                        let amount = amount(used) as f64 / options.jobs as f64;
                        (step.clone(), amount.into())
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            };
            figures["redis_us_per_job_by_step"] = per_job(|used| used.usec);
            figures["redis_calls_per_job_by_step"] = per_job(|used| used.calls);
        }
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }

    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = cpu_model();
    let profile = if verdict_e2e::binaries::bin_dir().ends_with("release") {
        "release"
    } else {
        "dev (dependencies at -O3, verdict's crates at -O1)"
    };
    let section = format!(
        "## Queue ({mode})\n\n\
         Measured by `scripts/bench-queue` ({mode}) on {date}: this machine ({cpu}, {cpus} CPUs, shared), \
         build profile {profile}, Redis on a unix socket, one `verdict-api`, {workers} `verdict-worker` \
         processes with `--batch-size {batch}`, {image_desc} and one sentence per job, \
         worker logs at INFO into files, no queue limit (`--max-queue-depth 0`); the bench client runs on the same CPUs; \
         1-minute load average {load} when it ended (the bench's own processes count in it, and so did other builds on this shared machine).\n\n\
         | what | result |\n| --- | --- |\n\
         | one job at a time, submit → done seen by the client ({lat_n} jobs) | {rt} |\n\
         | same jobs, `submitted_at` → `finished_at` inside the queue | {ss} |\n\
         | same jobs, queue wait (`submitted_at` → `started_at`) | {qw} |\n\
         | throughput: {n} jobs from {conc} concurrent clients | **{jps:.0} jobs/s** ({total:.2} s first submit → last finish; submitting alone took {submit:.2} s) |\n\
         | throughput run, submit → finished per job | {tl} |\n\n\
         {targets}\n",
        targets = if real_model {
            "Issue 4's targets are the no-op judge's (above). Here the workers' inference sets the \
             pace: compare the first row with the model's own latencies (below)."
        } else {
            "Issue 4's targets: the queue path adds under 2 ms at p50 (first row, which includes both \
             HTTP round trips) and the no-op path moves at least 5,000 jobs/s (fourth row)."
        },
        date = now().date(),
        workers = options.workers,
        batch = options.batch_size,
        image_desc = if real_model {
            format!(
                "coffee.png (600x400, {} bytes) with a trailer of its own per job (no image cache hits)",
                base_image.len()
            )
        } else {
            format!("one 64x64 PNG ({} bytes)", base_image.len())
        },
        lat_n = options.latency_jobs,
        rt = summary(round_trip),
        ss = summary(server_side),
        qw = summary(queue_wait),
        n = options.jobs,
        conc = options.concurrency,
        jps = jobs_per_s,
        total = total_secs,
        submit = submit_secs,
        tl = summary(latencies),
    );
    println!("{section}");
    if let Some(path) = &options.write {
        write_section(path, &section)?;
        eprintln!("wrote the Queue ({mode}) section of {path}");
    }
    Ok(())
}

/// What redis-server has spent: CPU seconds (user + system, `INFO cpu`)
/// and, by command (`evalsha`, `hset`, ...: `INFO commandstats`), the
/// commands run and the microseconds they took. A script's commands count
/// twice there: on their own lines and inside `evalsha`'s time.
struct RedisUsage {
    cpu_s: f64,
    by_command: std::collections::BTreeMap<String, CommandUsage>,
}

/// One command's line of `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default)]
struct CommandUsage {
    calls: u64,
    usec: u64,
}

impl RedisUsage {
    async fn read(redis: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<RedisUsage> {
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .arg("commandstats")
            .query_async(redis)
            .await?;
        let mut usage = RedisUsage {
            cpu_s: 0.0,
            by_command: Default::default(),
        };
        for line in info.lines() {
            if let Some(value) = line
                .strip_prefix("used_cpu_user:")
                .or_else(|| line.strip_prefix("used_cpu_sys:"))
            {
                usage.cpu_s += value.trim().parse::<f64>()?;
            } else if let Some(stat) = line.strip_prefix("cmdstat_") {
                // cmdstat_get:calls=12,usec=34,...
                let field = |name: &str| -> anyhow::Result<u64> {
                    let value = stat
                        .split([':', ','])
                        .find_map(|field| field.strip_prefix(name))
                        .with_context(|| format!("a cmdstat line without {name}"))?;
                    Ok(value.parse()?)
                };
                let command = stat.split(':').next().unwrap_or("");
                let used = CommandUsage {
                    calls: field("calls=")?,
                    usec: field("usec=")?,
                };
                usage.by_command.insert(command.to_owned(), used);
            }
        }
        Ok(usage)
    }

    /// Commands run, all of them.
    fn calls(&self) -> u64 {
        self.by_command.values().map(|used| used.calls).sum()
    }

    fn since(&self, before: &RedisUsage) -> RedisUsage {
        RedisUsage {
            cpu_s: self.cpu_s - before.cpu_s,
            by_command: self
                .by_command
                .iter()
                .map(|(command, used)| {
                    let earlier = before.by_command.get(command).copied().unwrap_or_default();
                    let since = CommandUsage {
                        calls: used.calls.saturating_sub(earlier.calls),
                        usec: used.usec.saturating_sub(earlier.usec),
                    };
                    (command.clone(), since)
                })
                .filter(|(_, used)| used.calls > 0)
                .collect(),
        }
    }
}

/// Redis's `SLOWLOG` with no threshold: every command is logged with the
/// microseconds it took, a script call as `EVALSHA <hash>`, which
/// [`verdict_shared::queue::scripts::hashes`] names.
struct Slowlog;

impl Slowlog {
    /// Logs every command from now on, room for `jobs` jobs' worth.
    async fn start(
        redis: &mut redis::aio::MultiplexedConnection,
        jobs: usize,
    ) -> anyhow::Result<()> {
        let room = (jobs * 64).max(1024);
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(0)
            .arg("slowlog-max-len")
            .arg(room)
            .query_async(redis)
            .await?;
        let _: () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async(redis)
            .await?;
        Ok(())
    }

    /// What was logged, by script step or plain command (lower case), and
    /// logs nothing more. Its own connection, without a response timeout:
    /// the whole log comes in one reply, hundreds of megabytes.
    async fn read(url: &str) -> anyhow::Result<std::collections::BTreeMap<String, CommandUsage>> {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let redis = &mut redis::Client::open(url)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(-1)
            .query_async(redis)
            .await?;
        let room: usize = redis::cmd("CONFIG")
            .arg("GET")
            .arg("slowlog-max-len")
            .query_async::<Vec<String>>(redis)
            .await?
            .get(1)
            .and_then(|n| n.parse().ok())
            .context("CONFIG GET slowlog-max-len")?;
        let logged: usize = redis::cmd("SLOWLOG").arg("LEN").query_async(redis).await?;
        if logged >= room {
            bail!("the slowlog filled up ({logged} entries): its oldest commands were dropped");
        }
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(redis)
            .await?;
        let names: std::collections::HashMap<String, &str> =
            verdict_shared::queue::scripts::hashes()
                .into_iter()
                .map(|(step, hash)| (hash, step))
                .collect();
        let mut by_step: std::collections::BTreeMap<String, CommandUsage> = Default::default();
        for entry in entries {
            // [id, unix time, microseconds, [command, args...], client, name]
            let redis::Value::Array(fields) = entry else {
                bail!("a slowlog entry that is not an array");
            };
            let usec = match fields.get(2) {
                Some(redis::Value::Int(usec)) => *usec as u64,
                other => bail!("a slowlog entry's duration: {other:?}"),
            };
            let Some(redis::Value::Array(args)) = fields.get(3) else {
                bail!("a slowlog entry without its command");
            };
            let text = |value: Option<&redis::Value>| -> String {
                match value {
                    Some(redis::Value::BulkString(bytes)) => {
                        String::from_utf8_lossy(bytes).to_lowercase()
                    }
                    _ => String::new(),
                }
            };
            let command = text(args.first());
            let step = if command == "evalsha" {
                let hash = text(args.get(1));
                names
                    .get(&hash)
                    .map_or_else(|| format!("script {hash}"), |step| format!("{step}.lua"))
            } else {
                command
            };
            let used = by_step.entry(step).or_default();
            used.calls += 1;
            used.usec += usec;
        }
        Ok(by_step)
    }
}
