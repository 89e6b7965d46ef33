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
