//! The job model: one image and 1 to 64 sentences, from submission to verdict.
//!
//! A job is what the api stores in Redis when it accepts a submission and what
//! it serves back when asked; the worker moves it through its states. The image
//! bytes travel separately (see the queue protocol) so that a job's JSON stays
//! small and can be read often.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::image_reference::ImageReference;
use crate::verdict::SentenceVerdict;

/// A job's id: a UUIDv7, so ids sort by submission time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "01a20fe8-5dfb-736f-98a4-004f086e0b95"))]
pub struct JobId(Uuid);

impl JobId {
    /// A new, time-ordered id.
    pub fn new() -> JobId {
        JobId(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always the hyphenated lowercase form, whatever form was parsed.
        write!(f, "{}", self.0.hyphenated())
    }
}

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job id (expected a UUID such as 0193a6d2-7c1e-7cc3-9f5e-1a2b3c4d5e6f)")]
pub struct InvalidJobId(pub String);

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical hyphenated form: ids end up in Redis keys and URLs,
        // and one job must not answer to several spellings.
        if s.len() != 36 {
            return Err(InvalidJobId(truncate_for_error(s)));
        }
        Uuid::try_parse(s)
            .map(JobId)
            .map_err(|_| InvalidJobId(truncate_for_error(s)))
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidJobId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.to_string()
    }
}

fn truncate_for_error(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    /// Accepted and waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// Finished with a verdict for every sentence.
    Done,
    /// Finished without verdicts; `error` says why.
    Failed,
    /// Withdrawn by its submitter before a worker started it.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "failed" => Ok(JobState::Failed),
            "cancelled" => Ok(JobState::Cancelled),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

/// Why a job failed: a stable machine-readable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobError {
    /// Stable: from the engine `image_empty`, `image_too_large`,
    /// `image_format`, `image_decode`, `no_texts`, `too_many_texts`,
    /// `text_empty`, `text_too_long`, `premise_empty`, `premise_too_long`,
    /// `premise_unsupported` (the model cannot use a premise), `model_error`;
    /// from the run loop `judge_panicked`, `attempts_exhausted`; `cancelled`.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl JobError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> JobError {
        JobError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What is known about the image without decoding it: from the api for an
/// image sent with the job, from the worker that fetched it for an image
/// named by `reference` (until then `bytes` is 0 and `sha256` and `format`
/// are empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    /// Size of the encoded image in bytes.
    pub bytes: u64,
    /// Hex sha256 of the encoded bytes, for clients (the worker's image
    /// cache keys images by a BLAKE3 hash of their own, `image_key`).
    pub sha256: String,
    /// The format named by the file's magic bytes ("png", "jpeg", "gif", "webp", ...).
    pub format: String,
    /// Where the image is, when the job named it (`{"url": ...}` or
    /// `{"path": ...}`) instead of carrying it; absent for an image sent
    /// with the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ImageReference>,
}

impl ImageInfo {
    /// What is known of an image named by `reference` before a worker
    /// fetched it.
    pub fn by_reference(reference: ImageReference) -> ImageInfo {
        ImageInfo {
            bytes: 0,
            sha256: String::new(),
            format: String::new(),
            reference: Some(reference),
        }
    }
}

/// A job as stored in Redis and served by the api.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: JobId,
    pub state: JobState,
    pub texts: Vec<String>,
    /// A text that holds together with the image: each sentence is judged
    /// against the image and this premise. Absent when none was given; a
    /// model that cannot use one fails the job with `premise_unsupported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premise: Option<String>,
    pub image: ImageInfo,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How many times a worker has started this job.
    #[serde(default)]
    pub attempts: u32,
    /// The worker that ran (or runs) it.
    #[serde(default)]
    pub worker: Option<String>,
    /// One verdict per sentence, in the order of `texts`, once `state` is `done`.
    #[serde(default)]
    pub results: Vec<SentenceVerdict>,
    /// Why the job failed, once `state` is `failed` (or `cancelled`).
    #[serde(default)]
    pub error: Option<JobError>,
    /// Where the job's JSON is POSTed when it ends (see `docs/api.md`,
    /// callbacks); absent when none was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl Job {
    /// A freshly accepted job.
    pub fn new(texts: Vec<String>, image: ImageInfo) -> Job {
        Job {
            id: JobId::new(),
            state: JobState::Queued,
            texts,
            premise: None,
            image,
            submitted_at: OffsetDateTime::now_utc(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            worker: None,
            results: Vec::new(),
            error: None,
            callback_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
    }

    #[test]
    fn ids_accept_only_the_canonical_form() {
        let id = JobId::new().to_string();
        assert!(id.to_uppercase().parse::<JobId>().is_ok());
        assert!(id.replace('-', "").parse::<JobId>().is_err());
        assert!("../../etc/passwd".parse::<JobId>().is_err());
        assert!("".parse::<JobId>().is_err());
    }

    #[test]
    fn job_json_round_trips() {
        let job = Job::new(
            vec!["This is a ceramic coffee cup.".into()],
            ImageInfo {
                bytes: 10,
                sha256: "00".repeat(32),
                format: "png".into(),
                reference: None,
            },
        );
        let json = serde_json::to_string(&job).unwrap();
        let back: Job = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job);
        assert!(json.contains("\"state\":\"queued\""));
        assert!(!json.contains("premise"), "no premise, no field: {json}");
    }

    #[test]
    fn a_premise_round_trips_and_old_jobs_without_one_still_read() {
        let mut job = Job::new(
            vec!["The cup is hot.".into()],
            ImageInfo {
                bytes: 10,
                sha256: "00".repeat(32),
                format: "png".into(),
                reference: None,
            },
        );
        job.premise = Some("Steam rises from the cup.".into());
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["premise"], "Steam rises from the cup.");
        let back: Job = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, job);

        // A job written before premises existed has no such field.
        let mut old = json;
        old.as_object_mut().unwrap().remove("premise");
        let back: Job = serde_json::from_value(old).unwrap();
        assert_eq!(back.premise, None);
    }
}
