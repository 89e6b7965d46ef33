//! Chaos: 1,000 jobs through a fleet of two real-model workers while a killer
//! sends SIGKILL to a random worker about every second and the embedded
//! Redis is restarted once (SIGTERM). Every accepted job must end `done`
//! with the right verdicts; none may be lost. The test prints how many jobs
//! ran more than once and what the at-least-once machinery did.
//!
//! The jobs use four test photos scaled to 256 px (a few kB each, so a
//! thousand jobs do not push hundreds of MB through Redis) with three
//! sentences each whose verdict (yes / no / maybe) the default model gives
//! with a wide margin. The engine caches image and sentence evidence by
//! content, so a warm worker judges a job in about a millisecond; a killed
//! worker comes back cold (model load about 1 s, then every photo and
//! sentence computed again), which is where a kill is most likely to land
//! mid-job.
//!
//! Fleet settings for the chaos (and why): `--crash-limit 1000` and
//! `--max-restart-delay 200ms`, because the killer crashes each worker about
//! every 2 s on purpose and the default policy would (rightly) back off to
//! 30 s and then give up; `--max-attempts 10`, because a job whose worker is
//! killed during three starts in a row would otherwise be dead-lettered as
//! poison, which is the designed behaviour but not what this test measures.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use verdict_e2e::ApiClient;
use verdict_e2e::fleet::{Fleet, alive, process};
use verdict_e2e::reliability::{model_args, redis, small_photo, stats, up};

const JOBS: usize = 1000;

/// Jobs are submitted at this pace, so that the chaos lasts about 20 s.
const SUBMIT_EVERY: Duration = Duration::from_millis(20);

/// When the embedded Redis gets its SIGTERM, counted in accepted jobs.
const REDIS_RESTART_AFTER: usize = 400;

/// Everything must be over by then.
const DEADLINE: Duration = Duration::from_secs(240);

/// Photos and sentences with the default model's verdicts on the 256 px
/// versions (margins of 0.6 or more between the top two scores).
const CASES: [(&str, [(&str, &str); 3]); 4] = [
    (
        "coffee.png",
        [
            ("There is espresso in the cup.", "yes"),
            ("A laptop on a desk.", "no"),
            ("This is an everyday item.", "maybe"),
        ],
    ),
    (
        "chelsea.png",
        [
            ("A cat is looking at the camera.", "yes"),
            ("A red sports car.", "no"),
            ("The cat is three years old.", "maybe"),
        ],
    ),
    (
        "china.jpg",
        [
            ("An old palace with a tiled roof.", "yes"),
            ("A hamburger with fries.", "no"),
            ("Many tourists visit this place.", "maybe"),
        ],
    ),
    (
        "camera.png",
        [
            ("A man with a camera on a tripod.", "yes"),
            ("A cat on a sofa.", "no"),
            ("He was born in a small town.", "maybe"),
        ],
    ),
];

