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

use super::csv_lines;
use super::input::Row;
use super::label_counts::LabelCounts;

/// One line of the result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    pub id: String,
    pub image: String,
    pub text: String,
    /// `yes`, `no` or `maybe` once judged; null otherwise (every line has
    /// every field but `state`).
    #[serde(default)]
    pub label: Option<String>,
    /// `{yes, no, maybe}` once judged.
    #[serde(default)]
    pub scores: Option<Scores>,
    /// The explanation's summary: the API's `explanation.summary`, one or
    /// two plain sentences (the API's labels and signals are not repeated).
    #[serde(default)]
    pub explanation: Option<String>,
    /// `{code, message}` when the row could not be judged.
    #[serde(default)]
    pub error: Option<JobError>,
    /// The job that judged it (null when none was created).
    #[serde(default)]
    pub job: Option<String>,
    /// Seconds from the job's submission to its end (null without a job).
    #[serde(default)]
    pub seconds: Option<f64>,
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
            seconds: None,
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

/// How result lines are written: one JSON object per line, or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    /// CSV for a `.csv` file, JSONL for anything else.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Jsonl,
        }
    }
}

/// The lines of `path` (`None` for a torn or foreign one); none if the
/// file does not exist yet.
pub(crate) fn read_lines(path: &Path, format: Format) -> anyhow::Result<Vec<Option<ResultLine>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let lines = match format {
        Format::Jsonl => BufReader::new(file)
            .lines()
            .map(|line| {
                let line = line.with_context(|| format!("cannot read {}", path.display()))?;
                Ok(serde_json::from_str::<ResultLine>(&line).ok())
            })
            .collect::<anyhow::Result<_>>()?,
        Format::Csv => csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(file)
            .records()
            .map(|record| record.ok().as_ref().and_then(csv_lines::parse))
            .collect(),
    };
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
pub fn resume(
    path: &Path,
    format: Format,
    retry_failed: bool,
) -> anyhow::Result<HashSet<(String, String)>> {
    let lines = read_lines(path, format)?;
    let keep = |line: &ResultLine| line.label.is_some() || (line.error.is_some() && !retry_failed);
    let kept: Vec<&ResultLine> = lines.iter().flatten().filter(|l| keep(l)).collect();
    let done = kept
        .iter()
        .map(|l| (l.id.clone(), l.text.clone()))
        .collect();
    if kept.len() < lines.len() {
        let temporary = path.with_extension("resuming");
        let mut sink = Sink::create(&temporary, format)?;
        for line in kept {
            sink.write(line)?;
        }
        drop(sink);
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot rewrite {}", path.display()))?;
    }
    Ok(done)
}

/// What a result file holds, whatever run wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Sentence verdicts by label.
    pub labels: LabelCounts,
    /// Rows with an error line.
    pub failed_rows: u64,
    /// Rows submitted and not yet collected.
    pub queued_rows: u64,
}

