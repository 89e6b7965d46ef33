//! Two hosts, one Redis (issue 19's acceptance test), with the real `fleet`,
//! `verdict-api`, `verdict-worker` and `redis-server` in two network
//! namespaces joined by a veth pair: host A (10.X.Y.1) runs Redis with a
//! password and a fleet, host B (10.X.Y.2) a fleet of its own on A's Redis;
//! each fleet has its own home, its api and two `--noop` workers (100 ms a
//! job), `--reclaim-after 6s`. Checked, in this order:
//!
//! 1. the two hosts share one host name (namespaces do) and still register
//!    four distinct workers, each in its own host's namespace; both apis'
//!    `/readyz` and `verdict_workers` count all four; no process's command
//!    line carries the Redis password, no log prints it;
//! 2. 200 jobs, half through each api: all done, by workers of both hosts;
//! 3. the cable goes down for 12 s while 300 jobs flow, twice: at host B's
//!    end (B's sends fail at once) and at host A's (B's packets vanish, B
//!    finds out by its timeouts). Each time host A's workers carry on and
//!    take over the jobs B held; every job ends done; with the cable back,
//!    B's api answers again and B's workers take jobs again, and no process
//!    of either host was restarted;
//! 4. every process of host B (its watchdog, api and workers) is SIGKILLed
//!    in the middle of 150 jobs: the jobs B held are finished by A's workers,
//!    every job ends done, and B's workers leave `/readyz`.
//!
//! In all: every job submitted ends `done` exactly once (Redis's counters),
//! none failed or dead-lettered.
//!
//! Needs root (network namespaces; `ip` from iproute2): elsewhere it prints
//! why and passes without running.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::{Fleet, alive, process};
use verdict_e2e::netns::{Netns, random_hex, veth_pair};
use verdict_e2e::{ApiClient, RedisServer};
use verdict_shared::queue::heartbeat::live_workers;
use verdict_shared::queue::stats::read_stats;

const WORKERS: usize = 2;
/// Each `--noop` job holds its worker this long, as inference would.
const JOB_DELAY: &str = "--worker-arg=--noop-delay-ms=100";
/// The shortest the workers accept (three heartbeats).
const RECLAIM_AFTER: &str = "6s";
/// How long the cable stays down each time: longer than the reclaim time
/// (and than a worker record's TTL, 10 s), shorter than the watchdog's
/// `--hung-after` (30 s).
const CUT: Duration = Duration::from_secs(12);
const PATIENCE: Duration = Duration::from_secs(60);

/// One host: its namespace, its address there and its fleet.
struct Host {
    label: &'static str,
    netns: Netns,
    ip: String,
}

/// The two hosts and the interfaces at the two ends of the cable.
struct Network {
    a: Host,
    b: Host,
    a_if: String,
    b_if: String,
}

/// Makes the two namespaces and the cable between them, on 10.X.Y.0/24 with
/// X and Y random; `Err` when this machine does not allow it.
fn network() -> Result<Network, String> {
    let tag = random_hex(6);
    let a = Netns::create(&format!("verdict-{tag}-a"))?;
    let b = Netns::create(&format!("verdict-{tag}-b"))?;
    let octets = u16::from_str_radix(&random_hex(4), 16).expect("hex");
    let subnet = format!("10.{}.{}", octets >> 8, octets & 0xff);
    let (a_if, b_if) = (format!("vd{tag}a"), format!("vd{tag}b"));
    veth_pair(
        (&a, &a_if, &format!("{subnet}.1/24")),
        (&b, &b_if, &format!("{subnet}.2/24")),
    )?;
    Ok(Network {
        a: Host {
            label: "A",
            netns: a,
            ip: format!("{subnet}.1"),
        },
        b: Host {
            label: "B",
            netns: b,
            ip: format!("{subnet}.2"),
        },
        a_if,
        b_if,
    })
}

/// `fleet up` in the host's namespace on the shared Redis, the URL (and its
/// password) in the environment as docs/scale-out.md says, never on a
/// command line.
fn fleet_up(host: &Host, redis_url: &str) -> Fleet {
    let fleet = Fleet::in_netns(&host.netns, &host.ip);
    let workers = WORKERS.to_string();
    let bind = fleet.bind();
    let mut up = fleet.command(&[
        "up",
        "--allow-root",
        "--noop-workers",
        "--workers",
        &workers,
        "--bind",
        &bind,
        "--reclaim-after",
        RECLAIM_AFTER,
        "--redis-timeout-ms",
        "2000",
        JOB_DELAY,
        "--no-examples",
        "--timeout",
        "60s",
    ]);
    up.env("VERDICT_REDIS_URL", redis_url);
    let run = fleet.run_command(up, Duration::from_secs(120));
    assert!(
        run.ok(),
        "fleet up on host {} failed:\n{}",
        host.label,
        run.output()
    );
    fleet
}