/// A small xorshift generator: the killer's choices, reproducible from the
/// printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_jobs_survive_killed_workers_and_a_redis_restart() {
    let started = Instant::now();
    let fleet = Fleet::new();
    let mut args: Vec<String> = model_args();
    args.extend(
        [
            "--crash-limit",
            "1000",
            "--max-restart-delay",
            "200ms",
            "--max-attempts",
            "10",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    up(&fleet, 2, &args, &[]);
    let ready_after = started.elapsed();
    let client = ApiClient::new(&fleet.api_url());
    let images: Vec<Vec<u8>> = CASES.iter().map(|(name, _)| small_photo(name)).collect();

    // The killer: SIGKILL to a random live worker every 0.7 to 1.3 s, until
    // every job has ended.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("killer seed {seed}");
    let killer = {
        let (stop, kills) = (stop.clone(), kills.clone());
        let home = fleet.home().to_path_buf();
        std::thread::spawn(move || {
            let mut rng = Rng(seed);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(700 + rng.next() % 600));
                let name = format!("worker-{}", rng.next() % 2);
                let pid = std::fs::read_to_string(home.join("run").join(format!("{name}.pid")))
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok());
                if let Some(pid) = pid.filter(|&pid| alive(pid))
                    && kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok()
                {
                    kills.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // Submit, at a steady pace, retrying what is refused (503 while Redis
    // restarts, 429 if the queue fills): only 202s count as accepted.
    let mut accepted: Vec<(String, usize, Vec<usize>)> = Vec::with_capacity(JOBS);
    let mut refused: HashMap<u16, u64> = HashMap::new();
    let mut redis_restarted_at = None;
    let chaos_began = Instant::now();
    while accepted.len() < JOBS {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} jobs accepted",
            accepted.len()
        );
        if accepted.len() == REDIS_RESTART_AFTER && redis_restarted_at.is_none() {
            let pid = fleet.pid_in_file("redis").expect("redis.pid");
            kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM to redis");
            redis_restarted_at = Some(chaos_began.elapsed());
        }
        let i = accepted.len();
        let case = i % CASES.len();
        let count = 1 + (i / CASES.len()) % 3;
        let chosen: Vec<usize> = (0..count).map(|k| (i + k) % 3).collect();
        let texts: Vec<&str> = chosen.iter().map(|&k| CASES[case].1[k].0).collect();
        let answer = client.submit_json(&images[case], &texts).await;
        match answer.status.as_u16() {
            202 => {
                let id = answer.body["id"].as_str().expect("an id").to_owned();
                accepted.push((id, case, chosen));
                tokio::time::sleep(SUBMIT_EVERY).await;
            }
            status @ (429 | 503) => {
                *refused.entry(status).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            status => panic!("submit answered {status}: {}", answer.body),
        }
    }
    let submitting_took = chaos_began.elapsed();

    // Wait until every job in Redis has ended (the counters include any job
    // that Redis stored although its submission was answered 503).
    let mut conn = redis(&fleet).await;
    let all_ended = loop {
        let now = match verdict_shared::queue::stats::read_stats(&mut conn).await {
            Ok(now) => now,
            Err(_) => {
                conn = redis(&fleet).await;
                continue;
            }
        };
        if now.submitted > 0 && now.done + now.failed + now.cancelled >= now.submitted {
            break now;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "jobs still open after {DEADLINE:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let chaos_took = chaos_began.elapsed();
    stop.store(true, Ordering::Relaxed);
    killer.join().expect("the killer thread");

    // Every accepted job is done, with the right verdict for every sentence,
    // and jobs asking the same thing got the same scores.
    let mut ran_more_than_once = 0;
    let mut most_attempts = 0;
    let mut seen: HashMap<(usize, usize), Value> = HashMap::new();
    for (id, case, chosen) in &accepted {
        let (status, job) = client.get_path(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "job {id}: {job}");
        assert_eq!(job["state"], "done", "job {id} did not end done: {job}");
        let attempts = job["attempts"].as_u64().unwrap_or(0);
        most_attempts = most_attempts.max(attempts);
        if attempts > 1 {
            ran_more_than_once += 1;
        }
        let results = job["results"].as_array().expect("results");
        assert_eq!(results.len(), chosen.len(), "job {id}: {job}");
        for (result, &k) in results.iter().zip(chosen) {
            let (text, label) = CASES[*case].1[k];
            assert_eq!(result["text"], text, "job {id}");
            assert_eq!(result["label"], label, "job {id}: {text:?} -> {result}");
            let first = seen
                .entry((*case, k))
                .or_insert_with(|| result["scores"].clone());
            assert_eq!(
                *first, result["scores"],
                "job {id}: same input, other scores"
            );
        }
    }

    // Nothing was lost and nothing is left: every job Redis ever held ended.
    let end = stats(&mut conn).await;
    assert_eq!(end.stream_len, 0, "entries left in the stream: {end:?}");
    assert_eq!(end.failed, 0, "{end:?}");
    assert_eq!(end.dead_lettered, 0, "{end:?}");
    assert!(end.submitted >= JOBS as u64, "{end:?}");

    // The chaos happened: workers were killed many times, Redis once, and no
    // process was given up on.
    let (_, status) = fleet.status();
    for name in ["redis", "api", "worker-0", "worker-1"] {
        let row = process(&status, name);
        assert_ne!(row["state"], "failed", "{name}: {row:#}");
    }
    let redis_restarts = process(&status, "redis")["restarts"].as_u64().unwrap_or(0);
    let worker_restarts: Vec<u64> = ["worker-0", "worker-1"]
        .iter()
        .map(|name| process(&status, name)["restarts"].as_u64().unwrap_or(0))
        .collect();
    let kills = kills.load(Ordering::Relaxed);
    assert_eq!(redis_restarts, 1, "{status:#}");
    assert!(kills >= 10, "only {kills} kills: the chaos did not happen");
    assert_eq!(process(&status, "api")["restarts"], 0, "{status:#}");

    println!(
        "chaos: {} jobs accepted in {:.1}s (refused while Redis restarted or the queue was full: {:?}), \
         all done {:.1}s after the first submission; fleet ready after {:.1}s; test took {:.1}s",
        accepted.len(),
        submitting_took.as_secs_f64(),
        refused,
        chaos_took.as_secs_f64(),
        ready_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "chaos: {kills} SIGKILLs (worker restarts {worker_restarts:?}), Redis SIGTERM at {:.1}s (restarts {redis_restarts})",
        redis_restarted_at.map_or(0.0, |at| at.as_secs_f64())
    );
    println!(
        "chaos: ran more than once (attempts > 1): {ran_more_than_once} of {} jobs (most attempts {most_attempts}); \
         counters: reruns {}, late_finishes (duplicate results discarded) {}, reclaimed {}, retries {}, \
         dead_lettered {}, submitted {} (jobs stored although answered 503: {})",
        accepted.len(),
        all_ended.reruns,
        all_ended.late_finishes,
        all_ended.reclaimed,
        all_ended.retries,
        all_ended.dead_lettered,
        all_ended.submitted,
        all_ended.submitted - accepted.len() as u64,
    );
}
