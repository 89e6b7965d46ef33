//! The operator's dashboard (issue 17): one snapshot of the fleet that
//! `GET /v1/dashboard` serves and the page at `/dashboard` draws every few
//! seconds.
//!
//! - `snapshot`: what the snapshot holds and how it is read from Redis, in
//!   one pipeline of reads (the queue protocol's readers do the work);
//! - `sampler`: the api's background task that samples the queue into the
//!   minute's activity, so the queue can be drawn over time.

pub(crate) mod sampler;
pub(crate) mod snapshot;
