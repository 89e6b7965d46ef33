//! A typed client of verdict's HTTP api, and the batch runner built on it.
//!
//! - [`api`]: `POST /v1/batches` and long-polls of `GET /v1/jobs/{id}`, with
//!   retries for whatever says "later"; answers read as `verdict_shared`'s
//!   job types;
//! - [`batch`]: `fleet batch`: a catalogue of rows through the api, resumable,
//!   with a progress bar.

pub mod api;
pub mod batch;