/// Counts the verdicts and the failed and queued rows in `path`.
pub fn tally(path: &Path, format: Format) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut failed = HashSet::new();
    let mut queued = HashSet::new();
    for line in read_lines(path, format)?.into_iter().flatten() {
        if tally.labels.add(&line) {
            continue;
        }
        if line.error.is_some() {
            failed.insert(line.id);
        } else if line.state.as_deref() == Some("queued") {
            queued.insert(line.id);
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
    format: Format,
}

impl Sink {
    /// Appends to `path`, first ending a torn last line if there is one; a
    /// new (or empty) CSV file gets its header first.
    pub fn append(path: &Path, format: Format) -> anyhow::Result<Sink> {
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
        Sink::new(Box::new(file), format, len == 0)
    }

    /// A new file at `path` (replacing any).
    fn create(path: &Path, format: Format) -> anyhow::Result<Sink> {
        let file =
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        Sink::new(Box::new(file), format, true)
    }

    /// Stdout; a reader that goes away ends the run quietly, as it would
    /// end `cat` (`verdict_shared::stdout`).
    pub fn stdout(format: Format) -> anyhow::Result<Sink> {
        Sink::new(Box::new(verdict_shared::stdout::Stdout), format, true)
    }

    fn new(out: Box<dyn Write + Send>, format: Format, fresh: bool) -> anyhow::Result<Sink> {
        let mut sink = Sink { out, format };
        if fresh && format == Format::Csv {
            sink.write_csv(&csv_lines::HEADER.map(str::to_owned))?;
        }
        Ok(sink)
    }

    /// Writes one line and flushes it.
    pub fn write(&mut self, line: &ResultLine) -> anyhow::Result<()> {
        match self.format {
            Format::Jsonl => {
                let mut text = serde_json::to_string(line)?;
                text.push('\n');
                self.out.write_all(text.as_bytes())?;
                self.out.flush()?;
                Ok(())
            }
            Format::Csv => self.write_csv(&csv_lines::record(line)),
        }
    }

    fn write_csv(&mut self, cells: &[String]) -> anyhow::Result<()> {
        let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
        writer.write_record(cells)?;
        let bytes = writer
            .into_inner()
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        self.out.write_all(&bytes)?;
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use verdict_shared::verdict::Scores;

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
        let mut sink = Sink::append(&path, Format::Jsonl).unwrap();
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
        let done = resume(&path, Format::Jsonl, false).unwrap();
        assert!(done.contains(&("1".into(), "A.".into())));
        assert!(!row_answered(&done, &r));
        // The queued line and the torn one are gone from the file.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let mut sink = Sink::append(&path, Format::Jsonl).unwrap();
        sink.write(&ResultLine::failed(&r, "B.", "image_decode", "bad"))
            .unwrap();
        drop(sink);
        let done = resume(&path, Format::Jsonl, false).unwrap();
        assert!(
            row_answered(&done, &r),
            "without retrying, a failure is an answer"
        );
        assert!(!row_answered(&done, &row("2", &["A."])));
        let counted = tally(&path, Format::Jsonl).unwrap();
        assert_eq!(
            (counted.labels.yes, counted.failed_rows, counted.queued_rows),
            (1, 1, 0)
        );

        // Retrying: the error line is dropped and its sentence is not done.
        let done = resume(&path, Format::Jsonl, true).unwrap();
        assert!(!row_answered(&done, &r));
        assert!(done.contains(&("1".into(), "A.".into())));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(tally(&path, Format::Jsonl).unwrap().failed_rows, 0);
        // Nothing to drop: the file is left as it is.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        resume(&path, Format::Jsonl, true).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn csv_files_have_a_header_round_trip_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        assert_eq!(Format::of(&path), Format::Csv);
        assert_eq!(Format::of(&dir.path().join("out.jsonl")), Format::Jsonl);
        let r = row("1", &["A cup, \"white\"\nand round.", "B."]);
        let mut yes = ResultLine::for_row(&r, &r.texts[0]);
        yes.label = Some("yes".into());
        yes.scores = Some(Scores::from_weights(3.0, 1.0, 0.0));
        yes.explanation = Some("Looks like a cup, mostly.".into());
        yes.job = Some("j1".into());
        let failed = ResultLine::failed(&r, "B.", "image_decode", "bad, truly");
        let mut sink = Sink::append(&path, Format::Csv).unwrap();
        sink.write(&yes).unwrap();
        sink.write(&failed).unwrap();
        drop(sink);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("id,image,text,label,yes,no,maybe,explanation,error_code,"),
            "{text}"
        );
        let lines = read_lines(&path, Format::Csv).unwrap();
        assert_eq!(lines, vec![Some(yes.clone()), Some(failed.clone())]);
        // Appending again does not repeat the header.
        let mut sink = Sink::append(&path, Format::Csv).unwrap();
        sink.write(&failed).unwrap();
        drop(sink);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("id,image,text").count(), 1, "{text}");
        // Resuming with retries drops the errors and keeps a CSV file.
        let done = resume(&path, Format::Csv, true).unwrap();
        assert!(done.contains(&("1".into(), r.texts[0].clone())));
        assert!(!row_answered(&done, &r));
        assert_eq!(read_lines(&path, Format::Csv).unwrap(), vec![Some(yes)]);
        let counted = tally(&path, Format::Csv).unwrap();
        assert_eq!((counted.labels.yes, counted.failed_rows), (1, 0));
    }

    #[test]
    fn every_field_but_state_is_in_every_jsonl_line() {
        let r = row("1", &["A."]);
        let line = ResultLine::failed(&r, "A.", "image_unreadable", "gone");
        let value = serde_json::to_value(&line).unwrap();
        for field in ["label", "scores", "explanation", "job"] {
            assert!(
                value[field].is_null() && value.get(field).is_some(),
                "{value}"
            );
        }
        assert!(value.get("state").is_none(), "{value}");
    }
}
