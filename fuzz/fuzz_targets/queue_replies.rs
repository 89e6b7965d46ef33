//! What Redis answers, parsed as the api and the workers parse it: RESP bytes
//! (redis-rs's own parser) into a value, then each queue step's typed reply
//! (`parse_reply` of submit, start, finish, retry, cancel and dead_letter, the
//! stream replies of XREADGROUP and XAUTOCLAIM, a job record's HMGET).
//! The first byte picks the parser. Invariants: no panic (a worker or the api
//! that panics on a corrupt reply loses the job it holds); a reply that is not
//! what the protocol says is `QueueError::Corrupt`, naming the step; a typed
//! result holds what its step promises.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use redis::Value;
use verdict_shared::job::{ImageInfo, JobId, JobState};
use verdict_shared::queue::job_record::{self, JobSpec};
use verdict_shared::queue::{
    QueueError, Start, cancel, claim, dead_letter, finish, retry, start, submit,
};

const JOB: &str = "0192f0c2-7d0e-7c8a-9b1e-3f4a5b6c7d8e";

fuzz_target!(|data: &[u8]| {
    let Some((&which, resp)) = data.split_first() else {
        return;
    };
    let Ok(value) = redis::parse_redis_value(resp) else {
        return;
    };
    let id = JobId::from_str(JOB).expect("a job id");
    let result: Result<(), QueueError> = match which % 9 {
        0 => array(value).map(|reply| {
            let spec = JobSpec {
                texts: vec!["A cup.".into()],
                premise: None,
                image: ImageInfo {
                    bytes: 1,
                    sha256: "00".into(),
                    format: "png".into(),
                    reference: None,
                },
                callback_url: None,
            };
            submit::parse_reply(reply, id, spec).map(drop)
        }),
        1 => array(value).map(|reply| {
            start::parse_reply(reply, id, "1-0", "worker-0").map(|start| {
                if let Start::Run(started) = start {
                    assert_eq!(started.job.state, JobState::Running);
                    assert_eq!(started.job.id, id);
                    assert_eq!(started.entry_id, "1-0");
                    assert_eq!(started.job.worker.as_deref(), Some("worker-0"));
                }
            })
        }),
        2 => array(value).map(|reply| finish::parse_reply(reply).map(drop)),
        3 => array(value).map(|reply| retry::parse_reply(reply).map(drop)),
        4 => array(value).map(|reply| cancel::parse_reply(reply).map(drop)),
        5 => array(value).map(|reply| dead_letter::parse_reply(reply).map(drop)),
        6 => Ok(claim::parse_read_reply(value).map(drop)),
        7 => Ok(claim::parse_entries(value).map(drop)),
        _ => match redis::from_redis_value::<Vec<Option<Vec<u8>>>>(value) {
            Ok(values) => Ok(job_record::assemble(id, &values).map(|job| {
                if let Some(job) = job {
                    assert_eq!(job.id, id);
                }
            })),
            Err(_) => return,
        },
    }
    .unwrap_or(Ok(()));
    if let Err(err) = result {
        assert!(
            matches!(err, QueueError::Corrupt(_)),
            "a malformed reply must be Corrupt, got {err:?}"
        );
    }
});

/// The reply as the scripts' callers receive it (`Vec<Value>`); `Err` when
/// redis-rs itself refuses the conversion (not ours to judge).
fn array(value: Value) -> Result<Vec<Value>, ()> {
    redis::from_redis_value::<Vec<Value>>(value).map_err(drop)
}
