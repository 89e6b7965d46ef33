//! Result lines as CSV, for `--out FILE.csv` (or `--format csv`): the same
//! fields as a JSONL line, the scores in three columns and the error in two,
//! so that a spreadsheet opens it as it is.

use csv::StringRecord;
use verdict_shared::job::JobError;
use verdict_shared::verdict::Scores;

use super::results::ResultLine;

/// The header row.
pub const HEADER: [&str; 13] = [
    "id",
    "image",
    "text",
    "label",
    "yes",
    "no",
    "maybe",
    "explanation",
    "error_code",
    "error_message",
    "job",
    "state",
    "seconds",
];

/// One line as a CSV record (empty cells for what it does not have).
pub fn record(line: &ResultLine) -> Vec<String> {
    let score = |pick: fn(&Scores) -> f32| line.scores.map(|s| pick(&s).to_string());
    let cells = [
        Some(line.id.clone()),
        Some(line.image.clone()),
        Some(line.text.clone()),
        line.label.clone(),
        score(|s| s.yes),
        score(|s| s.no),
        score(|s| s.maybe),
        line.explanation.clone(),
        line.error.as_ref().map(|e| e.code.clone()),
        line.error.as_ref().map(|e| e.message.clone()),
        line.job.clone(),
        line.state.clone(),
        line.seconds.map(|s| format!("{s:.3}")),
    ];
    cells.into_iter().map(Option::unwrap_or_default).collect()
}

/// A record read back (`None` for one that is not a result line).
pub fn parse(record: &StringRecord) -> Option<ResultLine> {
    let cell = |i: usize| record.get(i).filter(|c| !c.is_empty()).map(str::to_owned);
    let number = |i: usize| cell(i).and_then(|c| c.parse::<f32>().ok());
    let scores = match (number(4), number(5), number(6)) {
        (Some(yes), Some(no), Some(maybe)) => Some(Scores { yes, no, maybe }),
        _ => None,
    };
    Some(ResultLine {
        id: cell(0)?,
        image: cell(1).unwrap_or_default(),
        text: cell(2).unwrap_or_default(),
        label: cell(3),
        scores,
        explanation: cell(7),
        error: cell(8).map(|code| JobError::new(code, cell(9).unwrap_or_default())),
        job: cell(10),
        state: cell(11),
        seconds: cell(12).and_then(|c| c.parse().ok()),
    })
}