/// The names the fleet's workers registered under (`fleet status`).
fn registered(fleet: &Fleet) -> BTreeSet<String> {
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    (0..WORKERS)
        .map(|i| {
            process(&status, &format!("worker-{i}"))["registered_as"]
                .as_str()
                .unwrap_or_else(|| panic!("worker-{i} not registered: {status:#}"))
                .to_string()
        })
        .collect()
}

/// Each process of a fleet, `(host, name)`, with its `(PID, restarts)`.
type Processes = BTreeMap<(&'static str, String), (Option<u64>, Option<u64>)>;

/// The fleet's processes, from `fleet status`.
fn processes(host: &'static str, fleet: &Fleet) -> Processes {
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    status["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("no processes in {status:#}"))
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or("").to_string();
            ((host, name), (p["pid"].as_u64(), p["restarts"].as_u64()))
        })
        .collect()
}

/// Prints the end of every log of both fleets if the test fails.
struct LogsOnPanic<'a>(&'a [(&'static str, &'a Fleet)]);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (label, fleet) in self.0 {
            let mut names = vec!["watchdog".to_string(), "api".to_string()];
            names.extend((0..WORKERS).map(|i| format!("worker-{i}")));
            for name in names {
                let log = fleet.log(&name);
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(25)..].join("\n");
                eprintln!("---- host {label}, {name}.log (last lines) ----\n{tail}");
            }
        }
    }
}

#[test]
fn two_hosts_on_one_redis_share_the_work_and_lose_no_job() {
    let started = Instant::now();
    // Dropped last: whatever still runs in the namespaces is killed with them.
    let net = match network() {
        Ok(net) => net,
        Err(why) => {
            println!("two_hosts: SKIPPED, cannot build two hosts in network namespaces: {why}");
            println!("two_hosts: run it as root on Linux with iproute2 (`ip netns`) to check it");
            return;
        }
    };
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let password = random_hex(32);
    let redis = RedisServer::start_in_netns(redis_dir.path(), &net.a.netns, &net.a.ip, &password);
    let redis_url = format!("redis://:{password}@{}:6379", net.a.ip);
    let fleet_a = fleet_up(&net.a, &redis_url);
    let fleet_b = fleet_up(&net.b, &redis_url);
    let fleets = [("A", &fleet_a), ("B", &fleet_b)];
    let _logs = LogsOnPanic(&fleets);
    let setup = started.elapsed();

    // The test's client is a program on host A: it reaches A's api there and
    // B's across the cable.
    net.a.netns.run_inside(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(scenario(&net, &redis, &password, &fleet_a, &fleet_b))
    });
    println!(
        "two_hosts: passed in {:.1}s ({:.1}s to build the hosts and start both fleets)",
        started.elapsed().as_secs_f64(),
        setup.as_secs_f64()
    );
}

/// What the cable cuts need of the scenario.
struct Scene<'a> {
    a: &'a Fleet,
    b: &'a Fleet,
    api_a: &'a ApiClient,
    api_b: &'a ApiClient,
    names_a: &'a BTreeSet<String>,
    names_b: &'a BTreeSet<String>,
    all: &'a BTreeSet<String>,
    image: &'a [u8],
}

