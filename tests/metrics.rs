//! `GET /metrics` and `fleet status` tell the same story: after a run on a
//! real fleet, the counters and queue figures of both agree, the page is
//! well-formed Prometheus text, and the workers' histograms counted every job.
//! A worker's uptime there and on the dashboard is its own, whatever its
//! clock says.

use std::collections::HashMap;
use std::time::Duration;

use verdict_e2e::faketime::FakeClock;
use verdict_e2e::fleet::Fleet;
use verdict_e2e::stack::{Stack, StackOptions};
use verdict_shared::queue::{WorkerRecord, keys};

/// Parses the text format strictly enough to catch a malformed page: every
/// sample line is `name[{labels}] value`, every sample belongs to a family
/// announced by `# TYPE`, and no family is announced twice.
fn parse(page: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "twice: {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample: series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|stem| types.get(*stem).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line:?}"
        );
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "twice: {series}"
        );
    }
    samples
}

#[test]
fn fleet_status_and_metrics_agree_after_a_run() {
    let fleet = Fleet::new();
    let up = fleet.up(2, &[]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let ids: Vec<String> = (0..12).map(|_| fleet.submit()).collect();
    for id in &ids {
        let job = fleet.wait_job(id, Duration::from_secs(60));
        assert_eq!(job["state"], "done", "{job}");
    }

    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    let queue = &status["queue"];
    let url = format!("{}/metrics", fleet.api_url());
    let page = scrape::get(&url);
    let metrics = parse(&page);
    let get = |series: &str| {
        *metrics
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{page}"))
    };
    assert_eq!(
        get("verdict_jobs_submitted_total"),
        queue["submitted"].as_f64().unwrap()
    );
    assert_eq!(
        get("verdict_jobs_finished_total{outcome=\"done\"}"),
        queue["done"].as_f64().unwrap()
    );
    assert_eq!(
        get("verdict_jobs_finished_total{outcome=\"failed\"}"),
        queue["failed"].as_f64().unwrap()
    );
    assert_eq!(get("verdict_queue_depth"), queue["depth"].as_f64().unwrap());
    assert_eq!(
        get("verdict_jobs_in_flight"),
        queue["in_flight"].as_f64().unwrap()
    );
    assert_eq!(get("verdict_jobs_submitted_total"), 12.0);
    assert_eq!(get("verdict_jobs_finished_total{outcome=\"done\"}"), 12.0);
    assert_eq!(get("verdict_workers"), 2.0);
    assert_eq!(get("verdict_redis_up"), 1.0);
    // Counters of issue 6 are exported (0 until something counts them).
    assert_eq!(get("verdict_jobs_reclaimed_total"), 0.0);
    assert_eq!(get("verdict_jobs_dead_lettered_total"), 0.0);
    // Every finished job was observed once in each histogram.
    for histogram in [
        "verdict_queue_wait_seconds",
        "verdict_inference_seconds",
        "verdict_end_to_end_seconds",
    ] {
        assert_eq!(get(&format!("{histogram}_count")), 12.0, "{histogram}");
        assert_eq!(
            get(&format!("{histogram}_bucket{{le=\"+Inf\"}}")),
            12.0,
            "{histogram}"
        );
        assert!(get(&format!("{histogram}_sum")) >= 0.0);
    }
    // The noop judge answers maybe to every sentence.
    assert_eq!(get("verdict_verdicts_total{label=\"maybe\"}"), 12.0);

    // The Grafana dashboard and the alert rules in docs/monitoring name only
    // metrics that this page has.
    check_monitoring_files(&page, &metrics);

    // The text status says the same numbers.
    let text = fleet.run(&["status"]);
    assert!(
        text.stdout
            .contains("queue: 0 waiting, 0 in flight, 12 done, 0 failed (12 submitted)"),
        "{}",
        text.output()
    );
}

/// Every `verdict_*` name in docs/monitoring (the Grafana dashboard's panel
/// queries, the alert rules' expressions) is a family of `page`, or a
/// histogram's `_bucket`/`_sum`/`_count`; the dashboard is JSON whose every
/// panel has a query, and every rule has an alert name and an expression.
/// Issue 19: uptimes are never a worker's clock against the api's. Two
/// workers whose wall clocks are an hour behind and an hour ahead
/// (libfaketime; the api and Redis on the real clock) show uptimes of
/// seconds in `/metrics` (`verdict_worker_youngest_uptime_seconds`) and on
/// the dashboard: neither an hour nor zero.
#[tokio::test(flavor = "multi_thread")]
async fn worker_uptimes_are_their_own_whatever_their_clocks_say() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let behind = FakeClock::new(stack.dir().join("clock-behind"), "-1h");
    let ahead = FakeClock::new(stack.dir().join("clock-ahead"), "+1h");
    for (name, clock) in [("behind", &behind), ("ahead", &ahead)] {
        let env = clock.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        stack.spawn_worker_with_env(name, &["--noop"], &env);
    }
    stack.wait_ready(&["behind", "ahead"]).await;
    let ready_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The workers' clocks are off as set: their records' stamps against
    // Redis's TIME.
    let mut conn = stack.redis.connection().await;
    let (seconds, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    for (name, offset_s) in [("behind", -3600.0), ("ahead", 3600.0)] {
        let record: String = redis::cmd("GET")
            .arg(keys::worker(name))
            .query_async(&mut conn)
            .await
            .unwrap();
        let record: WorkerRecord = serde_json::from_str(&record).unwrap();
        let off = record.heartbeat_ms as f64 / 1000.0 - seconds as f64;
        assert!(
            (off - offset_s).abs() < 60.0,
            "{name}: clock off by {off} s"
        );
    }

    let ran_s = ready_at.elapsed().as_secs_f64();
    let page = ::reqwest::get(format!("{}/metrics", stack.api_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let youngest = parse(&page)["verdict_worker_youngest_uptime_seconds"];
    // At least the time since both were ready less one heartbeat (2 s);
    // at most a minute.
    assert!(
        youngest >= ran_s - 2.5 && youngest < 60.0,
        "youngest uptime {youngest} s after {ran_s:.1} s"
    );
    let (code, snapshot) = stack.client().get_path("/v1/dashboard").await;
    assert_eq!(code, 200, "{snapshot}");
    let workers = snapshot["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "{snapshot:#}");
    for worker in workers {
        let uptime = worker["uptime_s"].as_f64().expect("uptime_s");
        assert!(
            uptime >= ran_s - 2.5 && uptime < 60.0,
            "{}: uptime {uptime} s after {ran_s:.1} s",
            worker["name"]
        );
    }
}

fn check_monitoring_files(page: &str, metrics: &HashMap<String, f64>) {
    let families: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    assert!(metrics.contains_key("verdict_dead_letters"), "{page}");
    let dir = verdict_e2e::binaries::workspace_root().join("docs/monitoring");
    let dashboard = std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 5, "{json:#}");
    let mut queries: Vec<String> = Vec::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "a panel without a query: {panel:#}");
        queries.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_owned()),
        );
    }
    let rules = std::fs::read_to_string(dir.join("prometheus-alerts.yml")).unwrap();
    let alerts = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert: "))
        .count();
    let exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr: "))
        .map(str::to_owned)
        .collect();
    assert_eq!(alerts, exprs.len(), "every rule has one expression");
    for wanted in [
        "Redis",
        "NoWorkers",
        "QueueGrowing",
        "CrashLoop",
        "DeadLetters",
        "P99",
    ] {
        assert!(rules.contains(wanted), "no {wanted} alert");
    }
    for query in queries.iter().chain(&exprs) {
        let mut rest = query.as_str();
        while let Some(start) = rest.find("verdict_") {
            let name: String = rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|stem| families.contains(stem))
                .unwrap_or(&name);
            assert!(
                families.contains(&family),
                "{name} (in {query:?}) is not on /metrics"
            );
            rest = &rest[start + name.len()..];
        }
    }
}

mod scrape {
    /// A GET on a throwaway runtime (the fleet harness is synchronous).
    pub fn get(url: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let response = ::reqwest::get(url).await.expect("GET /metrics");
            assert_eq!(response.status(), 200);
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            assert!(
                content_type.starts_with("text/plain; version=0.0.4"),
                "{content_type}"
            );
            response.text().await.expect("text")
        })
    }
}
