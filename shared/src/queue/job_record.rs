//! The job record: how one job is laid out in its Redis hash.
//!
//! The record is a hash of small fields rather than one JSON blob, so that each
//! state change is a Lua script that sets a few fields atomically inside Redis
//! (no read-modify-write by a client, so two workers holding the same job after
//! a reclaim cannot lose an attempt count, and a finished job cannot be moved
//! backwards). The immutable part of the submission is one JSON field, `spec`.
//! A reader fetches every field but `image` with one HMGET and gets a
//! consistent snapshot, because every writer is a single script.
//!
//! Timestamps are microseconds since the Unix epoch, taken from Redis's clock
//! (`TIME`) inside the scripts, so that queue wait and run time compare
//! timestamps of one clock even when the api and workers run on other hosts.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::QueueError;
use super::image_fetched::FetchedImage;
use crate::job::{ImageInfo, Job, JobError, JobId, JobState};
use crate::verdict::SentenceVerdict;

/// Field names of the job hash.
pub mod field {
    /// JSON [`super::JobSpec`]: the sentences, the premise if any, and what the
    /// api learned about the image.
    pub const SPEC: &str = "spec";
    /// The encoded image bytes, exactly as submitted; for a job that names
    /// its image instead, the reference's JSON (`{"url": ...}`): the record
    /// holds what its worker needs to get the image until the job ends, the
    /// same for every script. Deleted when the job finishes.
    pub const IMAGE: &str = "image";
    /// JSON `{bytes, sha256, format}`: what the worker fetched for a job by
    /// reference (`image_fetched.lua`).
    pub const IMAGE_FETCHED: &str = "image_fetched";
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub const STATE: &str = "state";
    /// How many times a worker has started the job.
    pub const ATTEMPTS: &str = "attempts";
    /// The name of the worker that started (or finished) it last.
    pub const WORKER: &str = "worker";
    /// Microseconds since the epoch, Redis clock.
    pub const SUBMITTED_US: &str = "submitted_us";
    pub const STARTED_US: &str = "started_us";
    pub const FINISHED_US: &str = "finished_us";
    /// JSON array of verdicts, once done.
    pub const RESULTS: &str = "results";
    /// JSON `{code, message}`, once failed.
    pub const ERROR: &str = "error";
    /// Seconds to keep the record once finished.
    pub const RESULT_TTL: &str = "result_ttl";
    /// The id of the job's entry in the jobs stream.
    pub const ENTRY: &str = "entry";
    /// JSON `{code, message}`: why the last attempt did not finish (a
    /// transient failure), kept for the dead-letter stream.
    pub const LAST_ERROR: &str = "last_error";
}

/// The fields a reader fetches, in this order (everything but the image).
pub const READ_FIELDS: [&str; 10] = [
    field::SPEC,
    field::STATE,
    field::ATTEMPTS,
    field::WORKER,
    field::SUBMITTED_US,
    field::STARTED_US,
    field::FINISHED_US,
    field::RESULTS,
    field::ERROR,
    field::IMAGE_FETCHED,
];

/// The immutable part of a job, written once by the api.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub texts: Vec<String>,
    /// The text that holds with the image, if the submission gave one. Specs
    /// written before premises existed have none and still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premise: Option<String>,
    pub image: ImageInfo,
    /// Where to POST the job when it ends; finish.lua reads it to queue the
    /// callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// Builds a [`Job`] from the values of [`READ_FIELDS`]; `None` when the record
/// does not exist (never submitted, or expired).
pub fn assemble(id: JobId, values: &[Option<Vec<u8>>]) -> Result<Option<Job>, QueueError> {
    let [
        spec,
        state,
        attempts,
        worker,
        submitted,
        started,
        finished,
        results,
        error,
        image_fetched,
    ] = values
    else {
        return Err(QueueError::corrupt(format!(
            "job {id}: expected {} fields, got {}",
            READ_FIELDS.len(),
            values.len()
        )));
    };
    let (Some(spec), Some(state)) = (spec, state) else {
        return Ok(None);
    };
    let mut spec: JobSpec = serde_json::from_slice(spec)
        .map_err(|err| QueueError::corrupt(format!("job {id}: spec: {err}")))?;
    if let Some(raw) = image_fetched {
        let fetched: FetchedImage = serde_json::from_slice(raw)
            .map_err(|err| QueueError::corrupt(format!("job {id}: image_fetched: {err}")))?;
        spec.image.bytes = fetched.bytes;
        spec.image.sha256 = fetched.sha256;
        spec.image.format = fetched.format;
    }
    let state: JobState = text(id, "state", state)?
        .parse()
        .map_err(|err: String| QueueError::corrupt(format!("job {id}: {err}")))?;
    let submitted_at = timestamp(id, "submitted_us", submitted.as_deref())?
        .ok_or_else(|| QueueError::corrupt(format!("job {id}: no submitted_us")))?;
    let results: Vec<SentenceVerdict> = match results {
        Some(raw) => serde_json::from_slice(raw)
            .map_err(|err| QueueError::corrupt(format!("job {id}: results: {err}")))?,
        None => Vec::new(),
    };
    let error: Option<JobError> = match error {
        Some(raw) => Some(
            serde_json::from_slice(raw)
                .map_err(|err| QueueError::corrupt(format!("job {id}: error: {err}")))?,
        ),
        None => None,
    };
    Ok(Some(Job {
        id,
        state,
        texts: spec.texts,
        premise: spec.premise,
        image: spec.image,
        submitted_at,
        started_at: timestamp(id, "started_us", started.as_deref())?,
        finished_at: timestamp(id, "finished_us", finished.as_deref())?,
        attempts: match attempts {
            Some(raw) => text(id, "attempts", raw)?
                .parse()
                .map_err(|_| QueueError::corrupt(format!("job {id}: attempts")))?,
            None => 0,
        },
        worker: worker
            .as_deref()
            .map(|raw| text(id, "worker", raw).map(str::to_owned))
            .transpose()?,
        results,
        error,
        callback_url: spec.callback_url,
    }))
}