impl Scene<'_> {
    /// The fleets' processes, `(host, name) -> (PID, restarts)`.
    fn processes(&self) -> Processes {
        processes("A", self.a)
            .into_iter()
            .chain(processes("B", self.b))
            .collect()
    }

    /// Cuts the cable at `end`'s interface `iface` for [`CUT`] while 300
    /// jobs flow (more than host A alone does in that time: some are left
    /// for both hosts when it is back), then restores it. Insists that every
    /// job ends done, those host B held by host A, that B serves and works
    /// again afterwards, and that no process was restarted. The jobs it
    /// submitted, and how many of them B held through the cut.
    async fn cut_and_restore(&self, end: &str, netns: &Netns, iface: &str) -> (usize, usize) {
        let (api_a, api_b) = (self.api_a, self.api_b);
        let processes_before = self.processes();
        let mut ids = submit(api_a, self.image, 300, &format!("cut at {end}")).await;
        await_fresh_start(api_a, &ids, self.names_b).await;
        netns
            .ip(&["link", "set", iface, "down"])
            .expect("cut the cable");
        let cut_at = Instant::now();
        // What B held is stuck with it: nothing from B reaches Redis now.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = states(api_a, &ids).await;
        let held_by_b = running_on(&before, self.names_b);
        assert!(
            !held_by_b.is_empty(),
            "host B held no job when the cable was cut at {end}: {before:#?}"
        );
        let done_before = count_done(&before);
        tokio::time::sleep(CUT.saturating_sub(cut_at.elapsed())).await;
        let done_during = count_done(&states(api_a, &ids).await);
        netns
            .ip(&["link", "set", iface, "up"])
            .expect("restore the cable");
        assert!(
            done_during > done_before,
            "no job was done while the cable was cut at {end} ({done_before} before, {done_during} after)"
        );
        let jobs = wait_all_done(api_a, &ids, self.all).await;
        for job in jobs.iter().filter(|j| held_by_b.contains(&id_of(j))) {
            assert!(
                self.names_a.contains(job["worker"].as_str().unwrap_or("")) && job["attempts"] == 2,
                "a job host B held through the cut at {end} was not taken over by host A: {job:#}"
            );
        }
        println!(
            "two_hosts: cable cut at {end} for {}s: {} job(s) host B held were taken over by host A, \
             {done_during} of {} done during the cut",
            CUT.as_secs(),
            held_by_b.len(),
            ids.len()
        );
        // With the cable back, B's api serves again and B's workers work
        // again, the same processes: losing Redis for a while is no crash.
        let ready = wait_ready_with(api_b, self.all).await;
        assert_eq!(&ready, self.all);
        assert_eq!(
            self.processes(),
            processes_before,
            "a process was restarted through the cut at {end} ((host, name) -> (PID, restarts))"
        );
        let after = submit(api_b, self.image, 100, &format!("after the cut at {end}")).await;
        let jobs = wait_all_done(api_b, &after, self.all).await;
        let (on_a, on_b) = by_host(&jobs, self.names_a, self.names_b);
        assert!(
            on_a > 0 && on_b > 0,
            "after the cut at {end}, not both hosts worked: {on_a} jobs on A, {on_b} on B"
        );
        ids.extend(after);
        (ids.len(), held_by_b.len())
    }
}

