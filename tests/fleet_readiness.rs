//! `fleet up` that cannot get ready: it names what is not ready and why,
//! shows its log, stops what it started and exits non-zero.

use verdict_e2e::fleet::Fleet;

#[test]
fn an_unready_fleet_times_out_names_the_laggards_and_stops() {
    let fleet = Fleet::new();
    // A Redis nobody listens on: the api and workers start but can never be
    // ready (the workers keep trying to connect; they do not exit).
    let started = std::time::Instant::now();
    let up = fleet.up(1, &["--redis", "redis://127.0.0.1:1", "--timeout", "5s"]);
    assert!(
        !up.ok(),
        "fleet up succeeded without Redis:\n{}",
        up.output()
    );
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    let err = &up.stderr;
    assert!(err.contains("not ready after 5.0s"), "{}", up.output());
    assert!(
        err.contains("api: starting (GET /readyz does not answer 200"),
        "{}",
        up.output()
    );
    assert!(
        err.contains("worker-0: starting (has not registered in Redis"),
        "{}",
        up.output()
    );
    assert!(
        err.contains("--- last lines of"),
        "no log shown:\n{}",
        up.output()
    );
    assert!(err.contains("stopping what was started"), "{}", up.output());
    // Nothing is left running.
    assert!(fleet.live_locks().is_empty(), "{:?}", fleet.live_locks());
    let (code, _) = fleet.status();
    assert_eq!(code, Some(3));
}
