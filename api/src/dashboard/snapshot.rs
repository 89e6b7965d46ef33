//! The dashboard's snapshot of the fleet: its workers, the queue now and over
//! the last hour, throughput and latency per minute, the recent failures,
//! the dead letters and the jobs still waiting.
//!
//! Ages are measured on Redis's clock, the one clock every process of the
//! fleet shares, never on this host's: a worker's last heartbeat is how long
//! ago its record was rewritten (its TTL left, as `register.lua` judges a
//! stale name), not its own `heartbeat_ms` (docs/protocol.md, Heartbeats).

use redis::aio::ConnectionLike;
use serde::Serialize;
use verdict_shared::queue::activity::{self, MinuteActivity};
use verdict_shared::queue::dead_list::{self, DeadJob};
use verdict_shared::queue::heartbeat::{self, HEARTBEAT_TTL, STALE_AFTER};
use verdict_shared::queue::queued::{self, QueuedJob};
use verdict_shared::queue::recent_failures::{self, RecentFailure};
use verdict_shared::queue::{QueueError, WorkerRecord, keys, stats};

/// How many entries of each list a snapshot carries.
const LISTED: usize = 20;

/// The whole dashboard.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    /// When the snapshot was taken, in milliseconds since the epoch (Redis's
    /// clock).
    pub at_ms: u64,
    /// The workers whose heartbeat record is alive, by name.
    pub workers: Vec<WorkerRow>,
    pub queue: QueueNow,
    /// The last hour, minute by minute, oldest first.
    pub minutes: Vec<MinuteActivity>,
    /// The last failed jobs, newest first (at most 20).
    pub recent_failures: Vec<RecentFailure>,
    /// The newest dead letters (at most 20; `queue.dead` counts them all).
    pub dead: Vec<DeadJob>,
    /// The oldest jobs still waiting for a worker (at most 20;
    /// `queue.queued` counts them all).
    pub queued_jobs: Vec<QueuedJob>,
}

/// One worker.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerRow {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub model: String,
    /// `busy` (it holds a job), `idle`, or `silent` (its record is alive but
    /// was not rewritten for 6 s: hung, or cut off from Redis).
    pub state: WorkerState,
    /// The job it holds now.
    pub current_job: Option<String>,
    /// Jobs it finished since it started.
    pub jobs_done: u64,
    /// Seconds since its last heartbeat, on Redis's clock.
    pub heartbeat_age_s: f64,
    /// Seconds since it started: the uptime its last heartbeat gave (on its
    /// own monotonic clock) plus that heartbeat's age on Redis's clock
    /// (records of workers older than that field: this host's clock less its
    /// start time, off by the two clocks' difference).
    pub uptime_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Busy,
    Idle,
    Silent,
}

/// The queue at this moment, and its counters since Redis was first used.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueNow {
    /// Jobs waiting for a worker.
    pub queued: u64,
    /// Jobs a worker holds.
    pub in_flight: u64,
    /// Jobs in the dead-letter stream.
    pub dead: u64,
    pub submitted: u64,
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// Reads the snapshot.
pub async fn read<C: ConnectionLike>(conn: &mut C) -> Result<Dashboard, QueueError> {
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    let at_ms = seconds * 1000 + micros / 1000;
    let records = heartbeat::live_workers(conn).await?;
    let mut ttls = redis::pipe();
    for record in &records {
        ttls.cmd("PTTL").arg(keys::worker(&record.name));
    }
    let ttls: Vec<i64> = if records.is_empty() {
        Vec::new()
    } else {
        ttls.query_async(conn).await?
    };
    let workers = records
        .into_iter()
        .zip(ttls)
        .map(|(record, ttl_ms)| WorkerRow::new(record, at_ms, ttl_ms))
        .collect();
    let counters = stats::read_stats(conn).await?;
    let in_flight = stats::in_flight(conn).await?;
    let dead_count = dead_list::count(conn).await?;
    Ok(Dashboard {
        at_ms,
        workers,
        queue: QueueNow {
            queued: counters.stream_len.saturating_sub(in_flight),
            in_flight,
            dead: dead_count,
            submitted: counters.submitted,
            done: counters.done,
            failed: counters.failed,
            cancelled: counters.cancelled,
        },
        minutes: activity::last_minutes(conn, activity::MINUTES_SHOWN).await?,
        recent_failures: recent_failures::newest(conn, LISTED).await?,
        dead: dead_list::page(conn, None, LISTED).await?,
        queued_jobs: queued::oldest(conn, LISTED).await?,
    })
}

impl WorkerRow {
    /// `ttl_ms`: the record's TTL left (PTTL), which every beat resets to
    /// [`HEARTBEAT_TTL`].
    fn new(record: WorkerRecord, now_ms: u64, ttl_ms: i64) -> WorkerRow {
        let full = HEARTBEAT_TTL.as_millis() as u64;
        let age_ms = full.saturating_sub(u64::try_from(ttl_ms).unwrap_or(0));
        let state = if age_ms >= STALE_AFTER.as_millis() as u64 {
            WorkerState::Silent
        } else if record.current_job.is_some() {
            WorkerState::Busy
        } else {
            WorkerState::Idle
        };
        WorkerRow {
            state,
            heartbeat_age_s: age_ms as f64 / 1000.0,
            uptime_s: record.uptime_s(age_ms, now_ms),
            name: record.name,
            host: record.host,
            pid: record.pid,
            model: record.model,
            current_job: record.current_job,
            jobs_done: record.jobs_done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(heartbeat_ms: u64, current_job: Option<&str>) -> WorkerRecord {
        WorkerRecord {
            name: "w".into(),
            host: "h".into(),
            pid: 1,
            model: "m".into(),
            started_ms: 1_000,
            heartbeat_ms,
            beats: 5,
            uptime_ms: None,
            instance: "i".into(),
            jobs_done: 3,
            current_job: current_job.map(str::to_string),
        }
    }

    #[test]
    fn a_worker_is_busy_idle_or_silent_by_its_records_ttl() {
        let now = 1_000_000;
        assert_eq!(
            WorkerRow::new(record(now, Some("j")), now, 9_000).state,
            WorkerState::Busy
        );
        assert_eq!(
            WorkerRow::new(record(now, None), now, 9_000).state,
            WorkerState::Idle
        );
        // Not rewritten for 7 s: silent, whatever its own clock says.
        let silent = WorkerRow::new(record(now + 120_000, Some("j")), now, 3_000);
        assert_eq!(silent.state, WorkerState::Silent);
        assert_eq!(silent.heartbeat_age_s, 7.0);
        assert_eq!(silent.uptime_s, 999.0);
        // A clock 120 s behind Redis's changes nothing either.
        let behind = WorkerRow::new(record(now - 120_000, None), now, 9_500);
        assert_eq!(behind.state, WorkerState::Idle);
        assert_eq!(behind.heartbeat_age_s, 0.5);
        // With its own uptime in the record: that, plus the beat's age,
        // whatever its start time on its own clock says.
        let mut timed = record(now - 120_000, None);
        timed.started_ms = now + 3_600_000;
        timed.uptime_ms = Some(60_000);
        assert_eq!(WorkerRow::new(timed, now, 8_000).uptime_s, 62.0);
    }
}