async fn scenario(net: &Network, redis: &RedisServer, password: &str, a: &Fleet, b: &Fleet) {
    let api_a = ApiClient::new(&a.api_url());
    let api_b = ApiClient::new(&b.api_url());
    let mut conn = redis.connection().await;
    let mut submitted = 0;

    // 1. Identities: one host name, four workers, each on its own host.
    let (names_a, names_b) = (registered(a), registered(b));
    let fleet_id = |fleet: &Fleet| {
        std::fs::read_to_string(fleet.home().join("fleet-id"))
            .expect("fleet-id")
            .trim()
            .to_string()
    };
    let (id_a, id_b) = (fleet_id(a), fleet_id(b));
    assert_ne!(id_a, id_b, "two fleet homes made the same fleet id");
    let host = verdict_shared::host::name_for_ids();
    for (names, id) in [(&names_a, &id_a), (&names_b, &id_b)] {
        for name in names {
            assert!(
                name.starts_with(&format!("{host}-{id}-worker-")),
                "{name} is not HOST-FLEETID-worker-N for fleet {id}"
            );
        }
    }
    let all: BTreeSet<String> = names_a.union(&names_b).cloned().collect();
    assert_eq!(
        all.len(),
        2 * WORKERS,
        "names collide: {names_a:?} {names_b:?}"
    );
    let records = live_workers(&mut conn).await.expect("worker records");
    let recorded: BTreeSet<String> = records.iter().map(|r| r.name.clone()).collect();
    assert_eq!(recorded, all, "{records:#?}");
    let (pids_a, pids_b) = (net.a.netns.pids(), net.b.netns.pids());
    for record in &records {
        assert_eq!(
            record.host,
            verdict_shared::host::name(),
            "the namespaces share the host name: {record:?}"
        );
        let (label, pids) = if names_a.contains(&record.name) {
            ("A", &pids_a)
        } else {
            ("B", &pids_b)
        };
        assert!(
            pids.contains(&record.pid),
            "{} (PID {}) does not run on host {label}: {pids:?}",
            record.name,
            record.pid
        );
    }
    for api in [&api_a, &api_b] {
        let ready = wait_ready_with(api, &all).await;
        assert_eq!(ready, all);
        assert_eq!(metric(api, "verdict_workers").await, Some(all.len() as f64));
    }
    for (label, netns, fleet) in [("A", &net.a.netns, a), ("B", &net.b.netns, b)] {
        for pid in netns.pids() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(password),
                "the Redis password is on the command line of PID {pid} on host {label}"
            );
        }
        for entry in std::fs::read_dir(fleet.home().join("logs")).expect("logs") {
            let path = entry.expect("log entry").path();
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !log.contains(password),
                "{} prints the password",
                path.display()
            );
        }
    }

    // 2. Both hosts' workers run jobs, whichever api took them.
    let image = png(8, 8);
    let mut ids = Vec::new();
    for i in 0..200 {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        ids.push(api.submit(&image, &[&format!("job {i}")]).await);
    }
    submitted += ids.len();
    let jobs = wait_all_done(&api_a, &ids, &all).await;
    let (on_a, on_b) = by_host(&jobs, &names_a, &names_b);
    assert!(
        on_a > 0 && on_b > 0,
        "not both hosts worked: {on_a} jobs on A, {on_b} on B"
    );
    println!("two_hosts: 200 jobs, {on_a} on host A's workers, {on_b} on host B's");

    // 3. The cable is cut while jobs flow, and comes back: at host B's end
    //    (B's sends fail at once: no route), then at host A's (B's packets
    //    vanish: B finds out by its timeouts).
    let scene = Scene {
        a,
        b,
        api_a: &api_a,
        api_b: &api_b,
        names_a: &names_a,
        names_b: &names_b,
        all: &all,
        image: &image,
    };
    let (sent, held_at_b_end) = scene.cut_and_restore("B", &net.b.netns, &net.b_if).await;
    submitted += sent;
    let (sent, held_at_a_end) = scene.cut_and_restore("A", &net.a.netns, &net.a_if).await;
    submitted += sent;
    let held_by_b = held_at_b_end + held_at_a_end;

    // 4. Every process of host B is SIGKILLed in the middle of the work.
    let ids = submit(&api_a, &image, 150, "kill").await;
    submitted += ids.len();
    let mut fleet_b_pids: Vec<u32> = ["watchdog", "api"]
        .into_iter()
        .map(String::from)
        .chain((0..WORKERS).map(|i| format!("worker-{i}")))
        .map(|name| {
            b.pid_in_file(&name)
                .unwrap_or_else(|| panic!("host B has no {name}.pid"))
        })
        .collect();
    fleet_b_pids.sort_unstable();
    let in_b = net.b.netns.pids();
    assert!(
        fleet_b_pids.iter().all(|pid| in_b.contains(pid)),
        "host B's PID files name {fleet_b_pids:?}, its namespace holds {in_b:?}"
    );
    await_fresh_start(&api_a, &ids, &names_b).await;
    let killed = net.b.netns.kill_all(Duration::from_secs(10));
    assert!(
        fleet_b_pids
            .iter()
            .all(|pid| killed.contains(pid) && !alive(*pid)),
        "host B's fleet {fleet_b_pids:?} not all killed: {killed:?}"
    );
    assert_eq!(net.b.netns.pids(), Vec::<u32>::new(), "host B still runs");
    let after_kill = states(&api_a, &ids).await;
    let orphans = running_on(&after_kill, &names_b);
    assert!(
        !orphans.is_empty(),
        "host B's workers held no job when they were killed: {after_kill:#?}"
    );
    let jobs = wait_all_done(&api_a, &ids, &all).await;
    for job in jobs.iter().filter(|j| orphans.contains(&id_of(j))) {
        assert!(
            names_a.contains(job["worker"].as_str().unwrap_or("")) && job["attempts"] == 2,
            "a job of a killed worker of host B was not finished by host A: {job:#}"
        );
    }
    assert!(b.live_locks().is_empty(), "{:?}", b.live_locks());
    // B's worker records expire (10 s TTL): A's api then counts A's only.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = api_a.get_path("/readyz").await;
        if status == 200 && listed(&body) == names_a {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host B's dead workers are still counted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        metric(&api_a, "verdict_workers").await,
        Some(WORKERS as f64)
    );
    println!(
        "two_hosts: host B killed ({} processes) holding {} job(s): all finished by host A",
        killed.len(),
        orphans.len()
    );

    // Every job done, once.
    let stats = read_stats(&mut conn).await.expect("queue stats");
    assert_eq!(stats.submitted, submitted as u64, "{stats:?}");
    assert_eq!(stats.done, submitted as u64, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.dead_lettered, 0, "{stats:?}");
    assert!(
        stats.reclaimed >= (held_by_b + orphans.len()) as u64,
        "{stats:?}"
    );
}

