//! Long-polling without polling Redis: one pub/sub subscription per api
//! process, fanned out to the requests that wait.
//!
//! A waiting request registers with [`Waiters`] *before* it reads the job
//! (subscribe-then-read), so a job that finishes between the read and the wait
//! still wakes it. The [`subscriber`] task holds the only `SUBSCRIBE`
//! connection, and wakes every waiter when it (re)subscribes, so that events
//! missed while Redis was away are made up by a fresh read.

pub mod subscriber;
mod waiters;

pub use waiters::Waiters;
