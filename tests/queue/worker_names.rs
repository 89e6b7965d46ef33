//! A worker name belongs to one live process at a time, at the protocol's
//! level (`register.lua`, `beat.lua`, `deregister.lua` on a real Redis): a
//! second process is refused while the holder beats, takes over a holder
//! that stopped beating, and the old holder then finds its name taken at its
//! next beat and cannot delete the new holder's record.

use redis::AsyncCommands;
use verdict_e2e::RedisServer;
use verdict_shared::queue::deregister::{Deregistration, deregister};
use verdict_shared::queue::heartbeat::{Beat, HEARTBEAT_TTL, STALE_AFTER, beat, live_workers};
use verdict_shared::queue::register::{Registration, Takeover, register};
use verdict_shared::queue::{WorkerRecord, keys};

fn record(name: &str, host: &str, pid: u32, instance: &str) -> WorkerRecord {
    WorkerRecord {
        name: name.into(),
        host: host.into(),
        pid,
        model: "noop".into(),
        started_ms: 1,
        heartbeat_ms: 1,
        beats: 0,
        uptime_ms: None,
        instance: instance.into(),
        jobs_done: 0,
        current_job: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_belongs_to_one_live_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start_unix(dir.path());
    let mut conn = server.connection().await;
    // Two processes on two machines that share a host name, under one name.
    let mut first = record("w", "twin", 100, "instance-a");
    let second = record("w", "twin", 200, "instance-b");

    assert_eq!(
        register(&mut conn, &first, None).await.unwrap(),
        Registration::Registered
    );
    assert_eq!(
        register(&mut conn, &first, None).await.unwrap(),
        Registration::Registered,
        "registering again is harmless"
    );
    // The second is told who holds the name, and nothing is written.
    let Registration::Held { holder, ttl_left } = register(&mut conn, &second, None).await.unwrap()
    else {
        panic!("a live holder's name was given away");
    };
    assert_eq!(holder.record.as_ref().map(|r| r.pid), Some(100));
    assert!(ttl_left > HEARTBEAT_TTL - STALE_AFTER, "{ttl_left:?}");
    assert_eq!(holder.to_string(), "PID 100 on twin (instance instance-a)");
    let live = live_workers(&mut conn).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].instance, "instance-a");
    // The holder beats: its record changes, which is how the second one,
    // asking again, knows it is alive.
    first.beats += 1;
    assert_eq!(beat(&mut conn, &first).await.unwrap(), Beat::Beaten);
    let Registration::Held { holder: again, .. } =
        register(&mut conn, &second, None).await.unwrap()
    else {
        panic!("a live holder's name was given away");
    };
    assert_ne!(again.raw, holder.raw);

    // The holder stops beating: once its record has gone unwritten for
    // STALE_AFTER (its TTL left at most HEARTBEAT_TTL - STALE_AFTER; set
    // here rather than waited for), the second takes the name over.
    let key = keys::worker("w");
    let _: () = conn
        .pexpire(&key, (HEARTBEAT_TTL - STALE_AFTER).as_millis() as i64)
        .await
        .unwrap();
    let Registration::TookOver {
        previous,
        why: Takeover::Silent,
    } = register(&mut conn, &second, None).await.unwrap()
    else {
        panic!("a silent holder kept its name");
    };
    assert_eq!(
        previous.record.map(|r| r.instance),
        Some("instance-a".into())
    );
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(
        ttl > (HEARTBEAT_TTL - STALE_AFTER).as_millis() as i64,
        "{ttl}"
    );

    // The old holder comes back: its beat writes nothing and says who has
    // the name; its deregistration leaves the new holder alone.
    first.beats += 1;
    let Beat::Taken { holder } = beat(&mut conn, &first).await.unwrap() else {
        panic!("the old holder beat over the new one");
    };
    assert_eq!(holder.record.map(|r| r.pid), Some(200));
    assert!(matches!(
        deregister(&mut conn, "w", "instance-a").await.unwrap(),
        Deregistration::NotOurs { .. }
    ));
    let live = live_workers(&mut conn).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].instance, "instance-b");

    // The holder leaves; the name is free for anyone.
    assert_eq!(
        deregister(&mut conn, "w", "instance-b").await.unwrap(),
        Deregistration::Deregistered
    );
    assert!(live_workers(&mut conn).await.unwrap().is_empty());
    let members: Vec<String> = conn.smembers(keys::WORKERS).await.unwrap();
    assert!(members.is_empty(), "{members:?}");
    assert_eq!(
        register(&mut conn, &first, None).await.unwrap(),
        Registration::Registered
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_expired_is_written_again_by_its_beat() {
    // Redis unreachable for longer than the TTL, or restarted empty: the
    // name is nobody's, and the worker's next beat puts it back.
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start_unix(dir.path());
    let mut conn = server.connection().await;
    let mut me = record("w", "host", 1, "instance-a");
    assert_eq!(
        register(&mut conn, &me, None).await.unwrap(),
        Registration::Registered
    );
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    me.beats += 1;
    assert_eq!(beat(&mut conn, &me).await.unwrap(), Beat::Beaten);
    let live = live_workers(&mut conn).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].beats, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_dead_predecessor_s_record_is_taken_over_at_once() {
    // The fleet's watchdog reaped the previous process and hands its
    // instance to the next: no waiting for STALE_AFTER. Any other instance
    // named as predecessor changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start_unix(dir.path());
    let mut conn = server.connection().await;
    let dead = record("worker-0", "host", 100, "instance-dead");
    let next = record("worker-0", "host", 101, "instance-next");
    assert_eq!(
        register(&mut conn, &dead, None).await.unwrap(),
        Registration::Registered
    );
    assert!(matches!(
        register(&mut conn, &next, Some("instance-other"))
            .await
            .unwrap(),
        Registration::Held { .. }
    ));
    let Registration::TookOver {
        previous,
        why: Takeover::Predecessor,
    } = register(&mut conn, &next, Some("instance-dead"))
        .await
        .unwrap()
    else {
        panic!("the named predecessor's record was not taken over");
    };
    assert_eq!(previous.record.map(|r| r.pid), Some(100));
    let live = live_workers(&mut conn).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].instance, "instance-next");
}
