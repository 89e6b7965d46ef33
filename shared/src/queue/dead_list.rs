//! Reading the dead-letter stream (`verdict:dead`), newest first, a page at
//! a time: what `GET /v1/dead` and `fleet dead list` show.

use redis::Value;
use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};

use super::{QueueError, keys, reply};
use crate::job::JobError;

/// One dead-lettered job, as its dead-letter entry records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadJob {
    /// The job's id (`GET /v1/jobs/{id}` has its record while it lasts).
    pub job: String,
    /// The dead-letter entry's id: the cursor of the next page.
    pub entry: String,
    /// How many times it was started.
    pub attempts: u32,
    /// Its final error (`attempts_exhausted`).
    pub error: JobError,
    /// What went wrong the last time (`worker_lost`, or a transient error).
    pub last_error: JobError,
    /// The worker that gave up on it.
    pub worker: String,
    /// When, in microseconds since the epoch.
    pub at_us: i64,
}

/// A page of dead letters, as `GET /v1/dead` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadPage {
    /// How many jobs are in the dead-letter stream in all.
    pub count: u64,
    /// Newest first.
    pub dead: Vec<DeadJob>,
    /// `before` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One page: up to `count` entries older than `before` (an entry id; the
/// newest when `None`), newest first.
pub async fn page<C: ConnectionLike>(
    conn: &mut C,
    before: Option<&str>,
    count: usize,
) -> Result<Vec<DeadJob>, QueueError> {
    let end = match before.map(entry_id).transpose()? {
        // Nothing is older than the first possible id (and Redis refuses
        // an exclusive end there).
        Some((0, 0)) => return Ok(Vec::new()),
        Some((ms, seq)) => format!("({ms}-{seq}"),
        None => "+".to_string(),
    };
    let raw: Value = redis::cmd("XREVRANGE")
        .arg(keys::DEAD_LETTER)
        .arg(end)
        .arg("-")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    reply::array(raw, "dead: entries")?
        .into_iter()
        .map(parse_entry)
        .collect()
}

/// A stream entry id `MS-SEQ` as its two numbers.
fn entry_id(text: &str) -> Result<(u64, u64), QueueError> {
    let invalid = || QueueError::corrupt(format!("dead: {text:?} is not an entry id"));
    let (ms, seq) = text.split_once('-').ok_or_else(invalid)?;
    Ok((
        ms.parse().map_err(|_| invalid())?,
        seq.parse().map_err(|_| invalid())?,
    ))
}

/// How many jobs are in the dead-letter stream now.
pub async fn count<C: ConnectionLike>(conn: &mut C) -> Result<u64, QueueError> {
    Ok(redis::cmd("XLEN")
        .arg(keys::DEAD_LETTER)
        .query_async(conn)
        .await?)
}

fn parse_entry(entry: Value) -> Result<DeadJob, QueueError> {
    let mut parts = reply::array(entry, "dead: entry")?.into_iter();
    let id = reply::string(parts.next().unwrap_or(Value::Nil), "dead: entry id")?;
    let fields = parts.next().unwrap_or(Value::Nil);
    let pairs: Vec<(String, Vec<u8>)> = match fields {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    reply::string(k, "dead: field")?,
                    reply::bytes(v, "dead: value")?,
                ))
            })
            .collect::<Result<_, QueueError>>()?,
        other => reply::array(other, "dead: fields")?
            .chunks(2)
            .map(|pair| {
                let name = reply::string(pair[0].clone(), "dead: field")?;
                let value = pair.get(1).cloned().unwrap_or(Value::Nil);
                Ok((name, reply::bytes(value, "dead: value")?))
            })
            .collect::<Result<_, QueueError>>()?,
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let error = |name: &str| {
        serde_json::from_str(&field(name))
            .unwrap_or_else(|_| JobError::new("unknown", format!("unreadable {name}")))
    };
    Ok(DeadJob {
        job: field("job"),
        entry: id,
        attempts: field("attempts").parse().unwrap_or(0),
        error: error("error"),
        last_error: error("last_error"),
        worker: field("worker"),
        at_us: field("at_us").parse().unwrap_or(0),
    })
}