/// Submits `n` jobs through `api`; their ids.
async fn submit(api: &ApiClient, image: &[u8], n: usize, what: &str) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(api.submit(image, &[&format!("{what} {i}")]).await);
    }
    ids
}

/// Waits until one of `workers` has just started a job of `ids`. Jobs start
/// in the order they were submitted, so it watches the first one still
/// queued, one look at a time, and returns when a look finds it running on
/// one of `workers` at most [`FRESH`] after the look that found it queued.
/// A cut or a kill made right after lands in the middle of that job (100 ms
/// long), never in the few milliseconds between two jobs when the worker
/// holds none. Two workers started together stay in step, so a cut made a
/// fixed time after submitting can hit that gap for both (CI saw it: "host
/// B's workers held no job when they were killed").
async fn await_fresh_start(api: &ApiClient, ids: &[String], workers: &BTreeSet<String>) {
    const FRESH: Duration = Duration::from_millis(40);
    let deadline = Instant::now() + PATIENCE;
    let mut next = 0;
    // When `ids[next]` was last seen queued.
    let mut seen_queued: Option<Instant> = None;
    while next < ids.len() && Instant::now() < deadline {
        let looked = Instant::now();
        let answer = api.get_job(&ids[next], None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let job = &answer.body;
        if job["state"] == "queued" {
            seen_queued = Some(looked);
            continue;
        }
        if runs_on(job, workers) && seen_queued.is_some_and(|seen| seen.elapsed() <= FRESH) {
            return;
        }
        next += 1;
        seen_queued = None;
    }
    panic!("no job of {} was seen starting on {workers:?}", ids.len());
}

/// Waits for every job to end and insists each is done by one of `workers`.
async fn wait_all_done(api: &ApiClient, ids: &[String], workers: &BTreeSet<String>) -> Vec<Value> {
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        let job = api.wait_end(id, PATIENCE).await;
        assert_eq!(job["state"], "done", "{job:#}");
        assert!(
            workers.contains(job["worker"].as_str().unwrap_or("")),
            "done by an unknown worker: {job:#}"
        );
        jobs.push(job);
    }
    jobs
}

/// The jobs as they are now.
async fn states(api: &ApiClient, ids: &[String]) -> Vec<Value> {
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        let answer = api.get_job(id, None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        jobs.push(answer.body);
    }
    jobs
}

/// The ids of the jobs running on one of `workers`.
fn running_on(jobs: &[Value], workers: &BTreeSet<String>) -> BTreeSet<String> {
    jobs.iter()
        .filter(|j| runs_on(j, workers))
        .map(id_of)
        .collect()
}

/// Whether `job` is running on one of `workers`.
fn runs_on(job: &Value, workers: &BTreeSet<String>) -> bool {
    job["state"] == "running" && workers.contains(job["worker"].as_str().unwrap_or(""))
}

fn count_done(jobs: &[Value]) -> usize {
    jobs.iter().filter(|j| j["state"] == "done").count()
}

fn id_of(job: &Value) -> String {
    job["id"].as_str().unwrap_or("").to_string()
}

/// How many of `jobs` each host's workers did.
fn by_host(jobs: &[Value], a: &BTreeSet<String>, b: &BTreeSet<String>) -> (usize, usize) {
    let on = |names: &BTreeSet<String>| {
        jobs.iter()
            .filter(|j| names.contains(j["worker"].as_str().unwrap_or("")))
            .count()
    };
    (on(a), on(b))
}

/// The worker names in a `/readyz` body.
fn listed(body: &Value) -> BTreeSet<String> {
    body["workers"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the api's `/readyz` answers 200 listing every one of
/// `workers`; what it lists then.
async fn wait_ready_with(api: &ApiClient, workers: &BTreeSet<String>) -> BTreeSet<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        // A refused connection (an api being restarted) is one more wait.
        if let Ok(response) = api.http().get(api.url("/readyz")).send().await {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let names = listed(&body);
            if status == 200 && workers.is_subset(&names) {
                return names;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {status} {body}",
                api.url("/readyz")
            );
        } else {
            assert!(
                Instant::now() < deadline,
                "{} never answered",
                api.url("/readyz")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The value of an unlabelled metric on the api's `/metrics`.
async fn metric(api: &ApiClient, name: &str) -> Option<f64> {
    let page = api
        .http()
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics page");
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
