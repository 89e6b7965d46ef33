//! The result file: one JSON line per sentence of each row, appended as the
//! verdicts come, and read back to resume a run.
//!
//! A line is final when it has a `label` or an `error`; a run started again
//! with the same `--out` skips the rows whose every sentence has a final line.
//! Lines are written whole and flushed one by one, so an interrupted run
//! leaves at most one torn last line, which is ignored when resuming.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use verdict_shared::job::JobError;
use verdict_shared::verdict::Scores;

use super::input::Row;

/// One line of the result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    pub id: String,
    pub image: String,
    pub text: String,
    /// `yes`, `no` or `maybe` once judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `{yes, no, maybe}` once judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    /// The model's one-line explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// `{code, message}` when the row could not be judged.
    #[serde(default)]
    pub error: Option<JobError>,
    /// The job that judged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// `queued` for a row submitted with `--submit-only` (not final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl ResultLine {
    /// A line for `text` of `row` with nothing filled in yet.
    pub fn for_row(row: &Row, text: &str) -> ResultLine {
        ResultLine {
            id: row.id.clone(),
            image: row.image.clone(),
            text: text.to_owned(),
            label: None,
            scores: None,
            explanation: None,
            error: None,
            job: None,
            state: None,
        }
    }

    /// The same row and sentence, failed with `code` and `message`.
    pub fn failed(row: &Row, text: &str, code: &str, message: &str) -> ResultLine {
        let mut line = ResultLine::for_row(row, text);
        line.error = Some(JobError::new(code, message));
        line
    }
}

/// The lines of `path`, raw and parsed (`None` for a torn or foreign line);
/// none if the file does not exist yet.
fn read_lines(path: &Path) -> anyhow::Result<Vec<(String, Option<ResultLine>)>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut lines = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let parsed = serde_json::from_str::<ResultLine>(&line).ok();
        lines.push((line, parsed));
    }
    Ok(lines)
}

/// Prepares `path` for a resumed run and returns the (row id, sentence)
/// pairs it already answers, which the run skips.
///
/// A verdict is kept; an error is kept only without `retry_failed` (by
/// default a failed row is tried again: its image may have been fixed); a
/// `queued` line is dropped (the run collects its verdict). When a line is
/// dropped, the file is rewritten without it (a temporary file renamed over
/// it), so that each sentence keeps one line.
pub fn resume(path: &Path, retry_failed: bool) -> anyhow::Result<HashSet<(String, String)>> {
    let lines = read_lines(path)?;
    let keep = |line: &ResultLine| line.label.is_some() || (line.error.is_some() && !retry_failed);
    let mut done = HashSet::new();
    let mut kept = String::new();
    for (raw, parsed) in &lines {
        if let Some(line) = parsed.as_ref().filter(|line| keep(line)) {
            done.insert((line.id.clone(), line.text.clone()));
            kept.push_str(raw);
            kept.push('\n');
        }
    }
    if done.len() < lines.len() {
        let temporary = path.with_extension("resuming");
        std::fs::write(&temporary, kept)
            .and_then(|()| std::fs::rename(&temporary, path))
            .with_context(|| format!("cannot rewrite {}", path.display()))?;
    }
    Ok(done)
}

/// What a result file holds, whatever run wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub yes: u64,
    pub no: u64,
    pub maybe: u64,
    /// Rows with an error line.
    pub failed_rows: u64,
    /// Rows submitted and not yet collected.
    pub queued_rows: u64,
}

/// Counts the verdicts and the failed and queued rows in `path`.
pub fn tally(path: &Path) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut failed = HashSet::new();
    let mut queued = HashSet::new();
    for line in read_lines(path)?
        .into_iter()
        .filter_map(|(_, parsed)| parsed)
    {
        match line.label.as_deref() {
            Some("yes") => tally.yes += 1,
            Some("no") => tally.no += 1,
            Some("maybe") => tally.maybe += 1,
            _ if line.error.is_some() => {
                failed.insert(line.id);
            }
            _ if line.state.as_deref() == Some("queued") => {
                queued.insert(line.id);
            }
            _ => {}
        }
    }
    tally.failed_rows = failed.len() as u64;
    tally.queued_rows = queued.len() as u64;
    Ok(tally)
}

/// Whether every sentence of `row` is answered.
pub fn row_answered(done: &HashSet<(String, String)>, row: &Row) -> bool {
    let texts: Vec<&str> = if row.texts.is_empty() {
        vec![""]
    } else {
        row.texts.iter().map(String::as_str).collect()
    };
    texts
        .iter()
        .all(|text| done.contains(&(row.id.clone(), (*text).to_owned())))
}

/// Where result lines go: the `--out` file (appended to) or stdout.
pub struct Sink {
    out: Box<dyn Write + Send>,
}

impl Sink {
    /// Appends to `path`, first ending a torn last line if there is one.
    pub fn append(path: &Path) -> anyhow::Result<Sink> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let len = file.metadata()?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Sink {
            out: Box::new(file),
        })
    }

    pub fn stdout() -> Sink {
        Sink {
            out: Box::new(std::io::stdout()),
        }
    }

    /// Writes one line and flushes it.
    pub fn write(&mut self, line: &ResultLine) -> anyhow::Result<()> {
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn row(id: &str, texts: &[&str]) -> Row {
        Row {
            id: id.into(),
            image: "a.png".into(),
            image_path: PathBuf::from("a.png"),
            texts: texts.iter().map(|t| t.to_string()).collect(),
            premise: None,
            problem: None,
        }
    }

    #[test]
    fn final_lines_are_answers_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = Sink::append(&path).unwrap();
        let r = row("1", &["A.", "B."]);
        let mut yes = ResultLine::for_row(&r, "A.");
        yes.label = Some("yes".into());
        sink.write(&yes).unwrap();
        let mut queued = ResultLine::for_row(&r, "B.");
        queued.state = Some("queued".into());
        sink.write(&queued).unwrap();
        drop(sink);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\": \"2\", \"tex")
            .unwrap();
        let done = resume(&path, false).unwrap();
        assert!(done.contains(&("1".into(), "A.".into())));
        assert!(!row_answered(&done, &r));
        // The queued line and the torn one are gone from the file.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let mut sink = Sink::append(&path).unwrap();
        sink.write(&ResultLine::failed(&r, "B.", "image_decode", "bad"))
            .unwrap();
        drop(sink);
        let done = resume(&path, false).unwrap();
        assert!(
            row_answered(&done, &r),
            "without retrying, a failure is an answer"
        );
        assert!(!row_answered(&done, &row("2", &["A."])));
        let counted = tally(&path).unwrap();
        assert_eq!(
            (counted.yes, counted.failed_rows, counted.queued_rows),
            (1, 1, 0)
        );

        // Retrying: the error line is dropped and its sentence is not done.
        let done = resume(&path, true).unwrap();
        assert!(!row_answered(&done, &r));
        assert!(done.contains(&("1".into(), "A.".into())));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(tally(&path).unwrap().failed_rows, 0);
        // Nothing to drop: the file is left as it is.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        resume(&path, true).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }
}