fn text<'a>(id: JobId, name: &str, raw: &'a [u8]) -> Result<&'a str, QueueError> {
    std::str::from_utf8(raw)
        .map_err(|_| QueueError::corrupt(format!("job {id}: {name} is not UTF-8")))
}

fn timestamp(
    id: JobId,
    name: &str,
    raw: Option<&[u8]>,
) -> Result<Option<OffsetDateTime>, QueueError> {
    let Some(raw) = raw else { return Ok(None) };
    let micros: i64 = text(id, name, raw)?
        .parse()
        .map_err(|_| QueueError::corrupt(format!("job {id}: {name} is not a number")))?;
    micros_to_datetime(micros)
        .map(Some)
        .ok_or_else(|| QueueError::corrupt(format!("job {id}: {name} out of range")))
}

/// A Redis-clock timestamp (microseconds since the epoch) as a date-time.
pub fn micros_to_datetime(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json() -> Vec<u8> {
        serde_json::to_vec(&JobSpec {
            texts: vec!["a cup".into()],
            premise: None,
            image: ImageInfo {
                bytes: 3,
                sha256: "ab".repeat(32),
                format: "png".into(),
                reference: None,
            },
            callback_url: None,
        })
        .unwrap()
    }

    #[test]
    fn a_missing_record_is_none() {
        let id = JobId::new();
        let values = vec![None; READ_FIELDS.len()];
        assert_eq!(assemble(id, &values).unwrap(), None);
    }

    #[test]
    fn a_queued_record_assembles() {
        let id = JobId::new();
        let mut values = vec![None; READ_FIELDS.len()];
        values[0] = Some(spec_json());
        values[1] = Some(b"queued".to_vec());
        values[2] = Some(b"0".to_vec());
        values[4] = Some(b"1732450000123456".to_vec());
        let job = assemble(id, &values).unwrap().unwrap();
        assert_eq!(job.state, JobState::Queued);
        assert_eq!(job.texts, vec!["a cup".to_string()]);
        assert_eq!(
            job.submitted_at.unix_timestamp_nanos(),
            1_732_450_000_123_456_000
        );
        assert_eq!(job.started_at, None);
    }

    #[test]
    fn the_premise_travels_from_the_spec_and_old_specs_have_none() {
        let id = JobId::new();
        let mut values = vec![None; READ_FIELDS.len()];
        values[1] = Some(b"queued".to_vec());
        values[4] = Some(b"1732450000123456".to_vec());

        // As written before premises existed: no field at all.
        values[0] = Some(
            br#"{"texts": ["a cup"], "image": {"bytes": 3, "sha256": "ab", "format": "png"}}"#
                .to_vec(),
        );
        assert_eq!(assemble(id, &values).unwrap().unwrap().premise, None);

        let spec = JobSpec {
            texts: vec!["The cup is hot.".into()],
            premise: Some("Steam rises from the cup.".into()),
            image: ImageInfo {
                bytes: 3,
                sha256: "ab".repeat(32),
                format: "png".into(),
                reference: None,
            },
            callback_url: None,
        };
        values[0] = Some(serde_json::to_vec(&spec).unwrap());
        let job = assemble(id, &values).unwrap().unwrap();
        assert_eq!(job.premise.as_deref(), Some("Steam rises from the cup."));
        assert_eq!(job.texts, spec.texts);
        assert!(
            !String::from_utf8(spec_json()).unwrap().contains("premise"),
            "a spec without a premise is written as before"
        );
    }

    #[test]
    fn garbage_is_reported_not_panicked_on() {
        let id = JobId::new();
        let mut values = vec![None; READ_FIELDS.len()];
        values[0] = Some(b"{not json".to_vec());
        values[1] = Some(b"queued".to_vec());
        assert!(matches!(assemble(id, &values), Err(QueueError::Corrupt(_))));
        values[0] = Some(spec_json());
        values[1] = Some(b"exploded".to_vec());
        assert!(matches!(assemble(id, &values), Err(QueueError::Corrupt(_))));
        assert!(matches!(
            assemble(id, &values[..3]),
            Err(QueueError::Corrupt(_))
        ));
    }

    #[test]
    fn what_a_worker_fetched_fills_in_a_reference_jobs_image() {
        let id = JobId::new();
        let reference =
            crate::image_reference::ImageReference::Url("https://img.example.com/cup.png".into());
        let spec = JobSpec {
            texts: vec!["A cup.".into()],
            premise: None,
            image: ImageInfo::by_reference(reference.clone()),
            callback_url: None,
        };
        let mut values = vec![None; READ_FIELDS.len()];
        values[0] = Some(serde_json::to_vec(&spec).unwrap());
        values[1] = Some(b"running".to_vec());
        values[4] = Some(b"1732450000123456".to_vec());
        let before = assemble(id, &values).unwrap().unwrap();
        assert_eq!(before.image, ImageInfo::by_reference(reference.clone()));

        values[9] = Some(br#"{"bytes": 1234, "sha256": "cd", "format": "jpeg"}"#.to_vec());
        let after = assemble(id, &values).unwrap().unwrap().image;
        assert_eq!(
            (after.bytes, after.sha256.as_str(), after.format.as_str()),
            (1234, "cd", "jpeg")
        );
        assert_eq!(after.reference, Some(reference));

        values[9] = Some(b"not json".to_vec());
        assert!(assemble(id, &values).is_err());
    }
}
