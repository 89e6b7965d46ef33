//! Reading the replies of verdict's scripts and stream commands.
//!
//! Script replies are small arrays of bulk strings and integers; these helpers
//! turn a malformed one into [`QueueError::Corrupt`] instead of a panic.

use redis::Value;

use super::QueueError;

/// The bytes of a bulk or simple string.
pub(crate) fn bytes(value: Value, what: &str) -> Result<Vec<u8>, QueueError> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::VerbatimString { text, .. } => Ok(text.into_bytes()),
        other => Err(QueueError::corrupt(format!(
            "{what}: expected a string, got {other:?}"
        ))),
    }
}

/// A UTF-8 string.
pub(crate) fn string(value: Value, what: &str) -> Result<String, QueueError> {
    String::from_utf8(bytes(value, what)?)
        .map_err(|_| QueueError::corrupt(format!("{what}: not UTF-8")))
}

/// An integer, sent either as a Redis integer or as a decimal string.
pub(crate) fn integer(value: Value, what: &str) -> Result<i64, QueueError> {
    match value {
        Value::Int(n) => Ok(n),
        other => string(other, what)?
            .parse()
            .map_err(|_| QueueError::corrupt(format!("{what}: not an integer"))),
    }
}

/// The elements of an array reply.
pub(crate) fn array(value: Value, what: &str) -> Result<Vec<Value>, QueueError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(QueueError::corrupt(format!(
            "{what}: expected an array, got {other:?}"
        ))),
    }
}

/// A script's reply read part by part, in the order the script sends them:
/// its verb first, then what the verb carries. Every error names the script
/// and the part.
pub(crate) struct Parts {
    script: &'static str,
    items: std::vec::IntoIter<Value>,
}

impl Parts {
    pub(crate) fn new(script: &'static str, reply: Vec<Value>) -> Parts {
        Parts {
            script,
            items: reply.into_iter(),
        }
    }

    fn next(&mut self, what: &str) -> Result<(Value, String), QueueError> {
        let what = format!("{}: {what}", self.script);
        match self.items.next() {
            Some(value) => Ok((value, what)),
            None => Err(QueueError::corrupt(format!("{what}: missing"))),
        }
    }

    /// What the script did: `finished`, `stale`, `missing`...
    pub(crate) fn verb(&mut self) -> Result<String, QueueError> {
        self.string("verb")
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, QueueError> {
        let (value, what) = self.next(what)?;
        string(value, &what)
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<Vec<u8>, QueueError> {
        let (value, what) = self.next(what)?;
        bytes(value, &what)
    }

    pub(crate) fn integer(&mut self, what: &str) -> Result<i64, QueueError> {
        let (value, what) = self.next(what)?;
        integer(value, &what)
    }

    /// A count (attempts), saturating at `u32::MAX`.
    pub(crate) fn count(&mut self, what: &str) -> Result<u32, QueueError> {
        let n = self.integer(what)?;
        Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
    }

    /// A moment sent as microseconds since the epoch.
    pub(crate) fn time(&mut self, what: &str) -> Result<time::OffsetDateTime, QueueError> {
        let us = self.integer(what)?;
        super::job_record::micros_to_datetime(us)
            .ok_or_else(|| QueueError::corrupt(format!("{}: {what} out of range", self.script)))
    }

    /// The state a job was found in.
    pub(crate) fn state(&mut self) -> Result<crate::job::JobState, QueueError> {
        let state = self.string("state")?;
        state
            .parse()
            .map_err(|err: String| QueueError::corrupt(format!("{}: {err}", self.script)))
    }

    /// The error for a verb the parser does not know.
    pub(crate) fn unknown(&self, verb: &str) -> QueueError {
        QueueError::corrupt(format!("{}: unknown reply {verb:?}", self.script))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parts_read_in_order_and_name_what_is_wrong() {
        let mut parts = Parts::new("finish", vec![bulk("stale"), bulk("done"), Value::Int(-3)]);
        assert_eq!(parts.verb().unwrap(), "stale");
        assert_eq!(parts.state().unwrap(), JobState::Done);
        assert_eq!(
            parts.count("attempts").unwrap(),
            0,
            "a negative count is none"
        );
        let err = parts.string("entry").unwrap_err().to_string();
        assert!(err.contains("finish: entry: missing"), "{err}");
        let mut parts = Parts::new("cancel", vec![bulk("refused"), bulk("exploded")]);
        parts.verb().unwrap();
        let err = parts.state().unwrap_err().to_string();
        assert!(err.contains("cancel:"), "{err}");
        let mut parts = Parts::new("start", vec![Value::Int(i64::MAX)]);
        assert!(parts.time("started_us").is_err(), "out of range");
        assert!(
            Parts::new("x", vec![])
                .unknown("boom")
                .to_string()
                .contains("\"boom\"")
        );
    }
}
