//! What the three scripts that write a worker's record share (register,
//! beat, deregister): the beginning that tells whose record is under a name
//! (`lua/worker_owner.lua`, prepended to each), the record as they send it,
//! and the [`Holder`] they answer with when the name is another process's.

use std::fmt;

use redis::Script;

use super::{QueueError, WorkerRecord};

/// `lua/worker_owner.lua`: what a script that writes a worker's record
/// starts with.
const WORKER_OWNER: &str = include_str!("lua/worker_owner.lua");

/// A script: the shared beginning followed by `body`.
pub(crate) fn worker_name_script(body: &str) -> Script {
    Script::new(&format!("{WORKER_OWNER}{body}"))
}

/// The record as the scripts store it: JSON.
pub(crate) fn record_json(record: &WorkerRecord) -> Result<String, QueueError> {
    serde_json::to_string(record)
        .map_err(|err| QueueError::corrupt(format!("worker record: {err}")))
}

/// The process that holds a name, as its record says.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    /// The record as stored (compared byte for byte: a holder that beats
    /// rewrites it).
    pub raw: String,
    /// The record, if it parses.
    pub record: Option<WorkerRecord>,
}

impl Holder {
    pub(crate) fn from_raw(raw: String) -> Holder {
        let record = serde_json::from_str(&raw).ok();
        Holder { raw, record }
    }
}

impl fmt::Display for Holder {
    /// `PID 4242 on host-b (instance 0f3c…)`, or what is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.record {
            Some(r) if r.instance.is_empty() => write!(f, "PID {} on {}", r.pid, r.host),
            Some(r) => write!(f, "PID {} on {} (instance {})", r.pid, r.host, r.instance),
            None => f.write_str("a process whose record does not parse"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_says_who_it_is_or_that_it_cannot_tell() {
        let record = WorkerRecord {
            name: "w".into(),
            host: "host-b".into(),
            pid: 4242,
            model: "noop".into(),
            started_ms: 1,
            heartbeat_ms: 2,
            beats: 3,
            uptime_ms: None,
            instance: "i-1".into(),
            jobs_done: 0,
            current_job: None,
        };
        let holder = Holder::from_raw(record_json(&record).unwrap());
        assert_eq!(holder.record.as_ref(), Some(&record));
        assert_eq!(holder.to_string(), "PID 4242 on host-b (instance i-1)");
        let holder = Holder::from_raw("{oops".into());
        assert_eq!(holder.record, None);
        assert!(holder.to_string().contains("does not parse"));
        // Scripts are identified by their hash: the body alone is another one.
        let body = "return {'beat'}";
        assert_ne!(
            worker_name_script(body).get_hash(),
            Script::new(body).get_hash()
        );
    }
}
