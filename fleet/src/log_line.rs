//! Reading the fleet's log lines back: their level, and a readable form.
//!
//! The api, the workers and the watchdog log JSON (one object per line, from
//! `tracing`); redis-server logs its own text format; anything else (a panic
//! message, a line printed before logging was set up) is plain text. `fleet
//! logs` renders the first two for people and filters all three by level. A
//! line whose level cannot be told is always shown: a filter must never hide
//! the one line that explains a crash.

use std::fmt::Write as _;

use clap::ValueEnum;

/// Severity, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        match text.to_ascii_uppercase().as_str() {
            "TRACE" => Some(Level::Trace),
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" | "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `None` when the line does not say.
    pub level: Option<Level>,
    /// The line for people.
    pub text: String,
}

impl LogLine {
    /// Whether a `--level` filter keeps this line.
    pub fn passes(&self, min: Option<Level>) -> bool {
        match (min, self.level) {
            (Some(min), Some(level)) => level >= min,
            _ => true,
        }
    }
}

/// Parses one line of any of the three kinds.
pub fn parse(line: &str) -> LogLine {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.starts_with('{')
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line)
    {
        return render_json(&map, line);
    }
    if let Some(parsed) = parse_redis(line) {
        return parsed;
    }
    // Plain text: tracing's own text format puts the level in the first few words.
    let level = line.split_whitespace().take(3).find_map(Level::parse);
    LogLine {
        level,
        text: line.to_string(),
    }
}

fn render_json(map: &serde_json::Map<String, serde_json::Value>, raw: &str) -> LogLine {
    let level = map
        .get("level")
        .and_then(|v| v.as_str())
        .and_then(Level::parse);
    let mut text = String::new();
    if let Some(ts) = map.get("timestamp").and_then(|v| v.as_str()) {
        text.push_str(&short_timestamp(ts));
        text.push(' ');
    }
    let _ = write!(text, "{:>5} ", level.map_or("?", Level::label));
    let message = match map.get("message") {
        Some(serde_json::Value::String(message)) => message.clone(),
        Some(other) => other.to_string(),
        None => raw.to_string(),
    };
    text.push_str(&message);
    for (key, value) in map {
        if matches!(
            key.as_str(),
            "timestamp"
                | "level"
                | "message"
                | "target"
                | "span"
                | "spans"
                | "threadId"
                | "threadName"
        ) {
            continue;
        }
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Fields that the message already spells out (a name, a PID) are
        // noise when repeated.
        if message.contains(value.as_str()) {
            continue;
        }
        let _ = write!(text, " {key}={value}");
    }
    LogLine { level, text }
}

/// `2026-11-24T23:29:11.123456Z` → `2026-11-24 23:29:11.123`.
fn short_timestamp(ts: &str) -> String {
    let ts = ts.trim_end_matches('Z');
    let (date, time) = ts.split_once('T').unwrap_or((ts, ""));
    let time = match time.find('.') {
        Some(dot) => &time[..(dot + 4).min(time.len())],
        None => time,
    };
    format!("{date} {time}").trim().to_string()
}

/// redis-server's format: `PID:ROLE DD Mon YYYY HH:MM:SS.mmm MARK message`,
/// where MARK is `.` debug, `-` verbose, `*` notice, `#` warning.
fn parse_redis(line: &str) -> Option<LogLine> {
    let mut parts = line.splitn(7, ' ');
    let pid_role = parts.next()?;
    let (pid, role) = pid_role.split_once(':')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || role.len() != 1 {
        return None;
    }
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    let mark = parts.next()?;
    let message = parts.next().unwrap_or("");
    let level = match mark {
        "." => Level::Debug,
        "-" => Level::Debug,
        "*" => Level::Info,
        "#" => Level::Warn,
        _ => return None,
    };
    Some(LogLine {
        level: Some(level),
        text: format!("{day} {month} {year} {time} {:>5} {message}", level.label()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tracing_json() {
        let line = r#"{"timestamp":"2026-11-24T23:29:11.123456Z","level":"WARN","message":"worker-1 (PID 42) crashed: signal SIGKILL","target":"verdict_supervisor::watchdog","name":"worker-1","pid":42,"uptime_ms":1500}"#;
        let parsed = parse(line);
        assert_eq!(parsed.level, Some(Level::Warn));
        assert_eq!(
            parsed.text,
            "2026-11-24 23:29:11.123  WARN worker-1 (PID 42) crashed: signal SIGKILL uptime_ms=1500"
        );
        assert!(parsed.passes(Some(Level::Warn)));
        assert!(!parsed.passes(Some(Level::Error)));
    }

    #[test]
    fn reads_redis_levels() {
        let parsed =
            parse("4242:M 24 Nov 2026 23:29:11.123 # WARNING overcommit_memory is set to 0!");
        assert_eq!(parsed.level, Some(Level::Warn));
        assert!(parsed.text.contains("WARNING overcommit_memory"));
        let parsed = parse("4242:M 24 Nov 2026 23:29:11.123 * Ready to accept connections unix");
        assert_eq!(parsed.level, Some(Level::Info));
        assert!(!parsed.passes(Some(Level::Warn)));
    }

    #[test]
    fn lines_without_a_level_always_pass() {
        let parsed = parse("thread 'main' panicked at worker/src/main.rs:10:5:");
        assert_eq!(parsed.level, None);
        assert!(parsed.passes(Some(Level::Error)));
    }
}
