//! A running worker's heartbeat as the watchdog sees it: the newest value of
//! its record, and when (on the watchdog's monotonic clock) that value was
//! first seen.
//!
//! A worker is hung when its heartbeat has not *changed* for the hang limit.
//! Nothing here compares the record's `heartbeat_ms` (the worker's wall
//! clock) with the watchdog's wall clock: a clock stepped forward would make
//! a healthy worker look hung, one stepped back would hide a hang for as long
//! as the step. Only whether the value changed is read from the record; how
//! long ago is measured on [`Instant`]s.

use std::time::{Duration, Instant};

use verdict_shared::queue::WorkerRecord;

/// The newest heartbeat seen of one worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The record's beat counter and wall-clock stamp: either changing is a
    /// new beat (the stamp alone covers records without a counter).
    pub beats: u64,
    pub heartbeat_ms: u64,
    /// When the watchdog first saw this value.
    pub seen: Instant,
}

impl Heartbeat {
    /// What the watchdog knows after reading `record` at `now`, having known
    /// `previous`: the same heartbeat (first seen when it was) if the record
    /// did not change, a new one seen now if it did.
    pub fn observe(previous: Option<Heartbeat>, record: &WorkerRecord, now: Instant) -> Heartbeat {
        match previous {
            Some(known)
                if known.beats == record.beats && known.heartbeat_ms == record.heartbeat_ms =>
            {
                known
            }
            _ => Heartbeat {
                beats: record.beats,
                heartbeat_ms: record.heartbeat_ms,
                seen: now,
            },
        }
    }

    /// How long the heartbeat has gone without changing, at `now`.
    pub fn unchanged_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.seen)
    }
}
